"""Activations: the functions, their Gaussian dual kernels, and how smooth they are.

Every layer of the kernel recursion needs ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` for a centred
Gaussian ``(u, v)`` with covariance ``[[Σ11, Σ12], [Σ12, Σ22]]``, and an operator kernel needs
their Taylor expansions in the covariance entries. By Price's theorem (Price 1958)

.. math::
    \\partial_{Σ_{12}} E[f(u)g(v)] = E[f'(u)g'(v)],\\qquad
    \\partial_{Σ_{11}} E[f(u)g(v)] = \\tfrac12 E[f''(u)g(v)],

every such derivative is again a Gaussian expectation of derivatives of ``φ`` ("Price pairs"
``E[φ^{(i)}(u)φ^{(j)}(v)]``). Three kinds of activations provide them:

* **closed forms** -- ``erf`` (Williams 1997), ``sin`` (Pearce et al. 2019), ``gelu`` (Tsuchida et
  al. 2020, arXiv 2002.08517): explicit formulas, written so that nothing cancels at large
  variances or near ``x = x'`` (``atan2`` instead of ``arcsin`` near 1; ``e^{-Var(u-v)/2}``
  instead of ``e^{-(Σ11+Σ22)/2} sinh Σ12``, which overflows), differentiated as Taylor jets;
* **ReLU^k** -- arc-cosine kernels of mixed degree (Cho & Saul 2009, extended here to mixed
  degrees with sympy), with the angle from ``atan2(√det Σ, Σ12)``;
* **numeric** -- tanh, sigmoid, SiLU, softplus and any analytic function given as a sympy
  expression (:meth:`Activation.from_sympy`): Price pairs from the Mehler series with per-point
  coefficients (:mod:`ntk_theory._hermite`) where it converges in at most 1536 terms, else from a
  sinh-mapped 2-D trapezoidal rule (:mod:`ntk_theory._gauss2d`). Both are exact on the diagonal
  ``x = x'`` (DESIGN.md fact 7) and accurate to ~1e-15 relative to the Cauchy–Schwarz scale
  ``√(E[φ^{(i)}(u)²] E[φ^{(j)}(v)²])`` (tests/test_activations.py). The logistic family (tanh,
  sigmoid, SiLU, softplus) also has closed forms as Gaussian scale mixtures
  (:mod:`ntk_theory._mixture`, ``Activation.mixture``), which deeper layers of operator kernels
  use where composing Price pairs through the covariance jets is ill-conditioned.

``max_operator_order`` is the highest differential-operator order whose kernel is finite.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import _stacks
from ._jets import Jet, compose_expectation, expectation_pairs, reciprocal, rsqrt
from ._nt import stax

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "SmoothnessError",
    "get_activation",
]

Pair = tuple[int, int]


class SmoothnessError(ValueError):
    """An operator needs more derivatives than the network's activation has."""


#: ``|ρ|`` above this is treated as exactly 1 in the arc-cosine kernels: on the diagonal the
#: computed ``det Σ`` is ``O(ε Σ11 Σ22)`` instead of 0, and ``√det`` would turn that into an
#: angle of ``√ε ≈ 1e-8`` (visible in ReLU's Lipschitz-in-θ NTK).
_DET_SNAP = 8 * float(np.finfo(np.float64).eps)


# ----------------------------------------------------------------------------------------------
# Arc-cosine kernels of mixed degree: E[relu^m(u) relu^n(v)]
# ----------------------------------------------------------------------------------------------
@functools.cache
def _arccos_angular(m: int, n: int) -> Callable:
    """``I_{mn}(θ) = ∫_{θ-π/2}^{π/2} cos^m t cos^n(t-θ) dt`` (derived with sympy, lambdified).

    In polar coordinates ``E[relu^m(u) relu^n(v)] = Σ11^{m/2} Σ22^{n/2} / (2π)
    · 2^{(m+n)/2} Γ((m+n)/2 + 1) · I_{mn}(θ)`` with ``cos θ = ρ`` (Cho & Saul 2009, eq. (5)-(7),
    for ``m = n``; ``I_{11} = (sin θ + (π-θ) cos θ)/2``).
    """
    t, th = sp.symbols("t theta", real=True)
    integrand = sp.expand(sp.cos(t) ** m * (sp.cos(t) * sp.cos(th) + sp.sin(t) * sp.sin(th)) ** n)
    integral = sp.integrate(integrand, (t, th - sp.pi / 2, sp.pi / 2))
    return sp.lambdify(th, integral, modules="jax")


