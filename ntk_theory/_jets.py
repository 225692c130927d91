"""Truncated multivariate Taylor polynomials ("jets") in the input coordinates.

An operator kernel ``T_x S_{x'} Θ`` needs the mixed partials ``∂_x^α ∂_{x'}^β Θ(x, x')`` for the
multi-indices of ``T`` and ``S``. We propagate truncated Taylor polynomials in the increments
``(dx, dx')`` through the layer recursion (Taylor-mode differentiation): a :class:`Jet` holds one
coefficient array per multi-index ``m = (α, β)`` -- a tuple of ``2d`` integers -- in a
downward-closed *support* ``M``. Coefficients are *normalized*, ``∂^m F / m!``, so the operator
kernel is read off as ``Σ a_α(x) b_β(x') α! β! F_{(α, β)}``.

Coefficients broadcast: a jet of a per-point quantity of ``x`` (``Σ(x, x)``) holds ``(n₁, 1)``
arrays and only keys ``(α, 0)``; one of ``x'`` holds ``(1, n₂)`` arrays; products of the two
become ``(n₁, n₂)`` matrices, so work on per-point parts stays per-point.

Truncating a product to ``M`` is exact because ``M`` is downward closed: ``m₁ + m₂ ∈ M`` implies
``m₁, m₂ ∈ M``. Differentiating in the input coordinates directly (rather than through
``⟨x, x'⟩, |x|², |x'|²``) keeps the coefficients free of the polynomial weights whose
cancellation ruined large inputs (DESIGN.md, fact 9).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "Jet",
    "closure",
    "compose_expectation",
    "elementwise_derivatives",
    "select",
    "support",
]

MultiIndex = tuple[int, ...]


def closure(indices: Iterable[Sequence[int]]) -> frozenset[MultiIndex]:
    """All multi-indices below (componentwise) some index of ``indices``: a downward-closed set."""
    out: set[MultiIndex] = set()
    for idx in indices:
        out.update(itertools.product(*(range(k + 1) for k in idx)))
    return frozenset(out)


def support(
    alphas: Iterable[Sequence[int]], betas: Iterable[Sequence[int]]
) -> frozenset[MultiIndex]:
    """The jet support for operators with multi-indices ``alphas`` (on ``x``) and ``betas`` (``x'``).

    It is ``closure(alphas) × closure(betas)``, flattened to ``2d``-tuples ``(α..., β...)``.
    Example: the Laplacian in 2-D has ``closure = {0, e₁, e₂, 2e₁, 2e₂}``, so ``Δ_x Δ_{x'}``
    needs 25 coefficients.
    """
    left, right = closure(alphas), closure(betas)
    return frozenset(a + b for a in left for b in right)


def split(m: MultiIndex) -> tuple[MultiIndex, MultiIndex]:
    """``(α, β)`` of a flattened ``2d`` multi-index."""
    d = len(m) // 2
    return m[:d], m[d:]


def factorial(m: MultiIndex) -> float:
    return float(math.prod(math.factorial(k) for k in m))


def _add(m1: MultiIndex, m2: MultiIndex) -> MultiIndex:
    return tuple(a + b for a, b in zip(m1, m2, strict=True))


def _derivative_stack(f: Callable, n: int) -> Callable:
    """``x ↦ [f(x), ..., f^{(n)}(x)]`` by nested forward mode (the generic fallback).

    ``f`` must be a module-level function (hashable, stable identity) so :func:`_stack` caches it.
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

    Closed forms (``O(n)`` operations) for powers (:func:`power`, :data:`reciprocal`,
    :data:`rsqrt`), ``exp``, ``sinh``, ``cosh`` and ``atan`` keep compiled programs small; any
    other ``f`` is differentiated by nested forward mode.
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


def _atan_stack(x, n: int) -> list:
    """``atan`` and its derivatives ``(k-1)! cos^k θ sin(k(θ + π/2)) ``, ``θ = atan(1/x)``-free form.

    With ``c = 1/(1+x²)``: ``atan^{(k)}(x) = (-1)^{k-1} (k-1)! c^{k/2} sin(k · acot(x))`` -- we use
    the equivalent recursion on ``c`` and ``x``: ``d^k/dx^k atan = (k-1)! (-1)^{k-1} Im((x - i)^{-k})``.
    """
    out = [jnp.arctan(x)]
    if n == 0:
        return out
    r2 = 1.0 + x * x
    # (x - i)^{-k} = (x + i)^k / (1 + x²)^k: real/imag parts by the binomial recursion
    re, im = jnp.ones_like(x), jnp.zeros_like(x)
    for k in range(1, n + 1):
        re, im = re * x - im, re + im * x  # (re + i im)(x + i)
        out.append(math.factorial(k - 1) * (-1) ** (k - 1) * im / r2**k)
    return out


_CLOSED_FORMS: dict[Callable, Callable] = {
    jnp.exp: _exp_stack,
    jnp.sinh: _hyperbolic_stack(jnp.sinh, jnp.cosh),
    jnp.cosh: _hyperbolic_stack(jnp.cosh, jnp.sinh),
    jnp.arctan: _atan_stack,
}


class Jet:
    """A truncated Taylor polynomial in ``(dx, dx')`` with array coefficients."""

    __slots__ = ("coeffs", "support")

    def __init__(self, coeffs: dict[MultiIndex, jax.Array], support: frozenset[MultiIndex]):
        self.coeffs = coeffs
        self.support = support

    # --- construction -------------------------------------------------------------------
    @classmethod
    def constant(cls, value, support: frozenset[MultiIndex]) -> Jet:
        zero = next(iter(support))
        return cls({tuple(0 for _ in zero): value}, support)

    @property
    def zero_key(self) -> MultiIndex:
        return tuple(0 for _ in next(iter(self.support)))

    @property
    def value(self) -> jax.Array:
        return jnp.asarray(self.coeffs.get(self.zero_key, 0.0))

    @property
    def max_degree(self) -> int:
        return max(sum(m) for m in self.support)

    def derivative(self, m: MultiIndex) -> jax.Array:
        """``∂^m F`` (un-normalized): ``m! ×`` the coefficient; zero where absent."""
        coeff = self.coeffs.get(m)
        if coeff is None:
            return jnp.zeros_like(self.value)
        return coeff * factorial(m)

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
        z = self.zero_key
        coeffs[z] = coeffs.get(z, 0.0) + other
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

    def increment(self) -> Jet:
        """The jet minus its constant term."""
        z = self.zero_key
        return Jet({m: c for m, c in self.coeffs.items() if m != z}, self.support)

    def nonconstant_degree(self) -> int:
        """Highest total degree that powers of :meth:`increment` can still reach."""
        if all(m == self.zero_key for m in self.coeffs):
            return 0
        return self.max_degree

    def apply(self, f: Callable) -> Jet:
        """Compose an elementwise function: ``f(J) = Σ_k f^{(k)}(J_0)/k! (J - J_0)^k`` (Horner)."""
        n = self.nonconstant_degree()
        derivs = elementwise_derivatives(f, self.value, n)
        return self.compose(derivs)

    def compose(self, derivs: Sequence[jax.Array]) -> Jet:
        """``f(J)`` given ``derivs[k] = f^{(k)}(J_0)`` for ``k ≤`` :meth:`nonconstant_degree`."""
        n = self.nonconstant_degree()
        if n == 0:
            return Jet.constant(derivs[0], self.support)
        delta = self.increment()
        out = Jet.constant(derivs[n] / math.factorial(n), self.support)
        for k in range(n - 1, -1, -1):
            out = out * delta + derivs[k] / math.factorial(k)
        return out


def select(mask, on: Jet, off: Jet) -> Jet:
    """The jet of ``on`` where ``mask`` (per entry, broadcast), else of ``off``: two formulas of
    one function (or two phases of one recursion), chosen per entry; missing keys are zero."""
    keys = set(on.coeffs) | set(off.coeffs)
    zero = jnp.zeros((), jnp.float64)
    return Jet(
        {m: jnp.where(mask, on.coeffs.get(m, zero), off.coeffs.get(m, zero)) for m in keys},
        on.support,
    )


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

    (Price 1958), so the Taylor expansion around the jets' values is
    ``Σ_{a,b,c} 2^{-a-c} E_{2a+b, 2c+b} / (a! b! c!) δ11^a δ12^b δ22^c``.

    Args:
        table: ``table(i, j)`` returns ``E[φ^{(i)}(u) φ^{(j)}(v)]`` at the jets' values.
        s11, s12, s22: jets of the covariance entries (``s11`` depends on ``x`` only, ...).
        shift: derivative order of ``φ`` inside the expectation (1 for ``E[φ'φ']``).
    """
    support = s12.support
    d11, d12, d22 = s11.increment(), s12.increment(), s22.increment()
    k_max = s12.max_degree

    def powers(delta: Jet, n: int) -> list[Jet]:
        out = [Jet.constant(1.0, support)]
        for k in range(1, n + 1):
            nxt = out[-1] * delta * (1.0 / k)
            if not nxt.coeffs:  # truncated away: higher powers vanish too
                break
            out.append(nxt)
        return out

    p11 = powers(d11, min(s11.nonconstant_degree(), k_max))
    p12 = powers(d12, min(s12.nonconstant_degree(), k_max))
    p22 = powers(d22, min(s22.nonconstant_degree(), k_max))
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


def expectation_pairs(s11: Jet, s12: Jet, s22: Jet, shift: int = 0) -> set[tuple[int, int]]:
    """The ``(i, j)`` that :func:`compose_expectation` will ask its table for (keys only)."""
    pairs: set[tuple[int, int]] = set()

    def collect(i: int, j: int):
        pairs.add((i, j))
        return 0.0

    _dry_run(collect, s11, s12, s22, shift)
    return pairs


def _dry_run(collect, s11: Jet, s12: Jet, s22: Jet, shift: int) -> None:
    """Walk :func:`compose_expectation`'s loops on the jets' *keys* only (no arithmetic)."""
    support = s12.support
    k_max = s12.max_degree

    def key_powers(jet: Jet, n: int) -> list[set]:
        inc = {m for m in jet.coeffs if m != jet.zero_key}
        out = [{jet.zero_key}]
        for _ in range(1, n + 1):
            nxt = {_add(m1, m2) for m1 in out[-1] for m2 in inc if _add(m1, m2) in support}
            if not nxt:
                break
            out.append(nxt)
        return out

    p11 = key_powers(s11, min(s11.nonconstant_degree(), k_max))
    p12 = key_powers(s12, min(s12.nonconstant_degree(), k_max))
    p22 = key_powers(s22, min(s22.nonconstant_degree(), k_max))
    for b, kb in enumerate(p12):
        for a, ka in enumerate(p11):
            for c, kc in enumerate(p22):
                if a + b + c > k_max:
                    continue
                keys = {_add(x, y) for x in ka for y in kc if _add(x, y) in support}
                keys = {_add(x, y) for x in keys for y in kb if _add(x, y) in support}
                if keys:
                    collect(2 * a + b + shift, 2 * c + b + shift)


def _reaches(support: frozenset[MultiIndex], *jets: Jet) -> bool:
    """Whether the product of ``jets`` has any monomial inside ``support`` (keys only)."""
    zero = jets[0].zero_key
    keys = {zero}
    for jet in jets:
        keys = {_add(k, m) for k in keys for m in jet.coeffs if _add(k, m) in support}
        if not keys:
            return False
    return True
