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

for ``|ρ| > 1/2`` (``ρ = ±\\sqrt{1 - q}`` from the carried ``q``; ``t - atan t`` by its
series where it cancels), and ``E = Σ12/4 + ab[c²c'²αβKρ²/δ + δK + ρ atan(ρ/δ)]/(2π)`` with
``ρ = Σ12/(ab)`` and ``δ² = p + 1 - ρ²`` for ``|ρ| ≤ 1/2``. The bilinear ``Σ12/2`` is the exact
jet of the recursion; ``ab·h`` is a product of per-point norms and degree-0 jets, which lose
nothing; softplus adds ``N(q)/δ`` to ``h`` (its ``ϕ`` terms). The next layer receives
``a' = √(σ_w²E[φ(u)²] + σ_b²)`` as ``a`` times a growth factor, and ``ρ'`` and
``q' = det Σ'/(a'²b'²)`` from degree-0 jets (``det Σ' = σ_w⁴G + σ_w²σ_b²Q``, the Gram
determinant and distance, with the decorrelation ``D = E* - E ∝ q`` written without
cancellation; :func:`layer`). Every quantity handed on is a norm or degree-0: a degree-0
function of a far point tends to a constant, and forming it as a quotient of two jets (``det Σ``
times ``1/(a²b²)``, ``Σ12/(ab)``) would cancel its derivatives by ``~|x'|²/σ_b²``. The first
layer's norms and unit vectors ``x/a`` come from the input geometry (:func:`norm`,
:func:`direction`), its ``ρ`` and ``q`` from them (:func:`correlation`).

A point near the origin with a small bias has no norm to factor out (``a → 0`` with
``b_std = 0``; ``1/a²`` has Taylor coefficients ``~1/a^k``). Such *small* points carry their
variance instead (:func:`mixed_layer`): against a large point the closed form has only the
large norm ``b`` factored out, in ``r = Σ12/b`` and ``Q = det Σ/b²`` (:func:`_one_sided`),
and two small points take the closed form in the entries.