def _angle(s11, s12, s22, det=None):
    """``θ = atan2(√det Σ, Σ12)`` with ``det`` snapped to 0 within round-off (``θ = π/2`` if a
    variance is zero: the limit along which the kernel is continuous)."""
    prod = s11 * s22
    if det is None:
        det = prod - s12 * s12
    det = jnp.where(det <= _DET_SNAP * prod, 0.0, det)
    theta = jnp.arctan2(jnp.sqrt(jnp.maximum(det, 0.0)), s12)
    return jnp.where(prod > 0, theta, 0.5 * math.pi)


def arccos_expectation(m: int, n: int, s11, s12, s22, det=None) -> jax.Array:
    """``E[relu^m(u) relu^n(v)]`` (``relu^0`` is the Heaviside step), exact closed form."""
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    theta = _angle(s11, s12, s22, det)
    radial = 2.0 ** ((m + n) / 2) * math.gamma((m + n) / 2 + 1) / (2 * math.pi)
    angular = _arccos_angular(m, n)(theta)
    return s11 ** (m / 2) * s22 ** (n / 2) * radial * angular


# ----------------------------------------------------------------------------------------------
# The activation type
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """An activation function with everything the kernel machinery needs (see module doc).

    Build custom ones with :meth:`from_sympy`; the registry :data:`ACTIVATIONS` has the rest.

    Attributes:
        name: registry name (``"erf"``, ``"relu3"``, ``"tanh"`` ...).
        expr: the activation as a sympy expression in the symbol ``z`` (``None`` for ReLU^k).
        family: key of a cancellation-free derivative stack in :mod:`ntk_theory._stacks`
            (``None``: the sympy derivatives are lambdified).
        max_derivative: how many times ``φ`` may be differentiated inside a Gaussian
            expectation (``None``: infinitely often). ReLU^k: ``k`` (``φ^{(k)} = k!`` step).
        strip: half-width of the strip around the real axis in which ``φ`` is analytic
            (nearest complex singularity; ``inf`` for entire functions). It sets the
            quadrature steps of the numeric schemes.
        source: where the kernel comes from.
        relu_power: ``k`` for ReLU^k, else 0.
    """

    name: str
    expr: sp.Expr | None = field(default=None, compare=False, repr=False)
    family: str | None = field(default=None, compare=False, repr=False)
    max_derivative: int | None = None
    strip: float = math.inf
    source: str = field(default="", compare=False, repr=False)
    relu_power: int = 0
    #: key of :data:`ntk_theory._mixture.MIXTURES` for the logistic family (tanh, sigmoid, SiLU,
    #: softplus): closed-form kernels as Gaussian scale mixtures, used by deeper layers of
    #: operator kernels at large variances
    mixture: str | None = field(default=None, compare=False, repr=False)
    #: operator kernels may take the first layer "inside" (numerical 2-D expectations) for
    #: large inputs and orders >= 3; False where the closed form must be kept (oscillatory φ)
    first_layer_inside = True

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_sympy(cls, name: str, expr, *, strip: float | None = None) -> Activation:
        """An activation from an analytic sympy expression in one variable.

        Its kernels use the numeric scheme (Mehler series, 2-D quadrature for large
        variances), with the analyticity strip taken from sympy's singularities of ``expr``.
        Operator kernels of networks with two or more hidden layers compose its Price pairs
        through the deeper layers' covariance jets, which is exact only for bounded expressions
        (or deeper variances ≤ 2) and operator orders ≤ 2; beyond that they raise a
        ``ValueError`` (the built-in tanh, sigmoid, SiLU and softplus have closed-form routes).

        Args:
            name: a name for messages and the registry.
            expr: a sympy expression with exactly one free symbol, analytic on the real line
                (no ``Abs``, ``Max``, ``Heaviside``, ``Piecewise``, ``sign``...).
            strip: distance of the nearest complex singularity from the real axis, if sympy
                cannot find it (e.g. ``π/2`` for tanh).

        Raises:
            ValueError: not one free symbol; not analytic on the real line; no strip found.

        Example:
            >>> z = sympy.Symbol("z")
            >>> mish = Activation.from_sympy("mish", z * sympy.tanh(sympy.log(1 + sympy.exp(z))))
        """
        expr = sp.sympify(expr)
        free = sorted(expr.free_symbols, key=str)
        if len(free) != 1:
            raise ValueError(
                f"Activation {name!r}: the expression {expr} must be a function of exactly one "
                f"variable, got free symbols {[str(s) for s in free] or 'none'}. Write it in one "
                "symbol, e.g. sympy.tanh(z)."
            )
        z = sp.Symbol("z")
        expr = expr.subs(free[0], z)
        bad = [
            f.__name__
            for f in (
                sp.Abs,
                sp.Max,
                sp.Min,
                sp.Heaviside,
                sp.Piecewise,
                sp.sign,
                sp.floor,
                sp.ceiling,
            )
            if expr.has(f)
        ]
        if bad:
            raise ValueError(
                f"Activation {name!r} uses {', '.join(bad)}: it is not analytic, and the numeric "
                "kernel schemes are only accurate for analytic activations. For ReLU^k use the "
                "built-in 'relu', 'relu2', 'relu3' or 'relu4' (exact arc-cosine kernels)."
            )
        found = _strip_of(expr, z)
        if found == 0.0:
            raise ValueError(
                f"Activation {name!r}: {expr} has a singularity on the real line, so its kernel is "
                "not defined by the smooth-activation machinery."
            )
        if strip is None:
            if found is None:
                raise ValueError(
                    f"Activation {name!r}: could not locate the complex singularities of {expr} "
                    "with sympy; pass strip= (the distance of the nearest singularity from the "
                    "real axis, e.g. strip=math.pi/2 for tanh, math.inf if it is entire)."
                )
            strip = found
        if not strip > 0:
            raise ValueError(f"strip must be positive (or math.inf), got {strip!r}.")
        return cls(name, expr=expr, family=None, strip=float(strip), source=f"numeric: {expr}")

    # -- the function and its derivatives ------------------------------------------------
    def derivative(self, i: int) -> Callable[[jax.Array], jax.Array]:
        """``φ^{(i)}`` as an elementwise JAX function."""
        return _derivative_fn(self, i)

    @property
    def fn(self) -> Callable[[jax.Array], jax.Array]:
        return self.derivative(0)

    def stack(self, n: int, backend: str = "jax") -> Callable:
        """``u ↦ [φ(u), ..., φ^{(n)}(u)]`` without cancellation at large ``|u|`` (see _stacks)."""
        if self.relu_power:
            return _relu_stack(self.relu_power, n, backend)
        return _stacks.stack_fn(self.family, self.expr, n, backend)

    @property
    def kind(self) -> str:
        """``"closed"`` (formula on jets), ``"relu"`` (arc-cosine Price pairs) or ``"numeric"``."""
        return "relu" if self.relu_power else "numeric"

    @property
    def unbounded(self) -> bool:
        """Whether ``|φ(z)|`` grows (about linearly) at large ``|z|``: gelu, SiLU, softplus, ReLU^k.

        Then the variances of deeper layers, and the increments of their covariance jets, grow
        with the inputs (what limits the Price-pair chain rule there, see
        ``ntk_theory._engine.PRICE_VARIANCE``). Decided from ``|φ(±1000)|`` against
        ``|φ(±10)|``: a linear growth gives a ratio near 100, a bounded or logarithmic one a
        ratio below 10.
        """
        return _grows(self)

    # -- smoothness ----------------------------------------------------------------------
    def derivatives_needed(self, order_x: int, order_xp: int) -> int:
        """Largest ``i`` in ``E[φ^{(i)} φ^{(j)}]`` the jets need for operators of these orders.

        Price's theorem turns the Taylor term ``δΣ11^a δΣ12^b δΣ22^c`` into
        ``E[φ^{(2a+b+1)} φ^{(2c+b+1)}]`` (the NTK carries ``E[φ'φ']``). Each factor raises the
        degree in ``dx`` or ``dx'`` by at least one, with ``a ≤ p``, ``c ≤ p'`` and
        ``a + b + c ≤ p + p'``, so the largest order is ``1 + p + p' + max(p, p')``
        (plain kernel: 1).
        """
        return 1 + order_x + order_xp + max(order_x, order_xp)

    @property
    def max_operator_order(self) -> int | None:
        """Highest order ``p`` with ``T_x T_x' Θ`` computable (``None``: unbounded)."""
        if self.max_derivative is None:
            return None
        p = 0
        while self.derivatives_needed(p + 1, p + 1) <= self.max_derivative:
            p += 1
        return p

    def check_operator_orders(self, order_x: int, order_xp: int) -> None:
        """Raise :class:`SmoothnessError` if these operator orders exceed the activation."""
        need = self.derivatives_needed(order_x, order_xp)
        if self.max_derivative is None or need <= self.max_derivative:
            return
        working = [
            a.name
            for a in ACTIVATIONS.values()
            if a.max_derivative is None
            or a.derivatives_needed(order_x, order_xp) <= a.max_derivative
        ]
        raise SmoothnessError(
            f"An operator of order {max(order_x, order_xp)} (pair of orders "
            f"({order_x}, {order_xp})) needs the NTK's dual kernel differentiated into "
            f"E[φ^({need}) φ^(·)], but activation '{self.name}' has only "
            f"{self.max_derivative} derivative(s) (its highest supported operator order is "
            f"{self.max_operator_order}). Its operator kernel would be infinite or undefined "
            f"on the diagonal x = x'. Use an activation that supports it: {', '.join(working)}."
        )

    # -- kernels -------------------------------------------------------------------------
    def dual(self, s11: Jet, s12: Jet, s22: Jet, table=None, det: Jet | None = None):
        """Jets of ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` (Price's theorem + a pair table).

        Args:
            s11, s12, s22: covariance jets (``s11`` per point of ``x``, ``s22`` of ``x'``).
            table: the Price-pair provider of this layer (see ``ntk_theory._engine``): a callable
                ``table(pairs) -> {(i, j): array}``.
            det: a cancellation-free jet of ``Σ11Σ22 - Σ12²`` where the caller has one (the
                first layer, from the input geometry); ``None`` computes it from the entries.
        """
        if table is None:
            raise ValueError(f"activation '{self.name}' needs a Price-pair table")
        pairs = expectation_pairs(s11, s12, s22, 0) | expectation_pairs(s11, s12, s22, 1)
        values = table(sorted(pairs))
        lookup = lambda i, j: values[(i, j)]  # noqa: E731
        return (
            compose_expectation(lookup, s11, s12, s22, shift=0),
            compose_expectation(lookup, s11, s12, s22, shift=1),
        )

    def pair_table(self, pairs: Iterable[Pair], s11, s12, s22, det=None) -> dict[Pair, jax.Array]:
        """Closed-form Price pairs (ReLU^k only; numeric activations get theirs from the engine)."""
        if not self.relu_power:
            raise NotImplementedError(f"'{self.name}' has no closed-form Price pairs")
        k = self.relu_power
        out = {}
        for i, j in pairs:
            if max(i, j) > k:
                raise SmoothnessError(
                    f"'{self.name}' has {k} derivatives; E[φ^({i}) φ^({j})] was asked for."
                )
            scale = (math.factorial(k) / math.factorial(k - i)) * (
                math.factorial(k) / math.factorial(k - j)
            )
            out[(i, j)] = scale * arccos_expectation(k - i, k - j, s11, s12, s22, det)
        return out

    def stax_layer(self):
        """The neural-tangents ``(init_fn, apply_fn, kernel_fn)`` of this activation.

        Its ``nngp_fn``/``d_nngp_fn`` evaluate each entry independently (arc-cosine closed forms
        or the 2-D quadrature of :mod:`ntk_theory._gauss2d`), with Price's theorem as their JVP:
        a reference path that shares nothing with the Mehler tables of the fast engine.
        """
        return stax.Elementwise(
            fn=self.fn,
            nngp_fn=price_expectation(self, 0, 0),
            d_nngp_fn=price_expectation(self, 1, 1),
        )


