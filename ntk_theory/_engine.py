"""The kernel engine: infinite-width NNGP/NTK and their Taylor jets in the inputs, in blocks.

One routine computes every analytic kernel of the package: ``MLP.ntk`` / ``MLP.nngp`` are the
jets of support ``{0}``, operator kernels read ``∂_x^α ∂_{x'}^β Θ`` off the jets of the operators'
support (:func:`ntk_theory._jets.support`). The recursion (neural-tangents' conventions; Jacot et
al. 2018, Thm. 1; Lee et al. 2019, eq. (7)) is

.. math::
    Σ^1 = σ_w^2 ⟨x, x'⟩/d + σ_b^2,\\quad Θ^1 = Σ^1,\\qquad
    Σ^{l+1} = σ_w^2 E[φ(u)φ(v)] + σ_b^2,\\quad Θ^{l+1} = Σ^{l+1} + σ_w^2 E[φ'(u)φ'(v)]\\, Θ^l,

applied to jets. Work is split in two:

* **the plan** (host, once per call): the per-point variances ``Σ^l(x, x)`` of every layer, the
  evaluation method of each layer, the number of Mehler terms of each Price pair
  (:func:`ntk_theory._hermite.pair_terms`) and the per-point Mehler coefficients
  (:mod:`ntk_theory._hermite`), written once into the layout the blocks read (one array for
  the scanned layers; only the non-zero parity class for odd/even activations);
* **blocks** (compiled, 128 × 128 by default): the jet recursion, with Price pairs from the
  layer's method, and the read-out ``Σ a_α(x) b_β(x') α! β! Θ_{αβ}``.

Methods per layer: ``closed`` (erf, sin, gelu formulas on jets), ``relu`` (arc-cosine Price
pairs), ``mehler`` (numeric activations, per-point coefficients), ``quadrature`` (numeric
activations at variances where the Mehler series would need more than 1536 terms) and
``mixture`` (the logistic family's closed-form Gaussian scale mixtures,
:mod:`ntk_theory._mixture`, wherever an operator kernel's chain rule through Price pairs would
lose digits: a first layer above :data:`NUMERIC_CHAIN_VARIANCE` or at orders ≥ 3, deeper
layers of SiLU and softplus above :data:`PRICE_VARIANCE`, deeper layers at orders ≥ 3). The
first layer of other activations is ``inside`` there: the derivatives are moved inside the
expectation (:mod:`ntk_theory._first_layer`), the other cancellation-free form.

``det Σ`` of the pre-activations enters the closed forms: the first layer has it from the input
geometry, deeper layers form it from the entries. Deep gelu, SiLU and softplus operator kernels
at large variances (:data:`POLAR_VARIANCE`) take another route, :func:`_polar_recursion`: every
layer in the polar form of :mod:`ntk_theory._polar`, which hands the next one its per-point
norms, correlation and ``det Σ/(a²b²)`` without cancellation; points with a first-layer variance
below :data:`POLAR_SMALL_VARIANCE` (near the origin with a small bias) carry their variance
instead of their norm.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import _gauss2d, _hermite, _mixture, _polar
from ._first_layer import (
    binomial,
    longer_frame,
    multi_indices_below,
    norm_and_direction,
    weight_polynomial,
)
from ._jets import Jet, factorial, select, split

__all__ = ["BlockSpec", "LayerSpec", "kernel_blocks", "layer_variances", "plan"]

#: First-layer variance above which operator kernels of order 1 and 2 of closed-form activations
#: (erf, sin, gelu) move the input derivatives inside the expectation; below it their closed
#: forms, with ``det Σ¹`` from the input geometry, lose nothing (erf ≤ 1e-15, gelu ≤ 6e-14 at
#: variance 3.9, ``u_xx``). At order >= 3 (per side) the chain rule costs up to ~5 digits
#: already at variance 2 (tanh, order 4: 5e-10), so those orders always leave it.
CHAIN_VARIANCE = 4.0
#: The same switch for activations without a closed form (the Price pairs of Mehler series or
#: quadrature, composed through the covariance jets): above it the logistic family (tanh,
#: sigmoid, SiLU, softplus) takes its closed-form scale mixture with the geometric ``det Σ¹``
#: (within 2e-14 of the reference sweep at |x| = 3 … 100, orders 0 … 4, and of the inside form
#: up to |x| = 3000; 4x faster than the inside form for the 2-D Laplacian), other numeric
#: activations the inside form. Below it the chain rule, with tails at OPERATOR_TOLERANCE where
#: its jets are large (SHARP_JET), stays within 7.2e-12 (tanh, ``u_xx``, x = 1, ``W_std = 1.3``;
#: the other logistic activations ≤ 3e-14); between 2 and 4 it lost up to 2e-10 (tanh, ``u_xx``,
#: x = 1.3: the Price pairs' ~1e-15 amplified ~1e4-fold).
NUMERIC_CHAIN_VARIANCE = 2.0
#: Per-side derivative order from which the first layer always runs "inside".
INSIDE_ORDER = 3
#: First-layer covariance increment ``∂Σ11/∂x_k = 2σ_w² x_k/d`` from which a first layer under
#: the chain rule cuts its Mehler tails at ``_hermite.OPERATOR_TOLERANCE`` (1e-18, not 1e-14):
#: the chain rule multiplies the Price pairs' errors by a power of it. tanh, ``u_xx``, one layer
#: (``W_std`` 1 ... 1.9, first-layer variance ≤ 2), against the inside form, increment 1.5 /
#: 2 / 2.5 / 3.4 / 3.8: tails at 1e-14 give 6e-13 / 4e-12 / 5e-12 / 3.5e-11 / 1.3e-11, at 1e-18
#: 1e-14 / 2e-13 / 8e-14 / 2.2e-12 / 2.7e-12. Below it the tighter tails only cost time (the
#: 2-D Laplacian on [0, 1]² with ``W_std = 1.3``, increment 1.7, stays below 2e-12 with 1e-14,
#: 40 % faster).
SHARP_JET = 2.0
#: Largest input coordinate the engine accepts (no input embedding) for activations without a
#: closed form and for operator kernels. Checked to ≤ 1e-11 up to |x| = 1000
#: (tests/test_reference.py); far beyond, the first layer's quadrature fails (tanh's plain Θ at
#: |x| = 1e8 was half its value), so larger inputs get an error asking to rescale. Closed-form
#: plain kernels (erf, sin, gelu, ReLU^k) have no such limit (erf is finite and right at 1e8).
MAX_INPUT = 1e4
#: Largest pre-activation variance of hidden layers 2, 3, ... for operator kernels whose
#: deeper layers form ``det Σ`` from the entries. Deeper layers compose closed forms through
#: their covariance jets, and ``det Σ`` formed from the entries there cancels (the first layer
#: has it from the input geometry): for gelu (depth 2, u_xx, against mpmath) the error is
#: ~5e-16 × variance, 8e-12 at 1.4e4. gelu, SiLU and softplus take the polar route instead
#: above :data:`POLAR_VARIANCE` (their limit is :data:`POLAR_DEEP_VARIANCE`); other unbounded
#: activations are refused earlier
#: (:data:`PRICE_VARIANCE`), bounded ones keep O(1) deeper variances unless ``W_std`` is huge.
#: ReLU^k is exempt: its arc-cosine kernels are positively homogeneous, so their chain rule
#: loses the same digits at every variance.
MAX_DEEP_VARIANCE = 1e4
#: Deeper-layer variance above which gelu, SiLU and softplus operator kernels take the polar
#: route (:func:`_polar_recursion`, :mod:`ntk_theory._polar`): at large inputs their covariances
#: are nearly bilinear, and every square root of a near-quadratic jet the closed forms take
#: loses a factor ``~x²`` (gelu, depth 2, ``∂²_x∂²_x'Θ``, ``W_std = 1.3``, against 50-digit
#: mpmath: 2.9e-9 at (1000, 1003) with ``det Σ`` formed from the entries, 1.6e-11 at (-700, 1000)
#: with it carried alone; the polar route: ≤ 2.3e-15 at depths 2 and 3 on all pairs of ±0.01 …
#: ±1e4).
POLAR_VARIANCE = 100.0
#: Largest deeper-layer variance for operator kernels on the polar route. What it carries are
#: norms and degree-0 jets, so its accuracy does not depend on the scale: one layer is checked
#: at variances up to 1e8 (tests/test_polar.py), the deep kernels up to |x| = 1e4 = MAX_INPUT
#: (deeper variance 1.4e8 at ``W_std = 1.3``: NTK within 2.3e-15, NNGP within 5e-14 of
#: 50-digit mpmath, gelu, depth 3, all pairs of ±0.01 … ±1e4 but (-1e4, 1e4): 5.8e-13).
#: Beyond 1e10 (a huge ``W_std``) nothing is checked.
POLAR_DEEP_VARIANCE = 1e10
#: Deeper-layer variance above which *NNGP* operator kernels of order ≥ 2 of unbounded
#: activations at depth ≥ 2 leave the composition through the covariance entries. Their
#: covariance ``Σ^{L+1}(x, x')`` becomes nearly bilinear as the inputs grow (the activation
#: approaches ReLU, which is homogeneous), so its mixed derivatives are orders of magnitude
#: below the terms that composition sums: gelu, depth 2, ``∂²_x∂²_x'Σ``, pairs of ±1 … ±4
#: (variance ≤ 23) within 6e-12 of 50-digit mpmath, 1e-11 at (5, -4.5), 1e-10 at |x| = 10 … 15
#: and 1e-7 at |x| = 1000. gelu, SiLU and softplus take the polar route above it; other
#: unbounded activations are refused. (The NTK's extra term keeps its mixed derivatives large.)
NNGP_DEEP_VARIANCE = 25.0
#: First-layer variance ``σ_w²|x|²/d + σ_b²`` below which a point on the polar route is *small*:
#: it carries its variance instead of its norm (:func:`ntk_theory._polar.mixed_layer`). Near
#: the origin with a small bias the degree-0 variables ``1/a²`` of the polar form have Taylor
#: coefficients ``~1/a^k`` and its closed forms cancel: gelu/softplus, depths 2 and 3, u_xx,
#: ``W_std = 1.3``, points 0 … 12 all taken as large, against the entries' route, by ``b_std``
#: (first-layer variance at x = 0 ``b_std²``): 0.15: 2.1e-12; 0.1: 7e-12; 0.07: 7e-11; 0.05:
#: 1.5e-10; 0.01: 3e-8 (and a negative diagonal at x = 1e-6 with ``b_std = 0``).
POLAR_SMALL_VARIANCE = 1.0
#: Smallest variance, in any layer, of a large point on the polar route (see
#: :data:`POLAR_SMALL_VARIANCE`); smaller ones are refused.
POLAR_MIN_VARIANCE = 0.02
#: Pre-activation variance of hidden layers 2, 3, ... above which operator kernels of
#: *unbounded* activations leave the Price-pair chain rule. It composes ``E[φ^{(i)}φ^{(j)}]``
#: through the covariance jets, whose increments grow like the inputs when ``φ`` does: against
#: the mixture route (itself within 1e-14 of a 50-digit evaluation), SiLU's ``u_xx`` kernel at
#: depth 2 (``W_std`` 1 ... 3) loses 5e-13 at variance 2.4, 3e-12 at 5, 1e-10 at 9 and 4e-7
#: at 143; softplus 2e-12 at 7.5. Bounded activations keep O(1) jets: tanh and sigmoid stay
#: within 3e-12 up to variance 9 (``W_std = 3``). Above it SiLU and softplus take their
#: closed-form scale mixtures (:mod:`ntk_theory._mixture`); other unbounded activations are
#: refused.
PRICE_VARIANCE = 2.0


# ----------------------------------------------------------------------------------------------
# specs (static: they select the compiled program)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSpec:
    """How the Price pairs of one hidden layer are computed.

    Attributes:
        method: ``"closed"``, ``"relu"``, ``"mehler"``, ``"quadrature"`` or ``"inside"``.
        orders: derivative orders of the Mehler coefficient arrays (``"mehler"`` only).
        terms: number of Mehler terms per order.
        parity: per order, 0/1 if only even/odd coefficients are non-zero, else -1.
        bounds: ``(a_max, b_max, c_max)`` for the quadrature's node counts.
        compact: the coefficients hold only each order's non-zero parity class (column ``j``
            is ``k = parity + 2j``; see :func:`_hermite.hermite_coefficients`).
        pairs: ``(p, q, K_pq)`` per Price pair, its number of terms
            (:func:`_hermite.pair_terms`); ``terms`` is then each order's longest pair.
    """

    method: str
    orders: tuple[int, ...] = ()
    terms: tuple[int, ...] = ()
    parity: tuple[int, ...] = ()
    bounds: tuple[float, float, float] = (1.0, 1.0, 1.0)
    compact: bool = False
    pairs: tuple[tuple[int, int, int], ...] = ()

    @property
    def width(self) -> int:
        return max(self.terms) if self.terms else 0


@dataclass(frozen=True)
class BlockSpec:
    """Everything that fixes the compiled block function (with the network)."""

    support: frozenset
    dim: int
    layers: tuple[LayerSpec, ...]
    get: str
    scan: bool
    #: key of :data:`ntk_theory._polar.ACTIVATIONS` when every layer takes the polar route
    #: (:data:`POLAR_VARIANCE`), else ``None``
    polar: str | None = None
    #: whether some points on the polar route are small (:data:`POLAR_SMALL_VARIANCE`)
    polar_small: bool = False


# ----------------------------------------------------------------------------------------------
# per-point quantities (host)
# ----------------------------------------------------------------------------------------------
def input_variance(x: np.ndarray) -> np.ndarray:
    """``⟨x, x⟩/d``: the input covariance on the diagonal (neural-tangents' normalization)."""
    x = np.asarray(x, dtype=float)
    return np.sum(x * x, axis=1) / x.shape[1]


def layer_variances(net, x: np.ndarray) -> np.ndarray:
    """``Σ^l(x_i, x_i)`` for hidden layers ``l = 1..depth``: shape ``(depth, n)``."""
    act = net.act
    w2, b2 = net.W_std**2, net.b_std**2
    s = w2 * net.input_variance(x) + b2
    out = [s]
    for _ in range(net.depth - 1):
        s = w2 * diagonal_expectation(act, s) + b2
        out.append(s)
    return np.stack(out)


def diagonal_expectation(act, s: np.ndarray) -> np.ndarray:
    """``E[φ(u)²]`` for ``u ~ N(0, s)`` (closed forms where they exist, else 1-D quadrature)."""
    s = np.asarray(s, dtype=float)
    name = act.name if act.kind != "numeric" else None
    if name == "erf":
        return 2 / math.pi * np.arctan2(2 * s, np.sqrt(1 + 4 * s))
    if name == "sin":
        return 0.5 * (1.0 - np.exp(-2 * s))
    if act.relu_power:
        k = act.relu_power
        return s**k * math.prod(range(1, 2 * k, 2)) / 2.0  # E[relu^k(u)²] = s^k (2k-1)!!/2
    stack = act.stack(0, "numpy")
    return _gauss2d.numpy_diagonal(stack, np.sqrt(np.maximum(s, 0.0)), [0])[0]


# ----------------------------------------------------------------------------------------------
# the recursion on jets
# ----------------------------------------------------------------------------------------------
def _dense(net, state, fan_in: float):
    """Dense layer on post-activation covariances ``e``: pre-activation ``Σ`` and ``Θ``."""
    e12, e11, e22, ntk_in = state
    w2, b2 = net.W_std**2, net.b_std**2
    s12, s11, s22 = e12 * w2 + b2, e11 * w2 + b2, e22 * w2 + b2
    if net.parameterization == "standard":  # neural-tangents Dense: Θ = n_in Σ_in + σ_w² Θ_in + 1
        ntk = e12 * fan_in + 1.0
        if ntk_in is not None:
            ntk = ntk + ntk_in * w2
    else:  # "ntk": Θ = Σ + σ_w² Θ_in
        ntk = s12 if ntk_in is None else s12 + ntk_in * w2
    return s12, s11, s22, ntk


class _Tables:
    """Price-pair providers of one hidden layer inside a block (see :class:`LayerSpec`)."""

    def __init__(self, act, spec: LayerSpec, rows, cols, terms=None):
        self.act, self.spec, self.rows, self.cols = act, spec, rows, cols
        # traced per-pair term counts of this layer (scanned layers), in spec.pairs' order
        self.terms = terms

    def _mehler_spec(self, pairs):
        idx = {p: i for i, p in enumerate(self.spec.orders)}
        planned = {(i, j): (n, k) for n, (i, j, k) in enumerate(self.spec.pairs)}
        out, dyn = [], []
        for i, j in pairs:
            if (i, j) not in planned:
                raise AssertionError(f"Price pair {(i, j)} was not planned: {planned}")
            n, k = planned[(i, j)]
            pi, pj = self.spec.parity[idx[i]], self.spec.parity[idx[j]]
            if pi >= 0 and pj >= 0 and pi != pj:
                par = -2  # the sum vanishes identically
            else:
                par = max(pi, pj)
            out.append((idx[i], idx[j], k, par))
            if self.terms is not None:
                dyn.append(self.terms[n])
        return out, (dyn if self.terms is not None else None)

    def full(self, s11, s12, s22, det=None):
        """``pairs ↦ {(i, j): E[φ^{(i)}(u)φ^{(j)}(v)]}`` on the whole block."""
        act, spec = self.act, self.spec

        def table(pairs):
            if spec.method == "relu":
                return act.pair_table(
                    pairs, s11.value, s12.value, s22.value, None if det is None else det.value
                )
            if spec.method == "mehler":
                (coef_r, a_r), (coef_c, a_c) = self.rows, self.cols
                ab = a_r[:, None] * a_c[None, :]
                rho = jnp.where(ab > 0, s12.value / jnp.where(ab > 0, ab, 1.0), 0.0)
                rho = jnp.clip(rho, -1.0, 1.0)
                specs, dyn = self._mehler_spec(pairs)
                keep = [i for i, sp in enumerate(specs) if sp[3] != -2]
                live = [specs[i] for i in keep]
                terms = None if dyn is None else [dyn[i] for i in keep]
                sums = iter(
                    _hermite.mehler_sums(rho, coef_r, coef_c, live, terms, compact=spec.compact)
                )
                zero = jnp.zeros_like(rho)
                return {
                    p: (zero if sp[3] == -2 else next(sums))
                    for p, sp in zip(pairs, specs, strict=True)
                }
            if spec.method == "quadrature":
                v11, v12, v22 = jnp.broadcast_arrays(s11.value, s12.value, s22.value)
                a, b = jnp.sqrt(jnp.maximum(v11, 0.0)), jnp.sqrt(jnp.maximum(v22, 0.0))
                ab = a * b
                rho = jnp.where(ab > 0, v12 / jnp.where(ab > 0, ab, 1.0), 0.0)
                a_max, b_max, c_max = spec.bounds
                vals = _gauss2d.expectations(
                    act.stack(max(max(p) for p in pairs)),
                    a,
                    b,
                    rho,
                    [(i, j, 0, 0) for i, j in pairs],
                    a_max=a_max,
                    b_max=b_max,
                    c_max=c_max,
                )
                return dict(zip(pairs, vals, strict=True))
            raise AssertionError(spec.method)

        return table

    def diagonal(self, s, side: str):
        """``pairs ↦ {(i, j): E[φ^{(i)}(u)φ^{(j)}(u)]}`` per point (rows or columns)."""
        act, spec = self.act, self.spec

        def table(pairs):
            if spec.method == "relu":
                return act.pair_table(pairs, s.value, s.value, s.value, 0.0)
            if spec.method == "mehler":
                coef, _ = self.rows if side == "rows" else self.cols
                idx = {p: i for i, p in enumerate(spec.orders)}
                out = {}
                specs, dyn = self._mehler_spec(pairs)
                for n_pair, ((i, j), (_, _, k, par)) in enumerate(zip(pairs, specs, strict=True)):
                    if par == -2:
                        out[(i, j)] = jnp.zeros(coef.shape[1])
                        continue
                    # columns of k < K (compact: the pair's parity class only)
                    cols = _hermite.class_size(k, par) if spec.compact else k
                    prod = coef[idx[i], :, :cols] * coef[idx[j], :, :cols]
                    if dyn is not None:
                        live = (
                            _hermite.class_size(dyn[n_pair], par) if spec.compact else dyn[n_pair]
                        )
                        prod = jnp.where(jnp.arange(cols) < live, prod, 0.0)
                    out[(i, j)] = jnp.sum(prod, axis=-1)
                shape = (-1, 1) if side == "rows" else (1, -1)
                return {p: v.reshape(shape) for p, v in out.items()}
            if spec.method == "quadrature":
                a = jnp.sqrt(jnp.maximum(s.value, 0.0))
                a_max = spec.bounds[0] if side == "rows" else spec.bounds[1]
                vals = _gauss2d.diagonal(
                    act.stack(max(max(p) for p in pairs)), a, pairs, a_max=a_max
                )
                return dict(zip(pairs, vals, strict=True))
            raise AssertionError(spec.method)

        return table


def _hidden(net, state, spec: LayerSpec, rows, cols, fan_in, det=None, terms=None):
    """Dense + activation: post-activation ``(e12, e11, e22)`` and ``Θ · E[φ'φ']``.

    ``det``: a jet of ``det Σ`` of this layer's pre-activations where the caller has one
    without cancellation (the first layer, from the input geometry).
    """
    act = net.act
    s12, s11, s22, ntk = _dense(net, state, fan_in)
    if spec.method == "mixture":
        e12, edot = _mixture.dual(act.mixture, s11, s12, s22, det)
        e11 = _mixture.dual(act.mixture, s11, s11, s11, 0.0 * s11, dot=False)[0]
        e22 = _mixture.dual(act.mixture, s22, s22, s22, 0.0 * s22, dot=False)[0]
    elif spec.method == "closed":
        e12, edot = act.dual(s11, s12, s22, det=det)
        e11 = act.dual(s11, s11, s11, det=0.0 * s11)[0]
        e22 = act.dual(s22, s22, s22, det=0.0 * s22)[0]
    else:
        tables = _Tables(act, spec, rows, cols, terms)
        e12, edot = act.dual(s11, s12, s22, tables.full(s11, s12, s22, det))
        e11 = act.dual(s11, s11, s11, tables.diagonal(s11, "rows"))[0]
        e22 = act.dual(s22, s22, s22, tables.diagonal(s22, "cols"))[0]
    return e12, e11, e22, ntk * edot


# ----------------------------------------------------------------------------------------------
# input jets
# ----------------------------------------------------------------------------------------------
def _input_jets(x1, x2, support):
    """Jets of ``e12 = ⟨x+dx, x'+dx'⟩/d``, ``e11``, ``e22`` and of the geometry terms
    ``(|x ∧ x'|²/d², |x - x'|²/d)`` whose combination is ``det Σ¹`` without cancellation."""
    d = x1.shape[1]
    zero = (0,) * (2 * d)
    inv = 1.0 / d

    def unit(k, side):
        m = [0] * (2 * d)
        m[k + side * d] = 1
        return tuple(m)

    def lin(values, side):
        """Jet of the coordinate arrays ``x_k + dx_k`` (side 0) or ``x'_k + dx'_k`` (side 1)."""
        jets = []
        for k in range(d):
            col = values[:, k : k + 1] if side == 0 else values[:, k][None, :]
            coeffs = {zero: col}
            if unit(k, side) in support:
                coeffs[unit(k, side)] = 1.0
            jets.append(Jet(coeffs, support))
        return jets

    X, Y = lin(x1, 0), lin(x2, 1)
    e12 = sum((X[k] * Y[k] for k in range(d)), Jet.constant(0.0, support)) * inv
    e11 = sum((X[k] * X[k] for k in range(d)), Jet.constant(0.0, support)) * inv
    e22 = sum((Y[k] * Y[k] for k in range(d)), Jet.constant(0.0, support)) * inv
    # differences δ = x' - x (formed from the inputs directly: no cancellation) and wedges
    D = []
    for k in range(d):
        coeffs = {zero: x2[:, k][None, :] - x1[:, k : k + 1]}
        if unit(k, 1) in support:
            coeffs[unit(k, 1)] = 1.0
        if unit(k, 0) in support:
            coeffs[unit(k, 0)] = -1.0
        D.append(Jet(coeffs, support))
    dist = sum((D[k] * D[k] for k in range(d)), Jet.constant(0.0, support)) * inv
    wedge = Jet.constant(0.0, support)
    for k in range(d):
        for l in range(k + 1, d):
            w = X[k] * D[l] - X[l] * D[k]  # x_k x'_l - x_l x'_k
            wedge = wedge + w * w
    return e12, e11, e22, (wedge * (inv * inv), dist)


# ----------------------------------------------------------------------------------------------
# first layer with the derivatives inside the expectation
# ----------------------------------------------------------------------------------------------
def _inside_first_layer(net, x1, x2, support, spec: LayerSpec):
    """Post-activation jets of the first hidden layer, every coefficient one Gaussian integral."""
    act = net.act
    d = x1.shape[1]
    c = net.W_std / math.sqrt(d)

    def augment(x):
        return jnp.concatenate([x * c, jnp.full((x.shape[0], 1), net.b_std)], axis=1)

    xt1, xt2 = augment(x1), augment(x2)
    # e₁ along the longer input of each pair; where that is x̃' (swap), u and v trade places
    swap, outer, inner, rho, s, first, second = longer_frame(xt1, xt2)
    basis = jnp.stack([first, second], axis=-1)  # (n₁, n₂, D, 2)
    cov = complement_covariance(basis)
    A = [first[..., k] for k in range(d)]
    B = [second[..., k] for k in range(d)]
    C = [[cov[..., k, l] for l in range(d)] for k in range(d)]
    keys = sorted(support)
    # what to integrate: for each key (α, β) and shift, polynomial × φ^{(|α|+s)} φ^{(|β|+s)},
    # the order of the outer point first (β's where the frame is x̃')
    plans = {}
    terms: set = set()
    for m in keys:
        alpha, beta = split(m)
        gamma = tuple(x + y for x, y in zip(alpha, beta, strict=True))
        monomials, fn = weight_polynomial(gamma)
        plans[m] = (alpha, beta, monomials, fn)
        for shift in (0, 1):
            for mm, nn in monomials:
                p, q = sum(alpha) + shift, sum(beta) + shift
                terms.update({(p, q, mm, nn), (q, p, mm, nn)})
    terms = sorted(terms)
    a_max, b_max, c_max = spec.bounds
    order = max(max(t[0], t[1]) for t in terms)
    vals = _gauss2d.expectations(
        act.stack(order), outer, inner, rho, terms, a_max=a_max, b_max=b_max, c_max=c_max, s=s
    )
    by_term = dict(zip(terms, vals, strict=True))
    integral = {
        (p, q, mm, nn): jnp.where(swap, by_term[(q, p, mm, nn)], by_term[(p, q, mm, nn)])
        for p, q, mm, nn in terms
    }
    full = {0: {}, 1: {}}
    for m, (alpha, beta, monomials, fn) in plans.items():
        coeffs = fn(A, B, C)
        scale = c ** (sum(alpha) + sum(beta)) / (factorial(alpha) * factorial(beta))
        for shift in (0, 1):
            total = 0.0
            for (mm, nn), coef in zip(monomials, coeffs, strict=True):
                total = total + coef * integral[(sum(alpha) + shift, sum(beta) + shift, mm, nn)]
            full[shift][m] = scale * total
    e12 = Jet(full[0], support)
    edot = Jet(full[1], support)
    e11 = _inside_diagonal(act, xt1, support, c, side=0, a_max=a_max)
    e22 = _inside_diagonal(act, xt2, support, c, side=1, a_max=b_max)
    return e12, e11, e22, edot


def complement_covariance(basis: jax.Array) -> jax.Array:
    """``P_⊥ = I - B Bᵀ`` for orthonormal columns ``B`` (``(..., D, k)``), as ``F Fᵀ`` with ``F``
    an orthonormal basis of the complement from a complete QR factorization.

    ``I - B Bᵀ`` has absolute rounding errors of ``ε`` in every entry, which for large inputs
    is ~1e-11 of the small entries that matter (the weight components orthogonal to the inputs
    are ``O(σ_b/|x|)``); ``F Fᵀ`` is accurate relative to each entry (exactly 0 when ``k = D``).
    """
    D, k = basis.shape[-2], basis.shape[-1]
    if k >= D:
        return jnp.zeros((*basis.shape[:-1], D))
    q, _ = jnp.linalg.qr(basis, mode="complete")
    f = q[..., k:]
    return f @ jnp.swapaxes(f, -1, -2)


def _inside_diagonal(act, xt, support, c: float, side: int, a_max: float) -> Jet:
    """Per-point jet of ``E[φ(u)²]``: ``∂^α E[φ(u)²] = c^{|α|} Σ_γ C(α,γ) E[w^α φ^{(|γ|)} φ^{(|α-γ|)}]``."""
    n, D = xt.shape
    d = D - 1
    a, e1 = norm_and_direction(xt)
    cov = complement_covariance(e1[:, :, None])
    A = [e1[:, k] for k in range(d)]
    Bz = [jnp.zeros(n) for _ in range(d)]
    C = [[cov[:, k, l] for l in range(d)] for k in range(d)]
    keys = sorted({split(m)[side] for m in support})
    zero_other = (0,) * d
    plans, terms = {}, set()
    for alpha in keys:
        monomials, fn = weight_polynomial(alpha)
        monomials = [(mm, nn) for mm, nn in monomials]
        plans[alpha] = (monomials, fn)
        for gamma in multi_indices_below(alpha):
            for mm, nn in monomials:
                if nn == 0:
                    terms.add((sum(gamma), sum(alpha) - sum(gamma), mm))
    terms = sorted(terms)
    order = max(max(t[0], t[1]) for t in terms)
    vals = _gauss2d.diagonal(act.stack(order), a, terms, a_max=a_max)
    integral = dict(zip(terms, vals, strict=True))
    coeffs_out = {}
    shape = (-1, 1) if side == 0 else (1, -1)
    for alpha, (monomials, fn) in plans.items():
        coefs = fn(A, Bz, C)
        total = 0.0
        for gamma in multi_indices_below(alpha):
            binom = binomial(alpha, gamma)
            for (mm, nn), coef in zip(monomials, coefs, strict=True):
                if nn:
                    continue  # z₂ does not exist on the diagonal (B = 0 makes these vanish)
                total = total + binom * coef * integral[(sum(gamma), sum(alpha) - sum(gamma), mm)]
        key = alpha + zero_other if side == 0 else zero_other + alpha
        coeffs_out[key] = (c ** sum(alpha) / factorial(alpha) * total).reshape(shape)
    return Jet(coeffs_out, support)


# ----------------------------------------------------------------------------------------------
# the block function
# ----------------------------------------------------------------------------------------------
def _geometric_det(net, geometry):
    """``det Σ¹ = σ_w⁴ |x ∧ x'|²/d² + σ_w²σ_b² |x - x'|²/d`` (no cancellation near ``x = x'``);
    ``None`` (the layer forms ``Σ11 Σ22 - Σ12²`` itself) behind an input embedding."""
    if geometry is None:
        return None
    w2, b2 = net.W_std**2, net.b_std**2
    wedge, dist = geometry
    return wedge * (w2 * w2) + dist * (w2 * b2)


def _recursion(net, spec: BlockSpec, x1, x2, rows, cols):
    """``(Σ, Θ)`` jets of the network's output on one block."""
    if spec.polar:
        return _polar_recursion(net, spec, x1, x2)
    state, geometry = _first_state(net, spec, x1, x2)
    return _deeper_layers(net, spec, state, geometry, rows, cols)


def _polar_recursion(net, spec: BlockSpec, x1, x2):
    """``(Σ, Θ)`` jets of a gelu, SiLU or softplus network at large inputs, every hidden layer
    in the polar form of :func:`ntk_theory._polar.layer` (the per-point norms, ``ρ`` and
    ``q = det Σ/(a²b²)`` handed from layer to layer without cancellation), scanned: one
    compiled layer for every depth."""
    support, d = spec.support, spec.dim
    w2, b2 = net.W_std**2, net.b_std**2
    e12, e11, e22, geometry = net.input_jets(x1, x2, support)
    a = _polar.norm(x1, 0, support, w2 / d, b2)
    b = _polar.norm(x2, 1, support, w2 / d, b2)
    det = _geometric_det(net, geometry)
    s12, s11, s22, ntk = _dense(net, (e12, e11, e22, None), float(net.fan_in(d)))
    sides = [_polar.direction(x, k, support, w2 / d, b2) for k, x in enumerate((x1, x2))]
    if spec.polar_small:
        small = (s11.value < POLAR_SMALL_VARIANCE, s22.value < POLAR_SMALL_VARIANCE)
        a, b, q, rho = _polar.mixed_first_layer(
            s12, s11, s22, a, b, det, small, sides, x1, x2, w2 / d, b2
        )
    else:
        small = None
        rho, q = _polar.correlation(a, b, det, sides, x1, x2, w2 / d, b2)
    n1, n2 = x1.shape[0], x2.shape[0]
    full, rows, cols = _layout_keys(support)
    pack = _packer([(full, (n1, n2))] * 4 + [(rows, (n1, 1)), (cols, (1, n2))])

    def step(carry, _):
        s12, ntk, q, rho, a, b = (Jet(c, support) for c in carry)
        if small is None:
            e, edot, (q, a, b, rho) = _polar.layer(spec.polar, a, b, s12, q, rho, w2, b2)
        else:
            e, edot, (q, a, b, rho) = _polar.mixed_layer(
                spec.polar, a, b, s12, q, rho, w2, b2, small
            )
        s12, _, _, ntk = _dense(net, (e, e, e, ntk * edot), float(net.width))
        return pack((s12, ntk, q, rho, a, b)), None

    carry, _ = jax.lax.scan(step, pack((s12, ntk, q, rho, a, b)), None, length=net.depth)
    return Jet(carry[0], support), Jet(carry[1], support)


def _first_state(net, spec: BlockSpec, x1, x2):
    """The recursion's starting state: the input jets, or the first hidden layer "inside"."""
    support, d = spec.support, spec.dim
    *inputs, geometry = net.input_jets(x1, x2, support)
    if spec.layers[0].method == "inside":
        e12, e11, e22, edot = _inside_first_layer(net, x1, x2, support, spec.layers[0])
        ntk = _dense(net, (*inputs, None), float(net.fan_in(d)))[3]
        return (e12, e11, e22, ntk * edot), geometry
    return (*inputs, Jet.constant(0.0, support)), geometry


def _deeper_layers(net, spec: BlockSpec, state, geometry, rows, cols):
    """The hidden layers after :func:`_first_state` and the read-out: ``(Σ, Θ)`` jets."""
    d = spec.dim
    width = float(net.width)
    if spec.layers[0].method == "inside":
        deeper, start = spec.layers[1:], 1
    else:
        deeper, start = spec.layers, 0
    # scanned: one stacked entry after the (optional) inside layer; else one entry per layer
    data_r = rows[start] if spec.scan else rows[start:]
    data_c = cols[start] if spec.scan else cols[start:]
    if not deeper:
        pass
    elif spec.scan:
        n = len(deeper)
        det0 = _geometric_det(net, geometry) if start == 0 else None
        fans = (
            jnp.asarray([float(net.fan_in(d))] + [width] * (n - 1))
            if start == 0
            else jnp.full(n, width)
        )

        def body(st, r, c, fan, is_first, terms_r):
            det = None
            if det0 is not None and deeper[0].method in ("closed", "relu", "mixture"):
                # the first layer's det Σ¹ from the geometry, deeper ones from the entries
                s12, s11, s22, _ = _dense(net, st, fan)
                det = select(is_first, det0, s11 * s22 - s12 * s12)
            return _hidden(net, st, deeper[0], r, c, fan, det, terms_r)

        state = _scan_layers(body, state, data_r, data_c, fans, jnp.arange(n) == 0, n)
    else:
        for k, layer in enumerate(deeper):
            fan = float(net.fan_in(d)) if start + k == 0 else width
            det = _geometric_det(net, geometry) if start + k == 0 else None
            r = None if data_r is None else data_r[k]
            c = None if data_c is None else data_c[k]
            state = _hidden(net, state, layer, _strip(r), _strip(c), fan, det)
    s12, _, _, ntk = _dense(net, state, width)
    return s12, ntk


def _strip(data):
    """``(coefficients, a)`` of a layer's per-point data (dropping the term counts)."""
    return None if data is None else (data[0], data[1])


def _scan_layers(body: Callable, state, rows, cols, fans, firsts, length: int):
    """``body`` for every scanned hidden layer as one ``lax.scan`` (compile time independent of
    depth).

    A scan carry keeps its keys and shapes: every coefficient is broadcast to the layout of a
    full layer's output and each step's output is padded to it (missing keys are zero). The
    per-layer data -- Mehler coefficients and term counts, the fan-in, a first-layer flag -- are
    the scanned inputs.
    """
    support = state[0].support
    n1 = jnp.shape(state[1].value)[0] if jnp.ndim(state[1].value) else jnp.shape(state[0].value)[0]
    n2 = (
        jnp.shape(state[2].value)[-1] if jnp.ndim(state[2].value) else jnp.shape(state[0].value)[-1]
    )
    # a hidden layer's output: e12 and Θ·E' on all keys, e11 (e22) on the keys of x (x') alone
    full, rows_only, cols_only = _layout_keys(support)
    pack = _packer([(full, (n1, n2)), (rows_only, (n1, 1)), (cols_only, (1, n2)), (full, (n1, n2))])

    def step(carry, data):
        r, c, fan, first = data
        terms = None if r is None else r[2]
        out = body(tuple(Jet(cf, support) for cf in carry), _strip(r), _strip(c), fan, first, terms)
        return pack(out), None

    carry, _ = jax.lax.scan(step, pack(state), (rows, cols, fans, firsts), length=length)
    return tuple(Jet(c, support) for c in carry)


def _layout_keys(support) -> tuple[list, list, list]:
    """The support's keys: all, those of ``x`` alone, those of ``x'`` alone."""
    rows_only = sorted(m for m in support if not any(split(m)[1]))
    cols_only = sorted(m for m in support if not any(split(m)[0]))
    return sorted(support), rows_only, cols_only


def _packer(layout: list) -> Callable:
    """``jets ↦ coefficient dicts`` of fixed keys and shapes (a scan carry): one
    ``(keys, shape)`` per jet, missing keys zero."""
    zero = jnp.zeros((), jnp.float64)

    def pack(jets) -> list[dict]:
        return [
            {m: jnp.broadcast_to(jnp.asarray(jet.coeffs.get(m, zero)), shape) for m in keys}
            for jet, (keys, shape) in zip(jets, layout, strict=True)
        ]

    return pack


@functools.lru_cache(maxsize=256)
def block_function(net, spec: BlockSpec, terms_t: tuple, terms_s: tuple, jit: bool) -> Callable:
    """Compiled ``(x1, x2, a_vals, b_vals, rows, cols) -> T_x S_x' K`` on one block.

    ``terms_t`` / ``terms_s``: the operators' ``(function, multi-index)`` keys (the read-out;
    the kernel of several outputs is ``Θ ⊗ I``, so only equal functions pair up); ``a_vals``,
    ``b_vals``: their coefficient values at the block's points.
    """

    def read_out(x1, x2, a_vals, b_vals, nngp, ntk):
        jet = ntk if spec.get == "ntk" else nngp
        out = jnp.zeros((x1.shape[0], x2.shape[0]))
        for ia, (fa, alpha) in enumerate(terms_t):
            for ib, (fb, beta) in enumerate(terms_s):
                if fa != fb:
                    continue
                coeff = jet.coeffs.get(tuple(alpha) + tuple(beta))
                if coeff is None:
                    continue
                w = factorial(alpha) * factorial(beta)
                out = out + (a_vals[ia][:, None] * b_vals[ib][None, :] * w) * coeff
        return out

    def block(x1, x2, a_vals, b_vals, rows, cols):
        return read_out(x1, x2, a_vals, b_vals, *_recursion(net, spec, x1, x2, rows, cols))

    if not jit:
        return block
    if spec.layers[0].method != "inside" or net.depth == 1 or spec.polar:
        return jax.jit(block)

    # Two programs: XLA's compile time grows faster than linearly in the size of one program,
    # and the inside first layer (2-D quadratures) plus the deeper layers' jets compiled as one
    # took 145 s for gelu's biharmonic kernel at depth 2, against 6 s + 30 s compiled apart.
    def first(x1, x2):
        state, geometry = _first_state(net, spec, x1, x2)
        return [jet.coeffs for jet in state], [jet.coeffs for jet in geometry]

    def rest(x1, x2, a_vals, b_vals, rows, cols, state, geometry):
        support = spec.support
        state = tuple(Jet(c, support) for c in state)
        geometry = tuple(Jet(c, support) for c in geometry)
        nngp, ntk = _deeper_layers(net, spec, state, geometry, rows, cols)
        return read_out(x1, x2, a_vals, b_vals, nngp, ntk)

    first_jit, rest_jit = jax.jit(first), jax.jit(rest)

    def staged(x1, x2, a_vals, b_vals, rows, cols):
        return rest_jit(x1, x2, a_vals, b_vals, rows, cols, *first_jit(x1, x2))

    return staged


# ----------------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------------
@dataclass
class PointData:
    """Per-point, per-layer data of one point set: ``layers[l] = (coefficients, a)`` or ``None``."""

    layers: list
    variances: np.ndarray


def _record_pairs(net, support, dim: int, first_inside: bool) -> list[tuple[set, set]]:
    """Which Price pairs each hidden layer asks for (a dry run on the jets' keys)."""
    return _record_pairs_cached(
        net.depth, net.act, net.parameterization, support, dim, first_inside
    )


@functools.lru_cache(maxsize=128)
def _record_pairs_cached(depth, act, parameterization, support, dim, first_inside):
    from types import SimpleNamespace

    fake = SimpleNamespace(W_std=1.0, b_std=1.0, parameterization=parameterization, act=act)
    records: list[tuple[set, set]] = []

    class Recording:
        def __init__(self):
            self.full, self.diag = set(), set()

        def t_full(self, pairs):
            self.full.update(pairs)
            return {p: 0.0 for p in pairs}

        def t_diag(self, pairs):
            self.diag.update(pairs)
            return {p: 0.0 for p in pairs}

    zero = (0,) * (2 * dim)
    x_keys = sorted({m for m in support if all(v == 0 for v in split(m)[1])})
    y_keys = sorted({m for m in support if all(v == 0 for v in split(m)[0])})
    e12 = Jet({m: 0.0 for m in support}, support)
    e11 = Jet({m: 0.0 for m in x_keys}, support)
    e22 = Jet({m: 0.0 for m in y_keys}, support)
    del zero
    state = (e12, e11, e22, None)
    for layer in range(depth):
        rec = Recording()
        if layer == 0 and first_inside:
            records.append((set(), set()))
            state = (e12, e11, e22, e12)
            continue
        s12, s11, s22, ntk = _dense(fake, state, 1.0)
        n12, dot = act.dual(s11, s12, s22, rec.t_full)
        n11 = act.dual(s11, s11, s11, rec.t_diag)[0]
        n22 = act.dual(s22, s22, s22, rec.t_diag)[0]
        records.append((rec.full, rec.diag))
        state = (n12, n11, n22, ntk * dot)
    return records


def _check_input_scale(x1: np.ndarray, x2: np.ndarray) -> None:
    big = max(np.max(np.abs(x1), initial=0.0), np.max(np.abs(x2), initial=0.0))
    if not big <= MAX_INPUT:
        raise ValueError(
            f"input coordinates reach |x| = {big:.3g}; the kernels are exact (≤ 1e-11 checked up "
            f"to |x| = 1000) only for |x| ≤ {MAX_INPUT:g}. Rescale the domain (x → x/L: a "
            "derivative of order k then scales by L^-k, which operators express as coefficients), "
            "or put an input embedding (e.g. FourierFeatures) in front."
        )


def _check_finite_derivatives(act, scale: float, order: int) -> None:
    """A sympy activation's lambdified derivatives must be finite where the quadratures evaluate
    them (``|u| ≤ RANGE · scale``): written as given, ``z/(1 + e^{-z})`` differentiates into
    ``e^{-z}/(1 + e^{-z})²``, which is ``inf/inf = nan`` below ``u ≈ -710``."""
    if act.kind != "numeric" or act.family is not None:
        return
    n = act.derivatives_needed(order, order)
    u = np.linspace(-1.0, 1.0, 4001) * _gauss2d.RANGE * max(scale, 1.0)
    with np.errstate(all="ignore"):
        values = np.asarray(act.stack(n, "numpy")(u), dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        k, i = np.argwhere(bad)[0]
        raise ValueError(
            f"activation {act.name!r}: its derivative of order {k} (as sympy writes it) is not "
            f"finite at u = {u[i]:.4g}, and the kernel evaluates derivatives up to order {n} at "
            f"|u| ≤ {u[-1]:.4g} for these inputs. Rewrite the expression so that it stays finite "
            "(e.g. z*(1 + tanh(z/2))/2 instead of z/(1 + exp(-z))), or rescale the inputs so that "
            "the pre-activations stay smaller."
        )


def _check_deep_variances(
    net, v1: np.ndarray, v2: np.ndarray, order: int, get: str, polar: str | None
) -> None:
    """Refuse deeper-layer variances beyond what the composition keeps exact (see
    :data:`MAX_DEEP_VARIANCE`, :data:`NNGP_DEEP_VARIANCE`, :data:`POLAR_DEEP_VARIANCE`)."""
    nngp = get == "nngp" and order >= 2 and net.act.unbounded
    if polar:
        limit, why = POLAR_DEEP_VARIANCE, "that is beyond the scales checked (W_std is huge)"
    elif nngp:
        limit, why = (
            NNGP_DEEP_VARIANCE,
            "the NNGP's mixed derivatives of order ≥ 2 are nearly zero there, below the "
            "rounding errors of the composition (the covariance is close to bilinear at large "
            "inputs; the NTK keeps its digits)",
        )
    else:
        limit, why = MAX_DEEP_VARIANCE, "the chain rule through it cancels"
    if not polar and net.act.family in _polar.ACTIVATIONS and net.embedding is None:
        split_error = _polar_split_error(v1, v2)
        if split_error:
            why += f"; the exact route for large inputs {split_error}"
    for l in range(1, net.depth):
        top = float(max(v1[l].max(), v2[l].max()))
        if top > limit:
            raise _deep_error(net, l, top, order, why)


def _polar_split_error(v1: np.ndarray, v2: np.ndarray) -> str | None:
    """Why the polar route cannot take these points (small points must stay below
    :data:`NNGP_DEEP_VARIANCE` in every layer, large ones above :data:`POLAR_MIN_VARIANCE`),
    else ``None``."""
    v = np.concatenate([v1, v2], axis=1)  # (depth, points)
    small = v[0] < POLAR_SMALL_VARIANCE
    if small.any() and v[:, small].max() > NNGP_DEEP_VARIANCE:
        return (
            f"needs the points with a first-layer variance below {POLAR_SMALL_VARIANCE:g} to "
            f"stay below {NNGP_DEEP_VARIANCE:g} in every layer (here "
            f"{v[:, small].max():.3g}: W_std is large)"
        )
    if (~small).any() and v[:, ~small].min() < POLAR_MIN_VARIANCE:
        return (
            f"needs the points with a first-layer variance of at least {POLAR_SMALL_VARIANCE:g} "
            f"to keep a variance of at least {POLAR_MIN_VARIANCE:g} in every layer (here "
            f"{v[:, ~small].min():.2g}: a bias b_std ≥ {math.sqrt(POLAR_MIN_VARIANCE):.2f} "
            "gives it)"
        )
    return None


def _polar_key(net, v1: np.ndarray, v2: np.ndarray, order: int, get: str) -> str | None:
    """The :data:`ntk_theory._polar.ACTIVATIONS` key when an operator kernel takes the polar
    route (a deeper variance above :data:`POLAR_VARIANCE`, or :data:`NNGP_DEEP_VARIANCE` for
    NNGP kernels of order ≥ 2; raw input coordinates; small and large points as
    :func:`_polar_split_error` asks), else ``None``."""
    if order == 0 or net.depth < 2 or net.embedding is not None:
        return None
    if net.act.family not in _polar.ACTIVATIONS or _polar_split_error(v1, v2):
        return None
    top = max(float(v1[1:].max()), float(v2[1:].max()))
    switch = NNGP_DEEP_VARIANCE if get == "nngp" and order >= 2 else POLAR_VARIANCE
    return net.act.family if top > switch else None


def _price_strain(net, l: int, variance: float, order: int) -> ValueError | None:
    """Why a deeper layer of an operator kernel cannot take the Price-pair chain rule, as the
    error to raise when the activation has no closed-form mixture (``None``: it can)."""
    act = net.act
    if l == 0 or order == 0:
        return None
    if order >= INSIDE_ORDER:  # tanh, u_xxxx, depth 2, W_std = 2: 9e-11 through the Price pairs
        return ValueError(
            f"operator kernel of order {order} with activation {act.name!r} at depth "
            f"{net.depth}: the Price-pair chain rule through hidden layer {l + 1} loses up to "
            f"1e-10 at operator orders ≥ {INSIDE_ORDER} (measured with tanh), and {act.name!r} "
            "has no closed-form route there. Use one hidden layer (its derivatives are taken "
            "inside the expectation), or an activation with a closed-form route: erf, gelu, "
            "sin, tanh, sigmoid, silu, softplus."
        )
    if act.unbounded and variance > PRICE_VARIANCE:
        return _deep_error(
            net,
            l,
            variance,
            order,
            f"the Price-pair chain rule loses digits above variance {PRICE_VARIANCE:g} for "
            "unbounded activations (SiLU and softplus have an exact closed-form route there; a "
            "custom activation does not)",
        )
    return None


def _deep_error(net, l: int, variance: float, order: int, why: str) -> ValueError:
    return ValueError(
        f"operator kernel of order {order} with activation {net.act.name!r}: the pre-activation "
        f"variance of hidden layer {l + 1} reaches {variance:.3g} at these inputs, and {why} "
        "(the result would not be exact). Unbounded activations grow it like |x|². Rescale the "
        "inputs to O(1) (x → x/L; a derivative of order k scales by L^-k), use one hidden "
        "layer, or a bounded activation (tanh, sigmoid, erf), whose deeper variances stay O(1)."
    )


def plan(net, x1: np.ndarray, x2: np.ndarray, support, get: str, order: int):
    """Methods per layer and per-point data for the two point sets (see module docstring)."""
    act = net.act
    dim = x1.shape[1]
    if net.embedding is None and (act.kind == "numeric" or order >= 1):
        _check_input_scale(x1, x2)
    v1, v2 = layer_variances(net, x1), layer_variances(net, x2)
    polar = _polar_key(net, v1, v2, order, get)
    if order >= 1 and act.kind != "relu":
        _check_deep_variances(net, v1, v2, order, get, polar)
    _check_finite_derivatives(act, float(np.sqrt(max(v1.max(), v2.max()))), order)
    a1, a2 = np.sqrt(np.maximum(v1, 0.0)), np.sqrt(np.maximum(v2, 0.0))
    # the first layer leaves the chain rule through Price pairs at large variances and high
    # orders: to the closed-form mixture (logistic family, exact with the geometric det Σ¹) or
    # with the derivatives inside the expectation
    chain_limit = CHAIN_VARIANCE if act.kind == "closed" else NUMERIC_CHAIN_VARIANCE
    strained = (
        order >= 1
        and net.embedding is None
        and act.first_layer_inside
        and (order >= INSIDE_ORDER or max(v1[0].max(), v2[0].max()) > chain_limit)
    )
    first_mixture = strained and act.mixture is not None
    first_inside = strained and not first_mixture
    kind = act.kind
    needs_pairs = kind in ("relu", "numeric")
    records = _record_pairs(net, support, dim, first_inside) if needs_pairs else None
    layers, data1, data2 = [], [], []

    # the first layer's largest covariance increment ∂Σ11/∂x_k = 2σ_w² x_k/d: the chain rule
    # amplifies its Price pairs' errors like a power of it (see SHARP_JET)
    jet = (
        2.0
        * net.W_std**2
        / dim
        * max(np.max(np.abs(x1), initial=0.0), np.max(np.abs(x2), initial=0.0))
    )

    def sharp(l: int) -> bool:
        """Whether layer ``l``'s Mehler tails must be cut at OPERATOR_TOLERANCE."""
        return order >= 1 and l == 0 and net.embedding is None and jet >= SHARP_JET

    # layers that may share a scanned body share its Price pairs (the body asks for their union)
    first_scanned = 1 if first_inside else 0
    shared_pairs = (
        set().union(*(f | g for f, g in records[first_scanned:]))
        if records is not None and net.depth - first_scanned >= 2
        else None
    )

    for l in range(net.depth):
        a_max, b_max = float(a1[l].max()), float(a2[l].max())
        bounds = (a_max, b_max, max(a_max, b_max))
        if l == 0 and first_mixture:
            layers.append(LayerSpec("mixture"))
            data1.append(None)
            data2.append(None)
            continue
        if l == 0 and first_inside:
            layers.append(LayerSpec("inside", bounds=bounds))
            data1.append(None)
            data2.append(None)
            continue
        if kind in ("closed", "relu"):
            layers.append(LayerSpec(kind))
            data1.append(None)
            data2.append(None)
            continue
        top = max(a_max, b_max)
        strain = _price_strain(net, l, top**2, order)
        if strain is not None:
            if act.mixture is None:
                raise strain
            layers.append(LayerSpec("mixture"))
            data1.append(None)
            data2.append(None)
            continue
        pairs = sorted(
            shared_pairs if l >= first_scanned and shared_pairs else set().union(*records[l])
        )
        orders = sorted({p for pair in pairs for p in pair})
        stack = act.stack(max(orders), "numpy")
        tol = _hermite.OPERATOR_TOLERANCE if sharp(l) else _hermite.TAIL_TOLERANCE
        tails = _hermite.tail_curves(stack, top, orders, act.strip, tol)
        if tails is None:
            layers.append(LayerSpec("quadrature", bounds=bounds))
            data1.append(None)
            data2.append(None)
            continue
        # terms per Price pair (Cauchy–Schwarz on both tails), rounded up to one of the orders'
        # own counts (few distinct loop lengths: the per-pair optimum compiled 40% longer for
        # 5% less run time); each order's coefficients go as far as its longest pair
        need = _hermite.pair_terms(tails, pairs, tol)
        sizes = sorted({_round_terms(np.nonzero(t <= tol)[0][0]) for t in tails.values()})
        pair_k = tuple(
            (i, j, min(k for k in sizes if k >= _round_terms(need[(i, j)]))) for i, j in pairs
        )
        terms = {p: max(k for i, j, k in pair_k if p in (i, j)) for p in orders}
        # the coefficients wait for the layout of all layers (below)
        layers.append(
            LayerSpec(
                "mehler", tuple(orders), tuple(terms[p] for p in orders), (), bounds, pairs=pair_k
            )
        )
        data1.append(stack)
        data2.append(stack)
    # The scanned layers (all of them, or 2..L after an "inside" first layer) share one body
    # when their methods agree; Mehler layers then share one coefficient array
    # (layers, orders, n, columns) with traced term counts per layer, computed into it directly.
    # Activations whose every derivative is even or odd (tanh, erf, sin) store only the
    # non-zero parity class of each order (compact: half the memory and bytes per block).
    scanned = layers[first_scanned:]
    scan = len(scanned) >= 2 and len({L.method for L in scanned}) == 1
    mehler = [l for l, L in enumerate(layers) if L.method == "mehler"]
    pars = {l: _hermite.derivative_parity(data1[l], layers[l].orders) for l in mehler}
    compact = {l: all(p in pars[l] for p in layers[l].orders) for l in mehler}
    shared_layout = scan and scanned[0].method == "mehler"
    sides = [(a1, data1)] if x2 is x1 else [(a1, data1), (a2, data2)]  # one set if symmetric
    if shared_layout:
        merged_orders = tuple(sorted(set().union(*(L.orders for L in scanned))))
        merged_pairs = sorted({(i, j) for L in scanned for i, j, _ in L.pairs})
        every = all(compact[l] for l in range(first_scanned, len(layers)))
        compact.update((l, every) for l in range(first_scanned, len(layers)))
        width = max(L.width for L in scanned)
        cols = (width + 1) // 2 if every else width
        shared = [
            np.zeros((len(scanned), len(merged_orders), a_side.shape[1], cols))
            for a_side, _ in sides
        ]
    for l in mehler:
        L, stack = layers[l], data1[l]
        terms = dict(zip(L.orders, L.terms, strict=True))
        hs = []
        for s_idx, (a_side, data) in enumerate(sides):
            kw = dict(terms=terms, a_max=L.bounds[2], parity=pars[l], compact=compact[l])
            if shared_layout:
                dest = shared[s_idx][l - first_scanned]
                direct = L.orders == merged_orders
                h = _hermite.hermite_coefficients(
                    stack,
                    a_side[l],
                    L.orders,
                    act.strip,
                    **kw,
                    width=dest.shape[-1],
                    out=dest if direct else None,
                )
                if not direct:
                    dest[[merged_orders.index(p) for p in L.orders]] = h.coefficients
                own = {(i, j): k for i, j, k in L.pairs}
                counts = np.array([own.get(q, 0) for q in merged_pairs])
                data[l] = (dest, a_side[l], counts)
            else:
                h = _hermite.hermite_coefficients(stack, a_side[l], L.orders, act.strip, **kw)
                data[l] = (h.coefficients, a_side[l])
            hs.append(h)
        if x2 is x1:
            data2[l] = data1[l]
        parity = tuple(
            p1 if p1 == p2 else -1 for p1, p2 in zip(hs[0].parity, hs[-1].parity, strict=True)
        )
        layers[l] = dataclasses.replace(L, parity=parity, compact=compact[l])
    scanned = layers[first_scanned:]
    if shared_layout:
        K, par = [], []
        for p in merged_orders:
            K.append(max(L.terms[L.orders.index(p)] for L in scanned if p in L.orders))
            seen = {L.parity[L.orders.index(p)] for L in scanned if p in L.orders}
            par.append(seen.pop() if len(seen) == 1 else -1)
        bounds = tuple(max(L.bounds[i] for L in scanned) for i in range(3))
        pair_k = tuple(
            (i, j, max(k for L in scanned for i2, j2, k in L.pairs if (i2, j2) == (i, j)))
            for i, j in merged_pairs
        )
        merged = LayerSpec(
            "mehler",
            merged_orders,
            tuple(K),
            tuple(par),
            bounds,
            compact=scanned[0].compact,
            pairs=pair_k,
        )
        layers = layers[:first_scanned] + [merged] * len(scanned)
    elif scan and scanned[0].method == "quadrature":
        bounds = tuple(max(L.bounds[i] for L in scanned) for i in range(3))
        layers = layers[:first_scanned] + [LayerSpec("quadrature", bounds=bounds)] * len(scanned)
    small = polar is not None and min(v1[0].min(), v2[0].min()) < POLAR_SMALL_VARIANCE
    spec = BlockSpec(frozenset(support), dim, tuple(layers), get, scan, polar, bool(small))
    if scan:
        data1 = _stack_scanned(data1, first_scanned, shared[0] if shared_layout else None)
        data2 = (
            data1
            if x2 is x1
            else _stack_scanned(data2, first_scanned, shared[1] if shared_layout else None)
        )
    return spec, PointData(data1, v1), PointData(data2, v2)


def _stack_scanned(data: list, first_scanned: int, coef: np.ndarray | None) -> list:
    """The scanned layers' data as one entry ``(coefficients (L, orders, n, columns), a (L, n),
    counts (L, pairs))`` (``None`` when they carry none), after the unrolled first layer."""
    rest = data[first_scanned:]
    if coef is None:
        return [*data[:first_scanned], None]
    stacked = (coef, np.stack([r[1] for r in rest]), np.stack([r[2] for r in rest]))
    return [*data[:first_scanned], stacked]


def _round_terms(k) -> int:
    return _hermite._round_up(max(int(k), 1))


def _take(data: PointData, idx: np.ndarray):
    """Per-point data of the points ``idx`` (a range of points, the last one repeated to pad a
    block), laid out for the block function: one entry per unrolled layer, or
    ``[first, stacked]`` / ``[stacked]`` when layers are scanned (see :func:`plan`)."""
    run = idx.size > 0 and bool(np.all(np.diff(idx) == 1))
    pick = slice(int(idx[0]), int(idx[-1]) + 1) if run else idx  # a view, not a gather

    def take(layer):
        if layer is None:
            return None
        coef, a, *counts = layer
        # a contiguous copy first: jnp.asarray of a strided view is ~10x slower (measured)
        return (
            jnp.asarray(np.ascontiguousarray(coef[..., pick, :])),
            jnp.asarray(np.ascontiguousarray(a[..., pick])),
            *(jnp.asarray(c) for c in counts),
        )

    return [take(layer) for layer in data.layers]


# ----------------------------------------------------------------------------------------------
# the blocked driver
# ----------------------------------------------------------------------------------------------
def kernel_blocks(
    net,
    x1: np.ndarray,
    x2: np.ndarray,
    terms_t: tuple,
    terms_s: tuple,
    a_vals: list,
    b_vals: list,
    support,
    *,
    get: str,
    symmetric: bool,
    block_size: int,
    jit: bool,
    order: int,
    progress=None,
) -> np.ndarray:
    """The whole ``(n₁, n₂)`` matrix, block by block (upper block triangle if symmetric)."""
    net = getattr(net, "kernel_network", net)
    spec, data1, data2 = plan(net, x1, x1 if symmetric else x2, support, get, order)
    if symmetric:
        data2 = data1
    fn = block_function(net, spec, terms_t, terms_s, jit)
    n1, n2 = x1.shape[0], x2.shape[0]
    # blocks no larger than the data (a kernel profile of one row is not padded to 256 rows)
    b1 = min(block_size, n1)
    b2 = b1 if symmetric else min(block_size, n2)

    def blocks(n, b):
        return [(s, min(s + b, n)) for s in range(0, n, b)]

    def pad(x, coeffs, start, stop, b):
        idx = np.minimum(np.arange(start, start + b), stop - 1)
        return x[idx], [np.asarray(c)[idx] for c in coeffs], idx

    single = n1 <= block_size and n2 <= block_size
    if single:
        idx1, idx2 = np.arange(n1), np.arange(n2)
        K = fn(
            x1,
            x2,
            [np.asarray(c) for c in a_vals],
            [np.asarray(c) for c in b_vals],
            _take(data1, idx1),
            _take(data2, idx2),
        )
        K = np.asarray(K)
        return 0.5 * (K + K.T) if symmetric else K
    # The per-point layer data (Mehler coefficients: up to ~0.5 GB per layer at N = 10,000) is
    # sliced per block when the block is computed, never copied for all blocks at once.
    rows = [(s, e, *pad(x1, a_vals, s, e, b1)) for s, e in blocks(n1, b1)]
    cols = rows if symmetric else [(s, e, *pad(x2, b_vals, s, e, b2)) for s, e in blocks(n2, b2)]
    out = np.empty((n1, n2))
    todo = [(i, j) for i in range(len(rows)) for j in range(i if symmetric else 0, len(cols))]
    row_data: tuple[int, object] = (-1, None)
    for count, (bi, bj) in enumerate(todo, start=1):
        i0, i1, xb1, ab, idx1 = rows[bi]
        j0, j1, xb2, bb, idx2 = cols[bj]
        if row_data[0] != bi:
            row_data = (bi, _take(data1, idx1))
        rb, cb = row_data[1], _take(data2, idx2)
        blk = np.asarray(fn(xb1, xb2, ab, bb, rb, cb))[: i1 - i0, : j1 - j0]
        if symmetric and bi == bj:
            blk = 0.5 * (blk + blk.T)
        out[i0:i1, j0:j1] = blk
        if symmetric and bi != bj:
            out[j0:j1, i0:i1] = blk.T
        if progress is not None:
            progress(count, len(todo))
    return out


def kernel_jet(
    net, x1: np.ndarray, x2: np.ndarray, support, *, get: str = "ntk", order: int | None = None
):
    """The Taylor jet of ``Θ`` (or ``Σ``) on ``x1 × x2`` as ``{(α, β): ∂^α ∂^β K / (α! β!)}``.

    For tests and diagnostics: one evaluation gives every mixed partial in ``support``. ``order``
    (default: the support's largest one-sided degree) selects the first-layer method like an
    operator of that order would.
    """
    net = getattr(net, "kernel_network", net)
    x1, x2 = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    if order is None:
        order = max(max(sum(split(m)[0]), sum(split(m)[1])) for m in support)
    spec, d1, d2 = plan(net, x1, x2, support, get, order)
    fn = jax.jit(
        lambda a, b, r, c: _recursion(net, spec, a, b, r, c)[0 if get == "nngp" else 1].coeffs
    )
    coeffs = fn(x1, x2, _take(d1, np.arange(len(x1))), _take(d2, np.arange(len(x2))))
    return {m: np.broadcast_to(np.asarray(c), (len(x1), len(x2))) for m, c in coeffs.items()}, spec
