"""Truncated multivariate Taylor polynomials ("jets") in the kernel arguments.

For a fully-connected first layer every kernel is a function of three scalars per entry,
``F(s, q, q')`` with ``s = <x, x'>``, ``q = |x|^2``, ``q' = |x'|^2``. An operator-applied kernel
needs a few mixed partial derivatives ``∂_s^a ∂_q^b ∂_{q'}^c F`` on whole matrices. Nested
forward-mode autodiff costs ``2^order`` per partial and compiles slowly; instead we propagate
truncated Taylor polynomials through the layer recursion (Taylor-mode differentiation), one
coefficient array per multi-index in a downward-closed set ``M``.

A :class:`Jet` stores *normalized* coefficients ``F^{(m)} / m!`` keyed by ``m = (a, b, c)``.
Coefficients broadcast: a jet that depends on ``q`` only holds ``(n1, 1)`` arrays and only keys
``(0, b, 0)``, one that depends on ``q'`` only holds ``(1, n2)`` arrays. Products of the two
become full ``(n1, n2)`` matrices, so work on the cheap parts stays cheap.

Truncating a product to ``M`` is exact because ``M`` is downward closed: if ``m1 + m2 ∈ M``
then ``m1, m2 ∈ M``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["Jet", "derivative_set", "elementwise_derivatives"]

MultiIndex = tuple[int, int, int]


def derivative_set(order_x: int, order_xp: int) -> frozenset[MultiIndex]:
    """Multi-indices ``(a, b, c)`` of ``∂_s^a ∂_q^b ∂_{q'}^c`` reached by operators of given orders.

    An x-derivative adds one ``s`` or ``q`` derivative, an x'-derivative one ``s`` or ``q'``
    derivative, so orders ``p`` and ``p'`` reach ``b ≤ p``, ``c ≤ p'``, ``a ≤ (p - b) + (p' - c)``.
    """
    return frozenset(
        (a, b, c)
        for b in range(order_x + 1)
        for c in range(order_xp + 1)
        for a in range(order_x - b + order_xp - c + 1)
    )


def _add(m1: MultiIndex, m2: MultiIndex) -> MultiIndex:
    return (m1[0] + m2[0], m1[1] + m2[1], m1[2] + m2[2])


def _derivative_stack(f: Callable, n: int) -> Callable:
    """``x ↦ [f(x), ..., f^{(n)}(x)]`` by nested forward mode.

    The fallback for functions without a closed-form stack (nested JVPs grow exponentially
    with ``n`` in program size); ``f`` must be a module-level function (hashable, stable
    identity) so that :func:`_stack` can cache it.
    """

    def stack(x):
        out, g = [], f
        for k in range(n + 1):
            out.append(g(x))
            if k < n:
                g = (lambda h: lambda y: jax.jvp(h, (y,), (jnp.ones_like(y),))[1])(g)
        return out

    return jax.jit(stack)


def elementwise_derivatives(f: Callable, x: jax.Array, n: int) -> list[jax.Array]:
    """``[f(x), f'(x), ..., f^{(n)}(x)]`` for an elementwise ``f``.

    Closed forms (``O(n)`` operations) for powers (:func:`power`, :func:`reciprocal`,
    :func:`rsqrt`), ``exp``, ``sinh`` and ``cosh`` keep the compiled programs small; any other
    ``f`` is differentiated by nested forward mode. (A closed form for ``arcsin`` via its
    derivative recursion was tried and compiled to code 4x slower at run time, so it uses
    nested forward mode.)
    """
    return _stack(f, n)(x)


@functools.cache
def _stack(f: Callable, n: int) -> Callable:
    """Jitted derivative stack, cached per ``(f, n)``.

    The ``jit`` boundary matters under an outer ``jit`` too: it keeps each stack a separate
    computation, which stops XLA from fusing (and duplicating) it into every consumer.
    """
    closed = _CLOSED_FORMS.get(f)
    if closed is None and isinstance(f, _Power):
        closed = functools.partial(_power_stack, f)
    if closed is None:
        return _derivative_stack(f, n)
    return jax.jit(functools.partial(closed, n=n))


class _Power:
    """``x ↦ x**p`` for ``x > 0``; derivatives ``p (p-1) ... (p-k+1) x^{p-k}``."""

    __slots__ = ("base", "exponent")

    def __init__(self, exponent: float, base: Callable | None = None):
        self.exponent = exponent
        self.base = base

    def __call__(self, x):
        return self.base(x) if self.base is not None else x**self.exponent

    def __repr__(self) -> str:
        return f"power({self.exponent})"


def _power_stack(f: _Power, x, n: int) -> list:
    # Each derivative as its own short expression (no chain through the previous one), so
    # XLA's fusion does not duplicate a growing chain into every consumer.
    base = f(x)
    out, c = [base], 1.0
    inv = 1.0 / x
    for k in range(1, n + 1):
        c *= f.exponent - k + 1
        out.append(c * base * jax.lax.integer_pow(inv, k))
    return out


@functools.cache
def power(k: float) -> Callable:
    """``x ↦ x**k`` with a stable identity (for the derivative cache)."""
    return _Power(k)


#: ``x ↦ 1/x`` and ``x ↦ 1/√x``, with closed-form derivative stacks.
reciprocal = _Power(-1.0, lambda x: 1.0 / x)
rsqrt = _Power(-0.5, jax.lax.rsqrt)


def _exp_stack(x, n: int) -> list:
    e = jnp.exp(x)
    return [e] * (n + 1)


def _hyperbolic_stack(first: Callable, second: Callable) -> Callable:
    def stack(x, n: int) -> list:
        pair = (first(x), second(x))
        return [pair[k % 2] for k in range(n + 1)]

    return stack


_CLOSED_FORMS: dict[Callable, Callable] = {
    jnp.exp: _exp_stack,
    jnp.sinh: _hyperbolic_stack(jnp.sinh, jnp.cosh),
    jnp.cosh: _hyperbolic_stack(jnp.cosh, jnp.sinh),
}


class Jet:
    """A truncated Taylor polynomial in ``(ds, dq, dq')`` with array coefficients."""

    __slots__ = ("coeffs", "support")

    def __init__(self, coeffs: dict[MultiIndex, jax.Array], support: frozenset[MultiIndex]):
        self.coeffs = coeffs
        self.support = support

    # --- construction -------------------------------------------------------------------
    @classmethod
    def constant(cls, value, support: frozenset[MultiIndex]) -> Jet:
        return cls({(0, 0, 0): jnp.asarray(value)}, support)

    @classmethod
    def variable(cls, value, axis: int, support: frozenset[MultiIndex]) -> Jet:
        """The jet of an argument itself: ``value + d(arg)`` along ``axis`` (0: s, 1: q, 2: q')."""
        coeffs = {(0, 0, 0): jnp.asarray(value)}
        unit = tuple(int(i == axis) for i in range(3))
        if unit in support:
            coeffs[unit] = jnp.ones((), dtype=coeffs[(0, 0, 0)].dtype)
        return cls(coeffs, support)

    @property
    def value(self) -> jax.Array:
        return jnp.asarray(self.coeffs.get((0, 0, 0), 0.0))

    @property
    def max_degree(self) -> int:
        return max(sum(m) for m in self.support)

    def derivative(self, m: MultiIndex) -> jax.Array:
        """``∂^m F`` (un-normalized): ``m! ×`` the coefficient; zero where absent."""
        coeff = self.coeffs.get(m)
        if coeff is None:
            return jnp.zeros_like(self.value)
        return coeff * (math.factorial(m[0]) * math.factorial(m[1]) * math.factorial(m[2]))

    # --- arithmetic ---------------------------------------------------------------------
    def _combine(self, other: Jet, sign: float) -> Jet:
        coeffs = dict(self.coeffs)
        for m, c in other.coeffs.items():
            coeffs[m] = coeffs[m] + sign * c if m in coeffs else sign * c
        return Jet(coeffs, self.support)

    def __add__(self, other) -> Jet:
        if isinstance(other, Jet):
            return self._combine(other, 1.0)
        coeffs = dict(self.coeffs)
        coeffs[(0, 0, 0)] = coeffs.get((0, 0, 0), 0.0) + other
        return Jet(coeffs, self.support)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet({m: -c for m, c in self.coeffs.items()}, self.support)

    def __sub__(self, other) -> Jet:
        if isinstance(other, Jet):
            return self._combine(other, -1.0)
        return self + (-other)

    def __rsub__(self, other) -> Jet:
        return (-self) + other

    def __mul__(self, other) -> Jet:
        if not isinstance(other, Jet):
            return Jet({m: c * other for m, c in self.coeffs.items()}, self.support)
        out: dict[MultiIndex, jax.Array] = {}
        for m1, c1 in self.coeffs.items():
            for m2, c2 in other.coeffs.items():
                m = _add(m1, m2)
                if m in self.support:
                    out[m] = out[m] + c1 * c2 if m in out else c1 * c2
        return Jet(out, self.support)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Jet:
        if isinstance(other, Jet):
            return self * other.apply(reciprocal)
        return self * (1.0 / other)

    def __rtruediv__(self, other) -> Jet:
        return self.apply(reciprocal) * other

    def __pow__(self, k: int) -> Jet:
        if not isinstance(k, int) or k < 0:
            return self.apply(power(k))
        out = Jet.constant(jnp.ones_like(self.value), self.support)
        for _ in range(k):
            out = out * self
        return out

    def increment(self) -> Jet:
        """The jet minus its constant term (no ``(0, 0, 0)`` key)."""
        return Jet({m: c for m, c in self.coeffs.items() if m != (0, 0, 0)}, self.support)

    def nonconstant_degree(self) -> int:
        """Highest total degree that powers of :meth:`increment` can still reach."""
        if len(self.coeffs) == 1:
            return 0
        return self.max_degree

    def apply(self, f: Callable) -> Jet:
        """Compose an elementwise function: ``f(J) = Σ_k f^{(k)}(J_0)/k! (J - J_0)^k`` (Horner)."""
        n = self.nonconstant_degree()
        derivs = elementwise_derivatives(f, self.value, n)
        if n == 0:
            return Jet.constant(derivs[0], self.support)
        delta = self.increment()
        out = Jet.constant(derivs[n] / math.factorial(n), self.support)
        for k in range(n - 1, -1, -1):
            out = out * delta + derivs[k] / math.factorial(k)
        return out


def compose_expectation(
    table: Callable[[int, int], jax.Array],
    s11: Jet,
    s12: Jet,
    s22: Jet,
    shift: int = 0,
) -> Jet:
    """Jet of ``E(Σ11, Σ12, Σ22) = E[φ^{(shift)}(u) φ^{(shift)}(v)]`` from Price's theorem.

    .. math::
        \\partial_{11}^a \\partial_{12}^b \\partial_{22}^c \\, E[f(u) g(v)]
        = 2^{-a-c}\\, E[f^{(2a+b)}(u)\\, g^{(2c+b)}(v)]

    so the Taylor expansion around the jets' values is
    ``Σ_{a,b,c} 2^{-a-c} E_{2a+b, 2c+b} / (a! b! c!) δ11^a δ12^b δ22^c``.

    Args:
        table: ``table(i, j)`` returns ``E[φ^{(i)}(u) φ^{(j)}(v)]`` at the jets' values.
        s11, s12, s22: jets of the covariance entries (``s11`` depends on ``q`` only, ...).
        shift: derivative order of ``φ`` inside the expectation (1 for ``E[φ'φ']``).
    """
    support = s12.support
    d11, d12, d22 = s11.increment(), s12.increment(), s22.increment()
    n11, n12, n22 = s11.nonconstant_degree(), s12.nonconstant_degree(), s22.nonconstant_degree()
    k_max = s12.max_degree

    def powers(delta: Jet, n: int) -> list[Jet]:
        out = [Jet.constant(1.0, support)]
        for k in range(1, n + 1):
            nxt = out[-1] * delta * (1.0 / k)
            if not nxt.coeffs:  # truncated away: higher powers vanish too
                break
            out.append(nxt)
        return out

    p11 = powers(d11, min(n11, k_max))
    p12 = powers(d12, min(n12, k_max))
    p22 = powers(d22, min(n22, k_max))
    result: Jet | None = None
    for b, pb in enumerate(p12):
        inner: Jet | None = None
        for a, pa in enumerate(p11):
            for c, pc in enumerate(p22):
                if a + b + c > k_max or not _reaches(support, pa, pc, pb):
                    continue
                coeff = table(2 * a + b + shift, 2 * c + b + shift) * 0.5 ** (a + c)
                term = (pa * pc) * coeff
                inner = term if inner is None else inner + term
        if inner is None:
            continue
        term = inner * pb
        result = term if result is None else result + term
    assert result is not None
    return result


def _reaches(support: frozenset[MultiIndex], *jets: Jet) -> bool:
    """Whether the product of ``jets`` has any monomial inside ``support`` (keys only)."""
    keys = {(0, 0, 0)}
    for jet in jets:
        keys = {_add(k, m) for k in keys for m in jet.coeffs if _add(k, m) in support}
        if not keys:
            return False
    return True