def _strip_of(expr: sp.Expr, z: sp.Symbol) -> float | None:
    """Distance of the nearest complex singularity of ``expr`` from the real axis (sympy)."""
    try:
        from sympy.calculus.singularities import singularities

        sing = singularities(expr, z, domain=sp.S.Complexes)
    except Exception:  # sympy cannot decide for every expression
        return None
    if sing == sp.S.EmptySet:
        return math.inf
    points: list = []
    parts = sing.args if isinstance(sing, sp.Union) else (sing,)
    for part in parts:
        if isinstance(part, sp.FiniteSet):
            points.extend(part)
        elif isinstance(part, sp.ImageSet):
            lam = part.lamda
            points.extend(lam(n) for n in range(-4, 5))
        else:
            return None
    dists = []
    for p in points:
        try:
            dists.append(abs(float(sp.im(sp.N(p)))))
        except TypeError:
            return None
    return min(dists) if dists else math.inf


@functools.cache
def _grows(act: Activation) -> bool:
    with np.errstate(all="ignore"):  # sympy expressions may overflow on the way to a finite value
        stack = act.stack(0, "numpy")
        values = np.abs(np.asarray(stack(np.array([-1e3, -10.0, 10.0, 1e3]))[0], dtype=float))
    if not np.all(np.isfinite(values)):
        return True
    return bool(values[0] + values[3] > 10.0 * (values[1] + values[2] + 1.0))


