"""Activations: the functions, their Gaussian dual kernels, and how smooth they are.

Every activation provides what the rest of ntk_theory needs from it:

* ``fn`` -- the elementwise function, for finite networks (:meth:`MLP.finite`);
* ``derivative(i)`` -- ``φ^{(i)}`` as a JAX function, for Monte Carlo checks and quadrature;
* ``expectation_table(i_j_pairs, Σ11, Σ12, Σ22)`` -- ``E[φ^{(i)}(u) φ^{(j)}(v)]`` for
  ``(u, v) ~ N(0, [[Σ11, Σ12], [Σ12, Σ22]])``, accurate also when the covariance is singular
  (the diagonal ``x = x'``, DESIGN.md fact 7);
* ``dual(s11, s12, s22)`` -- jets (:mod:`ntk_theory._jets`) of ``E[φ(u)φ(v)]`` and
  ``E[φ'(u)φ'(v)]``, from which every layer of the kernel recursion and its derivatives follow;
* ``stax_layer()`` -- the neural-tangents layer with the same kernel;
* ``max_operator_order`` -- the highest differential-operator order whose kernel is finite
  and which the chain rule of :mod:`ntk_theory.operator_kernels` can evaluate.

Derivatives of the dual kernels come from Price's theorem (Price 1958):

.. math::
    \\partial_{Σ_{12}} E[f(u)g(v)] = E[f'(u)g'(v)],\\qquad
    \\partial_{Σ_{11}} E[f(u)g(v)] = \\tfrac12 E[f''(u)g(v)],

so a derivative of a kernel is again a Gaussian expectation of derivatives of ``φ``; we evaluate
those directly (closed forms or quadrature in variables that never degenerate) instead of
differentiating through a formula that is singular at ``x = x'``.

Closed forms: ``erf`` (Williams 1997, arcsin kernel), ``sin`` (Pearce et al. 2019),
``gelu`` (Tsuchida et al. 2020, arXiv 2002.08517, as implemented by neural-tangents), ReLU^k
(arc-cosine kernels, Cho & Saul 2009, "Kernel methods for deep learning", eq. (5)-(7), extended
here to mixed degrees). ``tanh`` has no closed form: a 2-D trapezoidal rule (:func:`gaussian_table`).
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

from ._jets import Jet, compose_expectation, reciprocal, rsqrt
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


# ----------------------------------------------------------------------------------------------
# Quadrature of E[f(u) g(v)] in variables that do not degenerate at Σ12² = Σ11 Σ22
# ----------------------------------------------------------------------------------------------
#: Trapezoidal step in the pre-activation ``u`` itself. tanh has poles at ``u = ±iπ/2``; for
#: integrands analytic in a strip of half-width ``a`` the trapezoidal rule converges like
#: ``exp(-2πa/h)`` (Trefethen & Weideman 2014, SIAM Review 56(3), Thm. 5.1), so
#: ``h = 0.2`` gives ``exp(-49)``; the constant in front is large near the poles (measured
#: ~1e3 for ``E[tanh²]``, more for high derivatives), hence the margin.
_STEP_U = 0.2
#: Largest step in the standard-normal variable ``z`` (resolves the Gaussian itself: the
#: trapezoidal error for ``e^{-z²/2}`` is ``~exp(-2π²/h²)``, negligible at 0.5).
_STEP_Z = 0.4
#: Smallest half-range ``L`` in ``z`` (truncation error ``~e^{-L²/2}``, 4e-13 at 7.5).
_RANGE_Z = 7.5
#: Trapezoidal nodes per dimension (2K + 1) where there is no closed form; see
#: :func:`gaussian_table` and the accuracy study in tests/test_activations.py.
QUADRATURE_NODES = 129


#: ``|ρ|`` above this is treated as exactly 1. On the diagonal ``x = x'`` the computed ``ρ`` is
#: ``1 - O(ε)``, and ``arccos`` turns an ``ε`` error into ``√(2ε) ≈ 2e-8`` in ``θ`` -- visible in
#: the (Lipschitz-in-θ) step kernel of ReLU's NTK. Snapping costs at most ``θ < 6e-8`` for pairs
#: of points that are genuinely this close.
_RHO_SNAP = 1.0 - 8 * float(np.finfo(np.float64).eps)


def _correlation(s11, s12, s22):
    """``ρ = Σ12 / sqrt(Σ11 Σ22)`` clipped to [-1, 1], snapped to ±1 within round-off."""
    rho = jnp.clip(s12 / jnp.sqrt(s11 * s22), -1.0, 1.0)
    return jnp.where(jnp.abs(rho) > _RHO_SNAP, jnp.sign(rho), rho)


def _steps(scale: jax.Array, half_nodes: int, step_u: float) -> jax.Array:
    """Per-entry step in ``z`` for a variable ``scale * z``: fine enough, wide enough."""
    h = jnp.minimum(_STEP_Z, step_u / jnp.maximum(scale, 1e-300))
    return jnp.maximum(h, _RANGE_Z / half_nodes)


def gaussian_table(
    derivative: Callable[[int], Callable],
    pairs: Iterable[Pair],
    s11: jax.Array,
    s12: jax.Array,
    s22: jax.Array,
    nodes: int,
) -> dict[Pair, jax.Array]:
    """``E[φ^{(i)}(u) φ^{(j)}(v)]`` for all ``(i, j)`` in ``pairs`` by 2-D trapezoidal quadrature.

    With ``u = √Σ11 z1`` and ``v = √Σ22 ρ z1 + σ_c z2`` (``σ_c = √(Σ22(1-ρ²))``) for independent
    standard normals ``z1, z2``, the integrand is smooth in ``(z1, z2)`` for every ``|ρ| ≤ 1``:
    nothing degenerates on the diagonal ``x = x'``, where any formula that differentiates
    through ``√(1-ρ²)`` breaks (DESIGN.md fact 7). Each entry gets its own steps in ``z1`` and
    ``z2`` (``min(0.4, 0.2/scale)``, at least ``7.5/K`` so ``±7.5`` is covered with
    ``nodes = 2K + 1``). With ``nodes = 129`` the relative error of ``E[φφ]`` and ``E[φ'φ']``
    is below 1e-12 for variances up to about 3 (tests/test_activations.py measures it); beyond that the step is capped
    by the range and accuracy degrades smoothly -- raise ``nodes`` for very large variances.
    """
    pairs = sorted(set(pairs))
    # High derivatives (an 8th-order operator pair needs φ^(13)) have higher-order poles and
    # feed a chain rule with strong cancellation: halve the step per 6 orders beyond 7.
    refine = 1 + max(0, (max(max(p) for p in pairs) - 2) // 6)
    step_u = _STEP_U / refine
    half = (nodes // 2) * refine
    k = jnp.arange(-half, half + 1, dtype=jnp.float64)
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    rho = _correlation(s11, s12, s22)
    a, b = jnp.sqrt(s11), jnp.sqrt(s22)
    cond = b * jnp.sqrt(jnp.maximum(1.0 - rho**2, 0.0))
    # The z1-integrand depends on z1 through u = a z1 and through v's mean b ρ z1.
    h1 = _steps(jnp.maximum(a, b * jnp.abs(rho)), half, step_u)
    h2 = _steps(cond, half, step_u)
    k_b = k.reshape((1,) * h2.ndim + (-1,))  # nodes on a trailing axis, explicit rank
    z2 = h2[..., None] * k_b  # (..., nodes)
    w2 = h2[..., None] * jnp.exp(-0.5 * z2**2) / math.sqrt(2 * math.pi)
    left_orders = sorted({i for i, _ in pairs})
    right_orders = sorted({j for _, j in pairs})

    def body(acc, kk):
        z1 = h1 * kk
        w1 = h1 * jnp.exp(-0.5 * z1**2) / math.sqrt(2 * math.pi)
        u = a * z1
        v = (b * rho * z1)[..., None] + cond[..., None] * z2
        right = {j: jnp.sum(derivative(j)(v) * w2, axis=-1) for j in right_orders}
        left = {i: w1 * derivative(i)(u) for i in left_orders}
        acc = {p: acc[p] + left[p[0]] * right[p[1]] for p in pairs}
        return acc, None

    init = {p: jnp.zeros_like(s12) for p in pairs}
    out, _ = jax.lax.scan(body, init, k)
    return out


# ----------------------------------------------------------------------------------------------
# Arc-cosine kernels of mixed degree: E[relu^m(u) relu^n(v)]
# ----------------------------------------------------------------------------------------------
@functools.cache
def _arccos_angular(m: int, n: int) -> Callable:
    """``I_{mn}(θ) = ∫_{θ-π/2}^{π/2} cos^m t cos^n(t-θ) dt`` (derived with sympy, lambdified).

    In polar coordinates ``E[relu^m(u) relu^n(v)] = Σ11^{m/2} Σ22^{n/2} / (2π)
    · 2^{(m+n)/2} Γ((m+n)/2 + 1) · I_{mn}(θ)`` with ``cos θ = ρ``; ``m = n`` gives Cho & Saul's
    ``J_n(θ) = 2^{n/2}... `` family (``I_{11} = (sin θ + (π-θ) cos θ)/2``).
    """
    t, th = sp.symbols("t theta", real=True)
    integrand = sp.expand(sp.cos(t) ** m * (sp.cos(t) * sp.cos(th) + sp.sin(t) * sp.sin(th)) ** n)
    integral = sp.integrate(integrand, (t, th - sp.pi / 2, sp.pi / 2))
    return sp.lambdify(th, integral, modules="jax")


def arccos_expectation(m: int, n: int, s11, s12, s22) -> jax.Array:
    """``E[relu^m(u) relu^n(v)]`` (``relu^0`` is the Heaviside step), exact closed form."""
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    theta = jnp.arccos(_correlation(s11, s12, s22))
    radial = 2.0 ** ((m + n) / 2) * math.gamma((m + n) / 2 + 1) / (2 * math.pi)
    angular = _arccos_angular(m, n)(theta)
    return s11 ** (m / 2) * s22 ** (n / 2) * radial * angular


# ----------------------------------------------------------------------------------------------
# The activation type
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """An activation function with everything the kernel machinery needs (see module doc).

    Attributes:
        name: registry name (``"erf"``, ``"relu3"``, ...).
        expr: the activation as a sympy expression in the symbol ``z`` (``None`` for ReLU^k,
            whose derivatives are written in closed form).
        max_derivative: how many times ``φ`` may be differentiated inside a Gaussian
            expectation (``None``: infinitely often). ReLU^k: ``k`` (``φ^{(k)} = k!`` step).
        quadrature_nodes: trapezoidal nodes per dimension where there is no closed form.
        source: where the kernel's closed form comes from.
    """

    name: str
    expr: sp.Expr | None = field(default=None, compare=False, repr=False)
    max_derivative: int | None = None
    quadrature_nodes: int = 0
    source: str = field(default="", compare=False, repr=False)
    relu_power: int = 0

    # -- the function and its derivatives ------------------------------------------------
    def derivative(self, i: int) -> Callable[[jax.Array], jax.Array]:
        """``φ^{(i)}`` as an elementwise JAX function."""
        return _derivative_fn(self, i)

    @property
    def fn(self) -> Callable[[jax.Array], jax.Array]:
        return self.derivative(0)

    # -- smoothness ----------------------------------------------------------------------
    def derivatives_needed(self, order_x: int, order_xp: int) -> int:
        """Largest ``i`` in ``E[φ^{(i)} φ^{(j)}]`` the chain rule needs for these orders.

        The NTK carries ``E[φ'φ']``; each ``q``-derivative costs two derivatives of ``φ`` on
        one side (Price), each ``s``-derivative one on both sides, so operators of orders
        ``p, p'`` reach ``1 + p + p' + max(p, p')``. (Plain kernel: 1.)
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
    def expectation_table(self, pairs: Iterable[Pair], s11, s12, s22) -> dict[Pair, jax.Array]:
        """``{(i, j): E[φ^{(i)}(u) φ^{(j)}(v)]}`` at the given covariance entries."""
        pairs = set(pairs)
        too_high = [
            p for p in pairs if self.max_derivative is not None and max(p) > self.max_derivative
        ]
        if too_high:
            raise SmoothnessError(
                f"'{self.name}' has {self.max_derivative} derivatives; E[φ^(i) φ^(j)] was asked "
                f"for (i, j) in {sorted(too_high)}."
            )
        if self.relu_power:
            k = self.relu_power
            out = {}
            for i, j in pairs:
                scale = (math.factorial(k) / math.factorial(k - i)) * (
                    math.factorial(k) / math.factorial(k - j)
                )
                out[(i, j)] = scale * arccos_expectation(k - i, k - j, s11, s12, s22)
            return out
        return gaussian_table(self.derivative, pairs, s11, s12, s22, nodes=self.quadrature_nodes)

    def dual(self, s11: Jet, s12: Jet, s22: Jet) -> tuple[Jet, Jet]:
        """Jets of ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` (Price's theorem + a table)."""
        return _price_dual(self, s11, s12, s22)

    def stax_layer(self):
        """The neural-tangents ``(init_fn, apply_fn, kernel_fn)`` of this activation."""
        return stax.Elementwise(
            fn=self.fn,
            nngp_fn=price_expectation(self, 0, 0),
            d_nngp_fn=price_expectation(self, 1, 1),
        )


def _price_dual(act: Activation, s11: Jet, s12: Jet, s22: Jet) -> tuple[Jet, Jet]:
    pairs: set[Pair] = set()

    def collect(i: int, j: int) -> jax.Array:
        pairs.add((i, j))
        return jnp.zeros(())

    # First pass records which expectations the Taylor composition needs (cheap: scalars).
    compose_expectation(collect, s11, s12, s22, shift=0)
    compose_expectation(collect, s11, s12, s22, shift=1)
    table = act.expectation_table(pairs, s11.value, s12.value, s22.value)
    lookup = table.__getitem__
    nngp = compose_expectation(lambda i, j: lookup((i, j)), s11, s12, s22, shift=0)
    dot = compose_expectation(lambda i, j: lookup((i, j)), s11, s12, s22, shift=1)
    return nngp, dot


@functools.cache
def _derivative_fn(act: Activation, i: int) -> Callable:
    if act.relu_power:
        k = act.relu_power
        if i > k:
            raise SmoothnessError(f"{act.name} has only {k} derivatives (asked for {i}).")
        c = math.factorial(k) / math.factorial(k - i)
        if i == k:
            return lambda x: c * (x > 0).astype(jnp.result_type(x))
        p = k - i
        return lambda x: c * jnp.maximum(x, 0.0) ** p
    z = sp.Symbol("z", real=True)
    expr = act.expr.subs(sp.Symbol("z"), z)
    return sp.lambdify(z, sp.diff(expr, z, i), modules=_JAX_MODULES)


#: sympy's "jax" printer does not know erf; map it (and friends) explicitly.
_JAX_MODULES = [{"erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc}, "jax"]


@functools.cache
def price_expectation(act: Activation, i: int, j: int) -> Callable:
    """``(cov12, var1, var2) ↦ E[φ^{(i)}(u) φ^{(j)}(v)]`` with Price's theorem as its JVP.

    This is what we hand to ``stax.Elementwise``: autodiff through it never differentiates the
    quadrature or the arc-cosine formula (singular at ``x = x'``), it evaluates further
    expectations of derivatives of ``φ`` instead, so nested derivatives stay exact there.
    """

    @jax.custom_jvp
    def f(cov12, var1, var2):
        return act.expectation_table([(i, j)], var1, cov12, var2)[(i, j)]

    def f_jvp(primals, tangents):
        cov12, var1, var2 = primals
        out = f(cov12, var1, var2)
        tangent = jnp.zeros_like(out)
        for (di, dj, scale), dt in zip(
            ((1, 1, 1.0), (2, 0, 0.5), (0, 2, 0.5)), tangents, strict=True
        ):
            if act.max_derivative is not None and max(i + di, j + dj) > act.max_derivative:
                # E[φ^(i+2) φ^(j)] does not exist for ReLU^k beyond k derivatives. Nested JVPs
                # still trace such terms with identically-zero tangents (vmap instantiates
                # symbolic zeros), so we drop them here; operator orders that would need them
                # with a non-zero tangent are refused up front by check_operator_orders.
                continue
            tangent = (
                tangent + scale * price_expectation(act, i + di, j + dj)(cov12, var1, var2) * dt
            )
        return out, tangent

    f.defjvp(f_jvp)
    return f


# ----------------------------------------------------------------------------------------------
# Closed-form activations: the dual kernel is an explicit formula, evaluated on jets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Erf(Activation):
    """``erf``: ``E[φφ] = (2/π) arcsin(2Σ12 / √((1+2Σ11)(1+2Σ22)))`` (Williams 1997).

    ``E[φ'φ'] = (4/π) / √((1+2Σ11)(1+2Σ22) - 4Σ12²)``. Both are analytic on the whole PSD cone
    including its boundary (the argument of arcsin stays below 1), so Taylor-mode
    differentiation of the formula is exact on the diagonal.
    """

    def dual(self, s11: Jet, s12: Jet, s22: Jet) -> tuple[Jet, Jet]:
        a = (1.0 + 2.0 * s11).apply(rsqrt)
        b = (1.0 + 2.0 * s22).apply(rsqrt)
        rho = 2.0 * (s12 * (a * b))
        nngp = rho.apply(jnp.arcsin) * (2.0 / math.pi)
        dot = (a * b) * (1.0 - rho * rho).apply(rsqrt) * (4.0 / math.pi)
        return nngp, dot

    def stax_layer(self):
        return stax.Erf()


@dataclass(frozen=True)
class _Sin(Activation):
    """``sin``: ``E[φφ] = e^{-(Σ11+Σ22)/2} sinh Σ12``, ``E[φ'φ'] = e^{-(Σ11+Σ22)/2} cosh Σ12``."""

    def dual(self, s11: Jet, s12: Jet, s22: Jet) -> tuple[Jet, Jet]:
        damp = (s11 * -0.5).apply(jnp.exp) * (s22 * -0.5).apply(jnp.exp)
        return damp * s12.apply(jnp.sinh), damp * s12.apply(jnp.cosh)

    def stax_layer(self):
        return stax.Sin()


@dataclass(frozen=True)
class _Gelu(Activation):
    """``gelu(x) = x Φ(x)``: closed form of Tsuchida et al. (arXiv 2002.08517), as in neural-tangents.

    With ``P = Σ11 Σ22``, ``P₁ = (1+Σ11)(1+Σ22)``, ``δ = √(P₁ - Σ12²)`` and
    ``ψ = arcsin(Σ12/√P₁)``:
    ``E[φφ] = Σ12/4 + [ (Σ12² + P δ²)/(P₁ δ) + Σ12 ψ ] / (2π)`` and
    ``E[φ'φ'] = 1/4 + ψ/(2π) + Σ12/(2π δ) (1/δ² + (1-P)/P₁ + 1)``.
    ``δ² ≥ Σ11 + Σ22 + 1 > 0``, so both are analytic on the diagonal.
    """

    def dual(self, s11: Jet, s12: Jet, s22: Jet) -> tuple[Jet, Jet]:
        prod = s11 * s22
        prod1 = (1.0 + s11) * (1.0 + s22)
        delta2 = prod1 - s12 * s12
        inv_delta = delta2.apply(rsqrt)
        inv_prod1 = prod1.apply(reciprocal)
        angle = (s12 * prod1.apply(rsqrt)).apply(jnp.arcsin)
        nngp = (s12 * s12 + prod * delta2) * inv_prod1 * inv_delta + s12 * angle
        nngp = nngp * (1.0 / (2 * math.pi)) + s12 * 0.25
        bracket = inv_delta * inv_delta + (1.0 - prod) * inv_prod1 + 1.0
        dot = s12 * inv_delta * bracket * (1.0 / (2 * math.pi)) + angle * (1.0 / (2 * math.pi))
        return nngp, dot + 0.25

    def stax_layer(self):
        return stax.Gelu()


_z = sp.Symbol("z")


ACTIVATIONS: dict[str, Activation] = {
    "erf": _Erf(
        "erf",
        expr=sp.erf(_z),
        quadrature_nodes=QUADRATURE_NODES,
        source="Williams (1997), arcsin kernel",
    ),
    "tanh": Activation(
        "tanh",
        expr=sp.tanh(_z),
        quadrature_nodes=QUADRATURE_NODES,
        source=f"no closed form: {QUADRATURE_NODES}x{QUADRATURE_NODES} trapezoidal rule in (z1, z2)",
    ),
    "sin": _Sin(
        "sin", expr=sp.sin(_z), quadrature_nodes=QUADRATURE_NODES, source="Pearce et al. (2019)"
    ),
    "gelu": _Gelu(
        "gelu",
        expr=_z * (1 + sp.erf(_z / sp.sqrt(2))) / 2,
        quadrature_nodes=QUADRATURE_NODES,
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
}


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through)."""
    if isinstance(activation, Activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown activation {activation!r}. Known activations: {', '.join(ACTIVATIONS)} "
            "(or pass an ntk_theory.Activation)."
        ) from None
