"""gelu, SiLU and softplus kernels at large inputs in polar form: homogeneous parts explicit.

At large inputs these activations approach ReLU, which is positively homogeneous, so the
covariances of a deep network become nearly bilinear in ``(x, x')``: their mixed derivatives are
orders of magnitude below the terms a chain rule through the covariance entries sums (at
``x = 1000`` the diagonal ``∂²_x∂²_{x'}Σ`` of a two-layer gelu network is ``1e-21 Σ``). Every
square root of a near-quadratic jet (``√Σ11``, ``Δ``) is such a cancellation. Here each layer is
written in the per-point *norms* ``a = √Σ11``, ``b = √Σ22`` -- jets carried from layer to layer
without cancellation -- and the degree-0 quantities

.. math::
    α = 1/a², \\quad β = 1/b², \\quad q = \\det Σ/(a²b²) = 1 - ρ²,
    \\quad p = c'²β + c²α + c²c'²αβ = Δ_*²/(a²b²),\\quad δ = \\sqrt{p + q} = Δ/(ab)

(``c, c'``: the mixing scales of :mod:`ntk_theory._mixture`; gelu is the single component
``c = 1``). Every component satisfies ``f(z) - f(-z) = z``, so ``E[f(u)f(v)] = Σ12/4`` plus a
part even in ``Σ12``, and the closed form of the module :mod:`ntk_theory._mixture` becomes, with
``t = δ/|ρ|``, ``K = a²b²/(AB)``,

.. math::
    E = \\frac{Σ_{12}}{2}\\,[ρ > 0] + \\frac{ab}{2π}\\, h,\\qquad
    h = |ρ|\\,(t - \\operatorname{atan} t) - δ p K + \\frac{c²c'² αβ K ρ²}{δ}

for ``|ρ| > 1/2`` (``ρ = ±\\sqrt{1 - q}`` from the carried ``det Σ``; ``t - atan t`` by its
series where it cancels), and ``E = Σ12/4 + ab[c²c'²αβKρ²/δ + δK + ρ atan(ρ/δ)]/(2π)`` with
``ρ = Σ12/(ab)`` and ``δ² = p + 1 - ρ²`` for ``|ρ| ≤ 1/2``. The bilinear ``Σ12/2`` is the exact
jet of the recursion; ``ab·h`` is a product of per-point norms and degree-0 jets, which lose
nothing; softplus adds ``N(q)/δ`` to ``h`` (its ``ϕ`` terms). The next layer receives
``a' = √(σ_w²E[φ(u)²] + σ_b²)`` as ``a`` times a growth factor, ``ρ'`` from degree-0 jets, and
``det Σ'`` as ``σ_w⁴G + σ_w²σ_b²Q`` from the Gram determinant and distance with the
decorrelation ``D = E* - E ∝ q`` written without cancellation (:func:`layer`). The first
layer's norms come from the input geometry (:func:`norm`), its ``ρ`` from ``det Σ¹``
(:func:`correlation`).

Against 50-digit mpmath (``W_std = 1.3``, ``b_std = 0.2``, 1-D, relative to the row/column
scale): ``∂²_x∂²_{x'}Θ`` of depths 2 and 3 within 2.2e-14 (gelu, every pair of ±0.3 … ±1e4),
3.8e-14 (SiLU) and 2.1e-13 (softplus, ±0.3 … ±1000); ``∂²_x∂²_{x'}Σ`` within 2.4e-12 up to
|x| = 290, where composing the covariance entries lost up to 1e-7 (tests/test_reference.py).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._jets import Jet, power, reciprocal, select
from ._mixture import NODES, WEIGHTS, _average, _lift

__all__ = ["ACTIVATIONS", "correlation", "layer", "norm", "tan_gap"]

#: Activation -> (component, c/K, nodes, weights) of :mod:`ntk_theory._mixture`'s scale
#: mixtures; gelu is the single component ``c = 1``.
ACTIVATIONS: dict[str, tuple[str, float, tuple, tuple]] = {
    "gelu": ("gelu", 1.0, (1.0,), (1.0,)),
    "silu": ("gelu", 2.0, NODES, WEIGHTS),
    "softplus": ("softplus", 2.0, NODES, WEIGHTS),
}

#: ``|ρ|`` above which a pair is "close" (``ρ = ±√(1 - q)`` from ``det Σ``), else "far"
#: (``ρ = Σ12/(ab)``): both forms lose nothing in between.
CLOSE = 0.5

_INV_2PI = 1.0 / (2.0 * math.pi)
#: Below this ``t`` :func:`tan_gap` sums its series (``0.5^56 < 1e-16``).
_GAP_SERIES = 0.5


@jax.custom_jvp
def tan_gap(t):
    """``t - atan t = ∫_0^t s²/(1+s²) ds``, accurate to the last digit as ``t → 0`` (where the
    two terms agree to ``t³/3``); derivatives from the integrand."""
    t = jnp.asarray(t, jnp.float64)
    small = jnp.abs(t) < _GAP_SERIES
    ts = jnp.where(small, t, 0.0)
    t2 = ts * ts
    series = jnp.zeros_like(ts)
    for n in range(28, 0, -1):  # Σ_{n≥1} (-1)^{n+1} t^{2n+1}/(2n+1)
        series = series * t2 + (-1) ** (n + 1) / (2 * n + 1)
    series = series * t2 * ts
    tl = jnp.where(small, 1.0, t)
    return jnp.where(small, series, tl - jnp.arctan(tl))


@tan_gap.defjvp
def _tan_gap_jvp(primals, tangents):
    (t,), (dt,) = primals, tangents
    t2 = t * t  # t²/(1+t²), as 1 - 1/(1+t²) above 1 (its derivatives then cancel nothing)
    return tan_gap(t), jnp.where(t2 < 1.0, t2 / (1.0 + t2), 1.0 - 1.0 / (1.0 + t2)) * dt


def _inv(jet: Jet) -> Jet:
    return jet.apply(reciprocal)


def _sqrt(jet: Jet) -> Jet:
    return jet.apply(power(0.5))


class _Component:
    """One component ``f_c`` at mixing scales ``(c, c')`` in the degree-0 variables; ``q`` and
    ``rho`` (close and far regimes) where the pair's kernel is wanted, ``None`` for the
    degenerate kernel alone. The square roots each regime shares are formed once."""

    def __init__(self, kind: str, c, cp, al: Jet, be: Jet, q: Jet | None = None, rho=None):
        self.kind = kind
        c2, cp2 = c * c, cp * cp
        self.c2, self.cp2, self.cc = c2, cp2, c2 * cp2
        self.al, self.be = al, be
        self.ka, self.kb = _inv(1.0 + al * c2), _inv(1.0 + be * cp2)
        self.K = self.ka * self.kb
        self.p = be * cp2 + al * c2 + al * be * self.cc
        self.aab = al * be * self.cc  # c²c'²αβ
        self.ds = _sqrt(self.p)  # δ* = δ at q = 0
        if q is not None:  # close regime: |ρ| = √(1 - q), δ = √(p + q), t = δ/|ρ|
            self.q = q
            self.rho = _sqrt(1.0 - q)
            self.delta = _sqrt(self.p + q)
            self.t = self.delta * _inv(self.rho)
        if rho is not None:  # far regime: ρ = Σ12/(ab), δ² = p + 1 - ρ²
            self.rho_far = rho
            self.q_far = (1.0 - rho) * (1.0 + rho)
            self.delta_far = _sqrt(self.p + self.q_far)

    def _extra(self, q: Jet | float, delta: Jet) -> Jet:
        """softplus's ``h`` beyond the gelu component: ``N(q)/δ``."""
        numer = (
            self.be * self.kb * (self.be * self.cp2 + q) * self.cp2
            + self.al * self.ka * (self.al * self.c2 + q) * self.c2
            + self.aab
        )
        return numer * _inv(delta)

    def h_star(self) -> Jet:
        """``h`` at ``ρ = 1`` (``q = 0``): the degenerate kernel less ReLU's ``ab/2``."""
        ds = self.ds
        h = ds.apply(tan_gap) - ds * self.p * self.K + self.aab * self.K * _inv(ds)
        return h + self._extra(0.0, ds) if self.kind == "softplus" else h

    def h_gap(self) -> Jet:
        """``h(ρ = 1) - h(ρ = √(1-q))``, each difference written ``∝ q``."""
        q, rho, delta, ds, t = self.q, self.rho, self.delta, self.ds, self.t
        grow = q * _inv(delta + ds)  # δ - δ*
        fall = q * _inv(1.0 + rho)  # 1 - ρ
        step = (grow + fall * ds) * _inv(rho)  # t - t*
        ratio = _inv(1.0 + t * ds)
        gap_t = step * t * ds * ratio + (step * ratio).apply(tan_gap)  # tg(t) - tg(t*)
        tg_part = gap_t - fall * t.apply(tan_gap)  # ρ tg(t) - tg(t*)
        root_part = grow * self.p * self.K  # -(δ - δ*) p K enters h - h* with a minus
        inv_prod = _inv(delta * ds)
        last = q * (ds + _inv(delta + ds)) * inv_prod * self.aab * self.K  # -(ρ²/δ - 1/δ*)
        gap = root_part + last - tg_part
        if self.kind == "softplus":
            weight = self.be * self.kb * self.cp2 + self.al * self.ka * self.c2
            numer0 = (
                self.be * self.be * self.kb * (self.cp2 * self.cp2)
                + self.al * self.al * self.ka * (self.c2 * self.c2)
                + self.aab
            )
            gap = gap - q * weight * _inv(delta) + numer0 * q * _inv(delta + ds) * inv_prod
        return gap

    def h_far(self) -> Jet:
        """``2π E/(ab) - 2πρ/4`` at ``ρ = Σ12/(ab)``, ``δ² = p + 1 - ρ²``."""
        rho, delta = self.rho_far, self.delta_far
        h = self.aab * self.K * rho * rho * _inv(delta) + delta * self.K
        h = h + rho * (rho * _inv(delta)).apply(jnp.arctan)
        return h + self._extra(self.q_far, delta) if self.kind == "softplus" else h

    def _rational(self, delta: Jet) -> Jet | None:
        """``W = c²c'²αβ/δ² + (c²c'²αβ + p)K``: ``2πE[f'f'] = π/2 + atan(ρ/δ) + (ρ/δ)W`` (gelu
        component; softplus's has no such term: ``None``)."""
        if self.kind == "softplus":
            return None
        return self.aab * _inv(delta * delta) + (self.aab + self.p) * self.K

    def dot_near(self) -> tuple[Jet, Jet]:
        """``E[f'f']`` at ``ρ = √(1 - q)`` and at ``ρ = -√(1 - q)``.

        With ``t = δ/|ρ|``: ``2πE = π - atan t + W/t`` at ``ρ > 0``, and at ``ρ < 0``, where
        ``E → 0`` and ``atan t - W/t`` would cancel, ``2πE = -(t - atan t) + (δ² - ρ²W)/(|ρ|δ)``
        with ``δ² - ρ²W = pK(c'²β + c²α + 2c²c'²αβ) - c²c'²αβ(1 + 1/δ²) + q(1 + W)`` (terms
        that do not cancel); softplus: ``π - atan t`` and ``atan t``.
        """
        q, rho, delta, t = self.q, self.rho, self.delta, self.t
        angle = t.apply(jnp.arctan)
        w = self._rational(delta)
        if w is None:
            return (math.pi - angle) * _INV_2PI, angle * _INV_2PI
        close = (math.pi - angle + w * _inv(t)) * _INV_2PI
        edge = self.p * self.K * (self.p + self.aab) - self.aab * (1.0 + _inv(delta * delta))
        anti = ((edge + q * (1.0 + w)) * _inv(rho * delta) - t.apply(tan_gap)) * _INV_2PI
        return close, anti

    def dot_far(self) -> Jet:
        """``E[f'f']`` at ``ρ = Σ12/(ab)``, ``δ² = p + 1 - ρ²``."""
        delta = self.delta_far
        ratio = self.rho_far * _inv(delta)
        angle = ratio.apply(jnp.arctan) + math.pi / 2
        w = self._rational(delta)
        return (angle if w is None else angle + ratio * w) * _INV_2PI


def _spec(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"no polar form for activation {name!r}: have {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def layer(
    name: str, a: Jet, b: Jet, s12: Jet, det: Jet, rho: Jet, w2: float, b2: float
) -> tuple[Jet, Jet, tuple[Jet, Jet, Jet, Jet]]:
    """One hidden layer in polar form: ``E[φ(u)φ(v)]``, ``E[φ'(u)φ'(v)]`` and what the next
    layer needs, ``(det Σ', a', b', ρ')``.

    .. math::
        E = \\frac{Σ_{12}}{2}[ρ > 0] + \\frac{ab}{2π}(h_* - h_{gap})\\;(|ρ| > \\tfrac12),
        \\qquad E = \\frac{Σ_{12}}{4} + \\frac{ab}{2π} h_{far}\\;(|ρ| ≤ \\tfrac12)

    (module docstring; ``h_gap = h(ρ = 1) - h ∝ q``), averaged over the mixture. The next
    layer's ``det Σ' = σ_w⁴G + σ_w²σ_b²Q`` from the Gram determinant and distance, with
    ``E11 = a²(½ + g_aa)``, ``E12 = ab(½ + g_ab - d)``, ``d = D/(ab)``:

    .. math::
        \\frac{G}{a²b²} = \\tfrac12(g_{aa} + g_{bb} - 2g_{ab}) + g_{aa}g_{bb} - g_{ab}^2
            + d(1 + 2g_{ab} - d),\\qquad
        Q = \\tfrac12(a - b)^2 + a²g_{aa} + b²g_{bb} - 2ab(g_{ab} - d),

    ``d = q/(2(1 + ρ)) + h_gap/(2π)`` for ``ρ > ½`` (``∝ q``: nothing cancels), else
    ``d = ½ + g_ab - E/(ab)``; the norms ``a' = a σ_w/√2 · γ_a``, ``γ_a = √(1 + 2g_aa +
    2σ_b²/(σ_w²a²))``, and ``ρ' = 2f/(γ_aγ_b) + σ_b²/(a'b')`` with ``f = E/(ab)``.

    Args:
        name: ``"gelu"``, ``"silu"`` or ``"softplus"``.
        a, b: jets of the per-point norms ``√Σ11`` (``(n₁, 1)`` coefficients) and ``√Σ22``
            (``(1, n₂)``), without cancellation (:func:`norm`).
        s12: jet of ``Σ12``; det: a cancellation-free jet of ``det Σ``; rho: a jet of
            ``Σ12/(ab)`` exact where ``|ρ| ≤ ½`` (:func:`correlation`).
        w2, b2: ``σ_w²`` and ``σ_b²`` of the next dense layer.

    Returns:
        ``(E[φφ], E[φ'φ'], (det Σ', a', b', ρ'))`` jets.
    """
    kind, scale, nodes, weights = _spec(name)
    support = s12.support
    ab = a * b
    close, anti = rho.value > CLOSE, rho.value < -CLOSE
    al, be = _inv(a * a), _inv(b * b)
    q = det * al * be
    lal, lbe, lq, lrho = (_lift(j) for j in (al, be, q, rho))

    def parts(c, cp):
        comp = _Component(kind, c, cp, lal, lbe, lq, lrho)
        return [comp.h_star(), comp.h_gap(), comp.h_far(), *comp.dot_near(), comp.dot_far()]

    star, gap, far, dot_close, dot_anti, dot_far = _average(parts, nodes, weights, scale, support)
    g_ab = star * _INV_2PI
    near = g_ab - gap * _INV_2PI  # h/(2π) at |ρ| = √(1 - q)
    far = far * _INV_2PI
    root = _sqrt(1.0 - q)
    e12 = select(close, s12 * 0.5 + ab * near, select(anti, ab * near, s12 * 0.25 + ab * far))
    edot = select(close, dot_close, select(anti, dot_anti, dot_far))
    f = select(close, root * 0.5 + near, select(anti, near, rho * 0.25 + far))
    # the next layer
    g_aa, g_bb = _star(name, al), _star(name, be)
    d = select(close, q * _inv((1.0 + root) * 2.0) + gap * _INV_2PI, g_ab + 0.5 - f)
    gram = (g_aa + g_bb - g_ab * 2.0) * 0.5 + g_aa * g_bb - g_ab * g_ab
    gram = ab * ab * (gram + d * (1.0 + g_ab * 2.0 - d))
    dist = (a - b) * (a - b) * 0.5 + a * a * g_aa + b * b * g_bb + ab * (d - g_ab) * 2.0
    det_next = gram * (w2 * w2) + dist * (w2 * b2)
    grow_a = _sqrt(1.0 + g_aa * 2.0 + al * (2.0 * b2 / w2))
    grow_b = _sqrt(1.0 + g_bb * 2.0 + be * (2.0 * b2 / w2))
    a_next, b_next = a * grow_a * math.sqrt(w2 / 2.0), b * grow_b * math.sqrt(w2 / 2.0)
    rho_next = f * 2.0 * _inv(grow_a * grow_b) + _inv(a_next * b_next) * b2
    return e12, edot, (det_next, a_next, b_next, rho_next)


def correlation(s12: Jet, a: Jet, b: Jet, det: Jet) -> Jet:
    """The first layer's ``ρ = Σ12/(ab)`` without cancellation: ``±√(1 - q)`` where ``|ρ| >
    0.1`` (``q = det Σ¹/(a²b²)`` from the input geometry), the quotient below (``Σ12`` small:
    nothing cancels)."""
    ab = a * b
    value = jnp.asarray(s12.value) / jnp.asarray(ab.value)
    root = _sqrt(1.0 - det * _inv(ab * ab))
    quotient = s12 * _inv(ab)
    return select(value > 0.1, root, select(value < -0.1, root * -1.0, quotient))


def _star(name: str, al: Jet) -> Jet:
    """``g = h(ρ = 1)/(2π)`` of a point with itself, from its ``α = 1/a²``:
    ``E[φ(aZ)²] = a²(½ + g)``."""
    kind, scale, nodes, weights = _spec(name)
    lal = _lift(al)

    def parts(c, cp):
        return [_Component(kind, c, cp, lal, lal).h_star()]

    return _average(parts, nodes, weights, scale, al.support)[0] * _INV_2PI


def norm(x, side: int, support, c: float, b2: float) -> Jet:
    """Jet of the first layer's per-point norm ``√Σ11(x + dx)``, ``Σ11 = c|x|² + σ_b²``
    (``c = σ_w²/d``), without cancellation.

    With ``s = Σ11(x)``, ``λ = c⟨x, dx⟩/s`` and ``ν = c(c|x ∧ dx|² + σ_b²|dx|²)/s²`` (the
    quadratic part of ``Σ11(x + dx)/s - (1 + λ)²``, a sum of squares)

    .. math::
        \\sqrt{Σ_{11}(x + dx)} = \\sqrt{s}\\,(1 + λ)\\sqrt{1 + ν/(1 + λ)^2}:

    the radial direction, whose second derivative ``σ_b²c/s^{3/2}`` is what ``√`` of the
    quadratic would lose, only enters through ``ν``.

    Args:
        x: ``(n, d)`` points; side: 0 (``x``, rows) or 1 (``x'``, columns).
        support: the jets' support; c, b2: ``σ_w²/d`` and ``σ_b²``.
    """
    x = jnp.asarray(x, jnp.float64)
    d = x.shape[1]
    shape = (-1, 1) if side == 0 else (1, -1)
    zero = (0,) * (2 * d)

    def unit(k):
        m = [0] * (2 * d)
        m[k + side * d] = 1
        return tuple(m)

    steps = [Jet({unit(k): 1.0} if unit(k) in support else {}, support) for k in range(d)]
    cols = [x[:, k].reshape(shape) for k in range(d)]
    s = c * sum(col * col for col in cols) + b2
    lam = sum((steps[k] * cols[k] for k in range(d)), Jet({}, support)) * (c / s)
    wedge = Jet({}, support)
    for k in range(d):
        for l in range(k + 1, d):
            w = steps[l] * cols[k] - steps[k] * cols[l]
            wedge = wedge + w * w
    sq = sum((st * st for st in steps), Jet({}, support))
    nu = (wedge * c + sq * b2) * (c / (s * s))
    one_lam = lam + Jet({zero: jnp.ones_like(s)}, support)
    return one_lam * jnp.sqrt(s) * _sqrt(1.0 + nu * _inv(one_lam * one_lam))