@functools.cache
def _derivative_fn(act: Activation, i: int) -> Callable:
    if act.max_derivative is not None and i > act.max_derivative:
        raise SmoothnessError(
            f"{act.name} has only {act.max_derivative} derivatives (asked for {i})."
        )
    stack = act.stack(i, "jax")
    return lambda x: stack(jnp.asarray(x))[i]


def _relu_stack(k: int, n: int, backend: str) -> Callable:
    xp = jnp if backend == "jax" else np

    def stack(u):
        out = []
        for i in range(min(n, k) + 1):
            c = math.factorial(k) / math.factorial(k - i)
            out.append(c * (u > 0).astype(float) if i == k else c * xp.maximum(u, 0.0) ** (k - i))
        out += [xp.zeros_like(u)] * (n - k)  # φ^{(i)} = 0 a.e. beyond k (only used when masked)
        return out

    return stack


@functools.cache
def price_expectation(act: Activation, i: int, j: int) -> Callable:
    """``(cov12, var1, var2) ↦ E[φ^{(i)}(u) φ^{(j)}(v)]`` with Price's theorem as its JVP.

    This is what we hand to ``stax.Elementwise`` (the reference path). Each entry is computed on
    its own: ReLU^k by the arc-cosine formula, everything else by the 2-D quadrature of
    :mod:`ntk_theory._gauss2d`. Autodiff through it never differentiates a formula that is
    singular at ``x = x'``; it evaluates further expectations of derivatives of ``φ``.
    """

    @jax.custom_jvp
    def f(cov12, var1, var2):
        return _reference_pair(act, i, j, var1, cov12, var2)

    def f_jvp(primals, tangents):
        cov12, var1, var2 = primals
        out = f(cov12, var1, var2)
        tangent = jnp.zeros_like(out)
        for (di, dj, scale), dt in zip(
            ((1, 1, 1.0), (2, 0, 0.5), (0, 2, 0.5)), tangents, strict=True
        ):
            if act.max_derivative is not None and max(i + di, j + dj) > act.max_derivative:
                # E[φ^(i+2) φ^(j)] does not exist for ReLU^k beyond k derivatives. Nested JVPs
                # still trace such terms with identically-zero tangents; operator orders that
                # would need them with a non-zero tangent are refused up front.
                continue
            tangent = (
                tangent + scale * price_expectation(act, i + di, j + dj)(cov12, var1, var2) * dt
            )
        return out, tangent

    f.defjvp(f_jvp)
    return f