Against 50-digit mpmath (``W_std = 1.3``, 1-D, relative to the row/column scale; gelu, depth
3, ``b_std = 0.2``, all pairs of ±0.01 … ±1e4): ``∂²_x∂²_{x'}Θ`` within 2.3e-15 and
``∂²_x∂²_{x'}Σ`` within 5e-14 (5.8e-13 at (-1e4, 1e4)), where composing the covariance entries
lost up to 1e-7 at |x| = 1000. The tests (tests/test_reference.py) hold SiLU and softplus too, and ``b_std = 0``
from x = 0 out.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._jets import Jet, power, reciprocal, rsqrt, select
from ._mixture import NODES, WEIGHTS, _average, _component, _lift

__all__ = [
    "ACTIVATIONS",
    "correlation",
    "direction",
    "layer",
    "mixed_first_layer",
    "mixed_layer",
    "norm",
    "tan_gap",
]

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


def _one_sided(kind: str, cs, cl, s: Jet, m: Jet, r: Jet, big_q: Jet, be: Jet) -> tuple[Jet, Jet]:
    """One component for a *small* point (variance ``s``, mixing scale ``cs``) against a point
    of variance ``Σ22 = b²m`` (scale ``cl``), with ``b`` factored out: ``(E/b, E[f'f'])``.

    A large point has ``m = 1`` and its norm ``b`` (``β = 1/b²``); a small one ``b = 1`` and
    ``m = Σ22``. With ``r = Σ12/b``, ``Q = det Σ/b²``, ``A = s + c_s²``,
    ``k = 1/(m + c_l²β)`` and ``D = Δ²/b² = Q + c_l²βs + c_s²m + c_s²c_l²β`` (the closed
    forms of :mod:`ntk_theory._mixture` divided through by ``b``):

    .. math::
        \\frac{E}{b} = \\frac r4 + \\frac{1}{2π}\\Big[\\frac{(c_s²c_l²βr² + smD)k}{A\\sqrt D}
            + r \\operatorname{atan}\\frac{r}{\\sqrt D}\\Big],\\qquad
        2πE[f'f'] = \\frac π2 + \\operatorname{atan}\\frac{r}{\\sqrt D}
            + \\frac{r}{\\sqrt D}\\Big(\\frac{c_s²c_l²β}{D} + \\frac{(c_l²βs + c_s²m +
            2c_s²c_l²β)k}{A}\\Big);

    softplus adds ``[c_l²βk(c_l²βs + Q) + c_s²(c_s²m + Q)/A + c_s²c_l²β]/(2π\\sqrt D)`` to
    ``E/b`` and keeps only the ``atan`` in ``E[f'f']``. Every term is a degree-0 function of
    a large point: nothing cancels as ``b`` grows; and ``s → 0`` is regular (``A ≥ c_s²``).
    """
    cs2, cl2 = cs * cs, cl * cl
    cc = cs2 * cl2
    inv_a = _inv(s + cs2)
    k = _inv(m + be * cl2)
    bcc = be * cc
    big_d = big_q + s * be * cl2 + m * cs2 + bcc
    inv_root = big_d.apply(rsqrt)
    ratio = r * inv_root
    angle = ratio.apply(jnp.arctan)
    h = (bcc * r * r + s * m * big_d) * k * inv_a * inv_root + r * angle
    if kind == "softplus":
        extra = be * cl2 * k * (s * be * cl2 + big_q) + (big_q + m * cs2) * inv_a * cs2 + bcc
        return r * 0.25 + (h + extra * inv_root) * _INV_2PI, angle * _INV_2PI + 0.25
    bracket = bcc * inv_root * inv_root + (s * be * cl2 + m * cs2 + bcc * 2.0) * k * inv_a
    return r * 0.25 + h * _INV_2PI, (angle + ratio * bracket) * _INV_2PI + 0.25


def _spec(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"no polar form for activation {name!r}: have {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def layer(
    name: str, a: Jet, b: Jet, s12: Jet, q: Jet, rho: Jet, w2: float, b2: float
) -> tuple[Jet, Jet, tuple[Jet, Jet, Jet, Jet]]:
    """One hidden layer in polar form: ``E[φ(u)φ(v)]``, ``E[φ'(u)φ'(v)]`` and what the next
    layer needs, ``(q', a', b', ρ')``.

    .. math::
        E = \\frac{Σ_{12}}{2}[ρ > 0] + \\frac{ab}{2π}(h_* - h_{gap})\\;(|ρ| > \\tfrac12),
        \\qquad E = \\frac{Σ_{12}}{4} + \\frac{ab}{2π} h_{far}\\;(|ρ| ≤ \\tfrac12)

    (module docstring; ``h_gap = h(ρ = 1) - h ∝ q``), averaged over the mixture. The next
    layer's ``q' = det Σ'/(a'²b'²) = (σ_w⁴G + σ_w²σ_b²Q)/(a'²b'²)`` from the Gram determinant
    and distance, with ``E11 = a²(½ + g_aa)``, ``E12 = ab(½ + g_ab - d)``, ``d = D/(ab)``,
    written in degree-0 jets (``det Σ'`` times ``1/(a'²b'²)`` would cancel in the derivatives
    of a pair of different sizes):

    .. math::
        \\frac{G}{a²b²} = \\tfrac12(g_{aa} + g_{bb} - 2g_{ab}) + g_{aa}g_{bb} - g_{ab}^2
            + d(1 + 2g_{ab} - d),\\qquad
        \\frac{Q}{a²b²} = \\tfrac12(1/b - 1/a)^2 + g_{aa}β + g_{bb}α - 2(g_{ab} - d)/(ab),

    ``d = q/(2(1 + ρ)) + h_gap/(2π)`` for ``ρ > ½`` (``∝ q``: nothing cancels), else
    ``d = ½ + g_ab - E/(ab)``; the norms ``a' = aγ_a``, ``γ_a = √(σ_w²(½ + g_aa) + σ_b²α)``,
    and ``ρ' = σ_w²f/(γ_aγ_b) + σ_b²/(a'b')`` with ``f = E/(ab)``.

    Args:
        name: ``"gelu"``, ``"silu"`` or ``"softplus"``.
        a, b: jets of the per-point norms ``√Σ11`` (``(n₁, 1)`` coefficients) and ``√Σ22``
            (``(1, n₂)``), without cancellation (:func:`norm`).
        s12: jet of ``Σ12``; q: a cancellation-free jet of ``det Σ/(a²b²) = 1 - ρ²``; rho: a
            jet of ``Σ12/(ab)`` exact where ``|ρ| ≤ ½`` (:func:`correlation`).
        w2, b2: ``σ_w²`` and ``σ_b²`` of the next dense layer.

    Returns:
        ``(E[φφ], E[φ'φ'], (q', a', b', ρ'))`` jets.
    """
    return _layer(name, a, b, s12, q, rho, w2, b2)[:3]


def _layer(name, a, b, s12, q, rho, w2, b2):
    """:func:`layer`, and the growth factors ``(a'/a, b'/b)``."""
    kind, scale, nodes, weights = _spec(name)
    support = s12.support
    ab = a * b
    close, anti = rho.value > CLOSE, rho.value < -CLOSE
    al, be = _inv(a * a), _inv(b * b)
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
    gram = gram + d * (1.0 + g_ab * 2.0 - d)
    inv_a, inv_b = _inv(a), _inv(b)
    dist = (inv_b - inv_a) * (inv_b - inv_a) * 0.5 + g_aa * be + g_bb * al
    dist = dist + (d - g_ab) * inv_a * inv_b * 2.0
    grow_a, grow_b = _grow(g_aa, al, w2, b2), _grow(g_bb, be, w2, b2)
    q_next = (gram * (w2 * w2) + dist * (w2 * b2)) * _inv(grow_a * grow_a * grow_b * grow_b)
    a_next, b_next = a * grow_a, b * grow_b
    rho_next = f * w2 * _inv(grow_a * grow_b) + _inv(a_next * b_next) * b2
    return e12, edot, (q_next, a_next, b_next, rho_next), (grow_a, grow_b)


def _inner(p, q, support) -> Jet:
    """``Σ_k p_k q_k`` of two vectors of jets (or arrays)."""
    return sum((pk * qk for pk, qk in zip(p, q, strict=True)), Jet({}, support))


def _wedge_square(p, q, support) -> Jet:
    """``|p ∧ q|² = Σ_{k<l} (p_k q_l - p_l q_k)²`` of two vectors of jets (or arrays)."""
    total = Jet({}, support)
    for k in range(len(p)):
        for l in range(k + 1, len(p)):
            w = q[l] * p[k] - q[k] * p[l]
            total = total + w * w
    return total


def correlation(a: Jet, b: Jet, det: Jet, sides, x1, x2, c: float, b2: float) -> tuple[Jet, Jet]:
    """The first layer's ``ρ = Σ12/(ab)`` and ``q = det Σ¹/(a²b²) = 1 - ρ²`` without
    cancellation, from the unit vectors ``ξ = (√c x, σ_b)/a`` of the two points.

    ``ρ = ⟨ξ, ξ'⟩ = c⟨u, u'⟩ + σ_b²/(ab)`` with ``u = x/a`` of :func:`direction` (a quotient
    ``Σ12/(ab)`` would form the derivatives of this degree-0 function from terms ``|x'|²/σ_b²``
    times larger; :func:`layer` uses it where ``|ρ| ≤ ½``). ``q = |ξ ∧ ξ'|²``: for a pair
    closer than half its longer norm ``q = det Σ¹/(a²b²)`` (``det Σ¹`` from the input geometry,
    ``x ≈ x'``), else ``q = c²|u ∧ u'|² + cσ_b²|u/b - u'/a|²`` (no cancellation between points
    of different size or direction).

    Args:
        a, b: the norms (:func:`norm`); det: ``det Σ¹`` from the geometry.
        sides: ``(coordinates, u)`` of :func:`direction` for ``x1`` and ``x2``.
        x1, x2: ``(n₁, d)``, ``(n₂, d)`` points; c, b2: ``σ_w²/d`` and ``σ_b²``.
    """
    support = det.support
    ab = a * b
    inv_a, inv_b = _inv(a), _inv(b)
    (_, u), (_, v) = sides
    rho = _inner(u, v, support) * c + inv_a * inv_b * b2
    wedge = _wedge_square(u, v, support)
    gap = [uk * inv_b - vk * inv_a for uk, vk in zip(u, v, strict=True)]
    gap = _inner(gap, gap, support)
    x1, x2 = jnp.asarray(x1, jnp.float64), jnp.asarray(x2, jnp.float64)
    apart = jnp.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=-1)
    longer = jnp.maximum(jnp.sum(x1 * x1, -1)[:, None], jnp.sum(x2 * x2, -1)[None, :])
    q = select(apart < 0.25 * longer, det * _inv(ab * ab), wedge * (c * c) + gap * (c * b2))
    return rho, q


def mixed_first_layer(
    s12: Jet, s11: Jet, s22: Jet, a: Jet, b: Jet, det: Jet, small, sides, x1, x2, c, b2
) -> tuple[Jet, Jet, Jet, Jet]:
    """The first layer's slots ``(a, b, q, rho)`` for :func:`mixed_layer`: ``Σ11`` instead of
    the norm at small points; per pair ``ρ`` and ``q`` of :func:`correlation` (large-large),
    ``r = Σ12/b = c⟨x, u'⟩ + σ_b²/b`` and ``Q = Σ11 - r²`` (small-large, with ``u' = x'/b`` of
    :func:`direction`, and mirrored), ``Σ12`` and ``det Σ`` (small-small).

    Args:
        s12, s11, s22: the first layer's covariance jets; a, b: the norms (:func:`norm`); det:
            ``det Σ¹`` from the geometry; small: the masks of :func:`mixed_layer`; sides, x1,
            x2, c, b2: as in :func:`correlation`.
    """
    sx, sy = small
    support = s12.support
    one = Jet.constant(1.0, support)
    na, nb = select(sx, one, a), select(sy, one, b)  # 1 where the norm is not used
    both_large, both_small = ~sx & ~sy, sx & sy
    (coords_x, units_x), (coords_y, units_y) = sides
    r_sl = _inner(coords_x, units_y, support) * c + _inv(nb) * b2
    r_ls = _inner(units_x, coords_y, support) * c + _inv(na) * b2
    det_large = select(both_large, det, na * na * nb * nb * 0.75)
    rho_large, q_large = correlation(na, nb, det_large, sides, x1, x2, c, b2)
    rho = select(both_large, rho_large, select(both_small, s12, select(sx, r_sl, r_ls)))
    q = select(both_large, q_large, select(both_small, det, select(sx, s11, s22) - rho * rho))
    return select(sx, s11, a), select(sy, s22, b), q, rho


def mixed_layer(
    name: str,
    a: Jet,
    b: Jet,
    s12: Jet,
    q: Jet,
    rho: Jet,
    w2: float,
    b2: float,
    small: tuple[jax.Array, jax.Array],
) -> tuple[Jet, Jet, tuple[Jet, Jet, Jet, Jet]]:
    """:func:`layer` when some points are *small* (per-point masks ``small``, ``(n₁, 1)`` and
    ``(1, n₂)``): their norm cannot be factored out (near the origin with a small bias, ``1/a²``
    has Taylor coefficients ``~1/a^k`` and the polar closed forms cancel), so they carry their
    variance ``Σ11`` instead.

    Per pair: two large points take :func:`layer` (carrying ``q = det Σ/(a²b²)`` and ``ρ``); a
    small point against a large one the closed form with the large norm factored out
    (:func:`_one_sided`), carrying ``Q = det Σ/b² = Σ11 - r²`` and ``r = Σ12/b``; two small
    points the same form with ``b = 1``: the closed form in the entries, carrying ``det Σ`` and
    ``Σ12``. The slots ``a``, ``b``, ``q``, ``rho`` hold these per point and per pair, in and
    out.
    """
    kind, scale, nodes, weights = _spec(name)
    support = s12.support
    sx, sy = small
    both_large, both_small = ~sx & ~sy, sx & sy
    one, zero = Jet.constant(1.0, support), Jet.constant(0.0, support)
    # each form sees its own pairs' values, 1 (norms, variances) or 0 elsewhere: no inf or nan
    na, nb = select(sx, one, a), select(sy, one, b)
    va, vb = select(sx, a, one), select(sy, b, one)
    e_l, d_l, (q_l, a_l, b_l, rho_l), (g_a, g_b) = _layer(  # q = 3/4, ρ = 0 at other pairs
        name, na, nb, s12, select(both_large, q, one * 0.75), select(both_large, rho, zero), w2, b2
    )
    # a small point against another point, with the other's norm b factored out (b = 1 if it
    # is small too), oriented: the mixture's sum is symmetric in (c, c'), so the scanned scale
    # goes to the small point of every pair
    var = select(sx, va, vb)
    other = select(sx, vb, va)  # Σ22 = b²m: m = 1 for a large point
    big_norm = select(sx, nb, na)
    inv_norm2 = _inv(big_norm * big_norm)
    r = select(both_large, zero, rho)
    big_q = select(both_large, var, q)
    lvar, lother, linv, lr, lq = (_lift(j) for j in (var, other, inv_norm2, r, big_q))

    def parts(c, cp):
        return list(_one_sided(kind, c, cp, lvar, lother, lr, lq, linv))

    h, dot_small = _average(parts, nodes, weights, scale, support)
    e12 = select(both_large, e_l, h * big_norm)
    edot = select(both_large, d_l, dot_small)
    # the next layer: small points' variances; per pair r' = Σ12'/b' (Σ12' = σ_w²bh + σ_b²)
    # and Q' = Σ11' - r'² (small-large), det Σ' (small-small)
    va_next = _self(name, va) * w2 + b2
    vb_next = _self(name, vb) * w2 + b2
    r_next = h * w2 * _inv(select(sx, g_b, g_a)) + _inv(select(sx, b_l, a_l)) * b2
    s12_next = h * w2 + b2
    q_next = select(
        both_large,
        q_l,
        select(
            both_small,
            va_next * vb_next - s12_next * s12_next,
            select(sx, va_next, vb_next) - r_next * r_next,
        ),
    )
    rho_next = select(both_large, rho_l, select(both_small, s12_next, r_next))
    return e12, edot, (q_next, select(sx, va_next, a_l), select(sy, vb_next, b_l), rho_next)


def _self(name: str, s: Jet) -> Jet:
    """``E[φ(u)²]`` of a point with variance jet ``s`` (the closed form in the entries)."""
    kind, scale, nodes, weights = _spec(name)
    ls = _lift(s)
    zero = Jet.constant(0.0, s.support)

    def parts(c, cp):
        return [_component(kind, c, cp, ls, ls, ls, zero)[0]]

    return _average(parts, nodes, weights, scale, s.support)[0]


def _grow(g: Jet, al: Jet, w2: float, b2: float) -> Jet:
    """``a'/a = √(σ_w²(½ + g) + σ_b²α)``: the next layer's norm over this one's, from
    ``E[φ(aZ)²] = a²(½ + g)`` (:func:`_star`)."""
    return _sqrt((g + 0.5) * w2 + al * b2)


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
    _, _, s, one_lam, root = _radial(x, side, support, c, b2)
    return one_lam * jnp.sqrt(s) * root


def _radial(x, side: int, support, c: float, b2: float):
    """The first layer's per-point geometry: the steps ``dx_k`` (jets), the coordinates, ``s =
    Σ11(x)``, ``1 + λ`` and ``√(1 + ν/(1 + λ)²)`` of :func:`norm`."""
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
    s = jnp.where(s > 0.0, s, 1.0)  # x = 0 without bias: a small point, its norm unused
    lam = _inner(steps, cols, support) * (c / s)
    nu = (_wedge_square(cols, steps, support) * c + _inner(steps, steps, support) * b2) * (
        c / (s * s)
    )
    one_lam = lam + Jet({zero: jnp.ones_like(s)}, support)
    return steps, cols, s, one_lam, _sqrt(1.0 + nu * _inv(one_lam * one_lam))


def direction(x, side: int, support, c: float, b2: float) -> tuple[list[Jet], list[Jet]]:
    """Jets of the coordinates ``x + dx`` and of ``u = (x + dx)/√Σ11(x + dx)``, without
    cancellation: a degree-0 function of a large point, whose derivatives a quotient of the two
    would form from terms ``|x|²/σ_b²`` times larger.

    .. math::
        u = \\frac{x + M\\,dx/(1 + λ)}{\\sqrt s\\,\\sqrt{1 + ν/(1 + λ)^2}},\\qquad
        (M\\,dx)_j = \\big(σ_b² dx_j + c\\textstyle\\sum_k x_k(x_k dx_j - x_j dx_k)\\big)/s

    (``dx - λx``: the part of the step across ``x``, and ``σ_b²/s`` of the radial part), with
    ``s``, ``λ``, ``ν`` of :func:`norm`.
    """
    steps, cols, s, one_lam, root = _radial(x, side, support, c, b2)
    zero = tuple(0 for _ in next(iter(support)))
    across_scale = _inv(one_lam) * (1.0 / s)
    denominator = _inv(root) * (1.0 / jnp.sqrt(s))
    coords, units = [], []
    for j, col in enumerate(cols):
        across = steps[j] * b2
        for k, other in enumerate(cols):
            if k != j:
                across = across + (steps[j] * other - steps[k] * col) * (c * other)
        coords.append(steps[j] + col)
        units.append((across * across_scale + Jet({zero: col}, support)) * denominator)
    return coords, units