def _reference_pair(act: Activation, i: int, j: int, s11, s12, s22) -> jax.Array:
    """One Price pair entry by entry (reference path; see :func:`price_expectation`)."""
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    if act.relu_power:
        return act.pair_table([(i, j)], s11, s12, s22)[(i, j)]
    from ._gauss2d import expectations

    a, b = jnp.sqrt(jnp.maximum(s11, 0.0)), jnp.sqrt(jnp.maximum(s22, 0.0))
    rho = jnp.where(a * b > 0, s12 / jnp.where(a * b > 0, a * b, 1.0), 0.0)
    bounds = _static_bounds(a, b, rho)
    return expectations(act.stack(max(i, j)), a, b, rho, [(i, j, 0, 0)], **bounds)[0]


def _static_bounds(a, b, rho) -> dict:
    """Node-count bounds for :func:`ntk_theory._gauss2d.expectations` (concrete or traced)."""
    try:
        a_max, b_max = float(jnp.max(a)), float(jnp.max(b))
    except jax.errors.ConcretizationTypeError:
        # traced (inside jit/vmap of the reference path): a conservative bound
        a_max = b_max = 100.0
    return {"a_max": a_max, "b_max": b_max, "c_max": b_max}


# ----------------------------------------------------------------------------------------------
# Closed-form activations: the dual kernel is an explicit formula, evaluated on jets
# ----------------------------------------------------------------------------------------------
def _det_jet(s11: Jet, s12: Jet, s22: Jet, det: Jet | None) -> Jet:
    return det if det is not None else s11 * s22 - s12 * s12


@dataclass(frozen=True)
class _ClosedForm(Activation):
    @property
    def kind(self) -> str:
        return "closed"


@dataclass(frozen=True)
class _Erf(_ClosedForm):
    """``erf``: ``E[φφ] = (2/π) atan(2Σ12 / √D)``, ``E[φ'φ'] = (4/π) / √D`` (Williams 1997).

    ``D = (1+2Σ11)(1+2Σ22) - 4Σ12² = 1 + 2Σ11 + 2Σ22 + 4 det Σ`` is at least 1, and written with
    ``det Σ`` it does not cancel at large variances (``arcsin`` of an argument near 1 and the
    difference ``(1+2Σ11)(1+2Σ22) - 4Σ12²`` both lose all digits there: ``ntk`` at ``|x| = 1e8``
    returned ``inf``).
    """

    def dual(self, s11: Jet, s12: Jet, s22: Jet, table=None, det: Jet | None = None):
        d = 1.0 + 2.0 * (s11 + s22) + 4.0 * _det_jet(s11, s12, s22, det)
        inv = d.apply(rsqrt)
        nngp = (2.0 * s12 * inv).apply(jnp.arctan) * (2.0 / math.pi)
        return nngp, inv * (4.0 / math.pi)

    def stax_layer(self):
        return stax.Erf()


@dataclass(frozen=True)
class _Sin(_ClosedForm):
    """``sin``: ``E[φφ] = (e^{-D/2} - e^{-S/2})/2``, ``E[φ'φ'] = (e^{-D/2} + e^{-S/2})/2``.

    ``D = Var(u - v) = Σ11 + Σ22 - 2Σ12`` and ``S = Var(u + v)`` (Pearce et al. 2019 write
    ``e^{-(Σ11+Σ22)/2} sinh Σ12``, which is ``0 · inf`` at large variances).

    Operator kernels keep the chain rule through these closed forms at every input scale: the
    first layer "inside" would integrate ``sin(a z)`` numerically, which the 2-D quadrature
    does not resolve for ``a ≳ 10`` (1e-4 relative at |x| = 10).
    """

    first_layer_inside = False

    def dual(self, s11: Jet, s12: Jet, s22: Jet, table=None, det: Jet | None = None):
        total = s11 + s22
        minus = ((total - 2.0 * s12) * -0.5).apply(jnp.exp)
        plus = ((total + 2.0 * s12) * -0.5).apply(jnp.exp)
        return (minus - plus) * 0.5, (minus + plus) * 0.5

    def stax_layer(self):
        return stax.Sin()


@dataclass(frozen=True)
class _Gelu(_ClosedForm):
    """``gelu(x) = x Φ(x)``: closed form of Tsuchida et al. (arXiv 2002.08517), as in neural-tangents.

    With ``P = Σ11 Σ22``, ``P₁ = (1+Σ11)(1+Σ22)``, ``δ = √(P₁ - Σ12²) = √(1 + Σ11 + Σ22 + det Σ)``
    and ``ψ = atan(Σ12/δ)`` (``= arcsin(Σ12/√P₁)``):
    ``E[φφ] = Σ12/4 + [ (Σ12² + P δ²)/(P₁ δ) + Σ12 ψ ] / (2π)`` and
    ``E[φ'φ'] = 1/4 + ψ/(2π) + Σ12/(2π δ) (1/δ² + (2 + Σ11 + Σ22)/P₁)`` (neural-tangents'
    ``(1-P)/P₁ + 1`` rewritten without its cancellation).
    """

    def dual(self, s11: Jet, s12: Jet, s22: Jet, table=None, det: Jet | None = None):
        prod = s11 * s22
        prod1 = (1.0 + s11) * (1.0 + s22)
        delta2 = 1.0 + s11 + s22 + _det_jet(s11, s12, s22, det)
        inv_delta = delta2.apply(rsqrt)
        inv_prod1 = prod1.apply(reciprocal)
        angle = (s12 * inv_delta).apply(jnp.arctan)
        nngp = (s12 * s12 + prod * delta2) * inv_prod1 * inv_delta + s12 * angle
        nngp = nngp * (1.0 / (2 * math.pi)) + s12 * 0.25
        bracket = inv_delta * inv_delta + (2.0 + s11 + s22) * inv_prod1
        dot = s12 * inv_delta * bracket * (1.0 / (2 * math.pi)) + angle * (1.0 / (2 * math.pi))
        return nngp, dot + 0.25

    def stax_layer(self):
        return stax.Gelu()


_z = sp.Symbol("z")
_TANH_STRIP = math.pi / 2  # poles of tanh at ±iπ/2
_LOGISTIC_STRIP = math.pi  # poles of 1/(1+e^{-z}) (and log(1+e^z)) at ±iπ


ACTIVATIONS: dict[str, Activation] = {
    "erf": _Erf("erf", expr=sp.erf(_z), family="erf", source="Williams (1997), arcsin kernel"),
    "tanh": Activation(
        "tanh",
        mixture="tanh",
        expr=sp.tanh(_z),
        family="tanh",
        strip=_TANH_STRIP,
        source="numeric: Mehler series / sinh-mapped quadrature (poles at ±iπ/2)",
    ),
    "sin": _Sin("sin", expr=sp.sin(_z), family="sin", source="Pearce et al. (2019)"),
    "gelu": _Gelu(
        "gelu",
        expr=_z * (1 + sp.erf(_z / sp.sqrt(2))) / 2,
        family="gelu",
        source="Tsuchida, Pearce, van der Heide, Roosta, Gallagher (2020), arXiv 2002.08517",
    ),
    **{
        ("relu" if k == 1 else f"relu{k}"): Activation(
            "relu" if k == 1 else f"relu{k}",
            max_derivative=k,
            relu_power=k,
            source=f"Cho & Saul (2009), arc-cosine kernels, degree {k} (mixed degrees derived "
            "with sympy)",
        )
        for k in (1, 2, 3, 4)
    },
    "sigmoid": Activation(
        "sigmoid",
        mixture="sigmoid",
        expr=1 / (1 + sp.exp(-_z)),
        family="sigmoid",
        strip=_LOGISTIC_STRIP,
        source="numeric: Mehler series / sinh-mapped quadrature (poles at ±iπ)",
    ),
    "silu": Activation(
        "silu",
        mixture="silu",
        expr=_z / (1 + sp.exp(-_z)),
        family="silu",
        strip=_LOGISTIC_STRIP,
        source="numeric (SiLU/swish, x·sigmoid(x), PhysicsNeMo's default; poles at ±iπ)",
    ),
    "softplus": Activation(
        "softplus",
        mixture="softplus",
        expr=sp.log(1 + sp.exp(_z)),
        family="softplus",
        strip=_LOGISTIC_STRIP,
        source="numeric: log(1 + e^x) (branch points at ±iπ)",
    ),
}

#: Other names users write for the same functions.
ALIASES = {"swish": "silu", "relu1": "relu"}


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through)."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = ALIASES.get(activation, activation)
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]
    raise ValueError(
        f"Unknown activation {activation!r}. Known activations: {', '.join(ACTIVATIONS)} "
        f"(aliases: {', '.join(f'{k}={v}' for k, v in ALIASES.items())}), or build one with "
        "ntk_theory.Activation.from_sympy(name, expression)."
    )
