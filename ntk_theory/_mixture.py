"""Logistic-family activations as Gaussian scale mixtures: closed-form kernels at every variance.

The standard logistic distribution is a scale mixture of normals: ``L = 2KZ`` with ``Z ~ N(0, 1)``
and ``K`` independent with the Kolmogorov distribution ``P(K ≤ k) = 1 - 2Σ_{j≥1} (-1)^{j-1}
e^{-2j²k²}`` (Andrews & Mallows 1974, J. R. Stat. Soc. B 36, 99; Stefanski 1991, Stat. Probab.
Lett. 11, 69). Hence ``σ(z) = P(L ≤ z) = E_K[Φ(z/(2K))]``, and with ``c = 2K``

.. math::
    σ(z) = E_c[Φ(z/c)],\\quad \\tanh z = E_K[2Φ(z/K) - 1],\\quad
    \\mathrm{silu}(z) = E_c[z Φ(z/c)],\\quad \\mathrm{softplus}(z) = E_c[c\\,Ψ(z/c)],

``Ψ(y) = yΦ(y) + ϕ(y)`` (the antiderivative of ``Φ``). For independent mixing scales ``c, c'``
the Gaussian expectations of the components are closed forms in the covariance, written with
``A = c² + Σ11``, ``B = c'² + Σ22`` and ``Δ² = AB - Σ12² = c²c'² + c²Σ22 + c'²Σ11 + det Σ`` (a
sum of non-negative terms: nothing cancels at large variances or near ``x = x'``):

* ``E[(Φ(u/c) - ½)(Φ(v/c') - ½)] = atan(Σ12/Δ)/(2π)``, ``E[ϕ(u/c)ϕ(v/c')]/(cc') = 1/(2πΔ)``;
* ``E[uΦ(u/c) vΦ(v/c')] = Σ12/4 + [(c²c'²Σ12² + Σ11Σ22Δ²)/(ABΔ) + Σ12 atan(Σ12/Δ)]/(2π)`` and
  the expectation of the derivatives ``¼ + [atan(Σ12/Δ) + (Σ12/Δ)(c²c'²/Δ² + (2c²c'² + c'²Σ11 +
  c²Σ22)/(AB))]/(2π)`` (the GELU kernel of Tsuchida et al., arXiv 2002.08517, at covariance
  ``Σ11/c², Σ12/(cc'), Σ22/c'²``);
* ``E[cΨ(u/c)\\, c'Ψ(v/c')]`` adds to the previous one ``[c'²(c'²Σ11 + det)/B + c²(c²Σ22 +
  det)/A + c²c'²]/(2πΔ)``, from ``E[U Φ(U) ϕ(V)] = (S11 + det S)/(2π(1 + S22)δ)`` and
  ``E[ϕ(U)ϕ(V)] = 1/(2πδ)`` (``δ² = det(I + S)``; Gaussian integrals of a Gaussian).

The activation's kernel is the average over ``(c, c')`` of these: a Gauss rule of ``n = 24``
nodes for the Kolmogorov distribution in the variable ``log K`` (:data:`NODES`,
:data:`WEIGHTS`, built by :func:`kolmogorov_rule`). In ``log K`` the components are analytic
in a strip of half-width ``π/2`` at every covariance (their singularities in ``K`` sit at
``±i·√Σ``), so the rule converges geometrically: against 48 nodes, derivatives up to
``∂^9/∂Σ12^9`` at ``ρ = 1`` and variances ``1e-2 … 1e4`` agree to ``3e-17`` relative
(``K`` or ``1/K`` as the variable need 32+ nodes for ``1e-15``).

Operator kernels of deep networks need these kernels as Taylor jets in the inputs. The Price-pair
route (``E[φ^{(i)}φ^{(j)}]`` composed through the covariance jets) is ill-conditioned for
unbounded activations at large variances: for SiLU, two hidden layers, ``u_xx`` at ``x = 10``
(layer-2 variance 143), its terms sum to ``3e9`` times the result. Composed here through the
closed forms (as erf's and gelu's), the loss is ``~ε × variance``, like gelu's; beyond that the
deep kernels take the polar form of :mod:`ntk_theory._polar`, built on the same components.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._jets import Jet, reciprocal, rsqrt

__all__ = ["MIXTURES", "NODES", "WEIGHTS", "dual", "kolmogorov_rule"]

#: Gauss nodes ``K_i`` (24) of the Kolmogorov distribution, Gauss rule in ``log K``
#: (``kolmogorov_rule(24)`` at 40 digits, rounded to float64; tests regenerate them).
NODES = (
    0.20012600404897382,
    0.22768772457801226,
    0.2563201622096122,
    0.2878467100021771,
    0.3234819139421075,
    0.3643988272657101,
    0.4118824872799141,
    0.46739500715353596,
    0.5326015615172859,
    0.6093600905690271,
    0.6996625693014533,
    0.8055096128543037,
    0.928707829324472,
    1.0706370005871842,
    1.2321616698227156,
    1.413825466123569,
    1.6161562280422434,
    1.839903816179488,
    2.0862947444532934,
    2.357445686568599,
    2.657121066693413,
    2.9923539420876584,
    3.3778334272965296,
    3.8536453305459736,
)
#: The matching Gauss weights (they sum to 1).
WEIGHTS = (
    4.486492638511543e-12,
    2.88217636955316e-09,
    2.9139102471770475e-07,
    9.929504597748357e-06,
    0.00015611925026062024,
    0.0013465200266498206,
    0.007122524516377128,
    0.02502404053109715,
    0.06209156348414344,
    0.1143280096842491,
    0.16268439510957128,
    0.1847708326476029,
    0.17127543914722988,
    0.13063609104716998,
    0.08112489930613368,
    0.03984011234235722,
    0.014825081455748729,
    0.003964708208590273,
    0.0007144502868545296,
    7.989614625241541e-05,
    4.949045140017081e-06,
    1.4258612151305789e-07,
    1.394006975934147e-09,
    2.157979364714265e-12,
)

#: Activation name -> (component, c/K, nngp scale, nngp offset, derivative-kernel scale):
#: ``E[φφ] = scale · E[component] + offset`` averaged over the mixture, where the component
#: is ``"probit"`` (``Φ(z/c) - ½``), ``"gelu"`` (``zΦ(z/c)``) or ``"softplus"`` (``cΨ(z/c)``).
#: tanh ``= 2(Φ(z/K) - ½)``; sigmoid ``= ½ + (Φ(z/2K) - ½)``.
MIXTURES: dict[str, tuple[str, float, float, float, float]] = {
    "tanh": ("probit", 1.0, 4.0, 0.0, 4.0),
    "sigmoid": ("probit", 2.0, 1.0, 0.25, 1.0),
    "silu": ("gelu", 2.0, 1.0, 0.0, 1.0),
    "softplus": ("softplus", 2.0, 1.0, 0.0, 1.0),
}

_INV_2PI = 1.0 / (2.0 * math.pi)


def _component(kind: str, c, cp, s11: Jet, s12: Jet, s22: Jet, det: Jet):
    """Jets of one component's ``(E[f(u)f(v)], E[f'(u)f'(v)])`` at mixing scales ``c, c'``."""
    c2, cp2 = c * c, cp * cp
    cc = c2 * cp2
    delta2 = det + s11 * cp2 + s22 * c2 + cc
    inv_delta = delta2.apply(rsqrt)
    ratio = s12 * inv_delta
    angle = ratio.apply(jnp.arctan)
    if kind == "probit":
        return angle * _INV_2PI, inv_delta * _INV_2PI
    a, b = s11 + c2, s22 + cp2
    inv_a, inv_b = a.apply(reciprocal), b.apply(reciprocal)
    gelu = (
        s12 * 0.25
        + ((s12 * s12) * cc + s11 * s22 * delta2) * (inv_a * inv_b * inv_delta) * _INV_2PI
        + s12 * angle * _INV_2PI
    )
    if kind == "gelu":
        bracket = inv_delta * inv_delta * cc + (s11 * cp2 + s22 * c2 + 2.0 * cc) * (inv_a * inv_b)
        return gelu, (angle + ratio * bracket) * _INV_2PI + 0.25
    if kind == "softplus":
        extra = (inv_b * (s11 * cp2 + det) * cp2 + inv_a * (s22 * c2 + det) * c2 + cc) * inv_delta
        return gelu + extra * _INV_2PI, angle * _INV_2PI + 0.25
    raise AssertionError(kind)


def dual(
    name: str, s11: Jet, s12: Jet, s22: Jet, det: Jet | None = None, *, dot: bool = True
) -> tuple[Jet, Jet | None]:
    """Jets of ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` for a logistic-family activation.

    .. math::
        E[φ(u)φ(v)] = \\sum_{i,j} w_i w_j\\, E[f_{c_i}(u) f_{c_j}(v)]

    with the closed-form components of the module docstring.

    Args:
        name: a key of :data:`MIXTURES`.
        s11, s12, s22: covariance jets (``s11`` per point of ``x``, ``s22`` of ``x'``).
        det: a cancellation-free jet of ``Σ11Σ22 - Σ12²`` if the caller has one; else formed
            from the entries (``0`` on the diagonal ``s11 = s12 = s22``).

    Returns:
        ``(nngp, dot)`` jets.
    """
    kind, scale, mult, offset, dot_mult = MIXTURES[name]
    if det is None:
        det = s11 * s22 - s12 * s12
    # the second mixing scale runs along a leading axis: lift every coefficient to 3-D
    s11, s12, s22, det = (_lift(jet) for jet in (s11, s12, s22, det))

    def components(c, cp):
        return _component(kind, c, cp, s11, s12, s22, det)[: 2 if dot else 1]

    total = _average(components, NODES, WEIGHTS, scale, s12.support)
    nngp = total[0] * mult + offset
    return nngp, (total[1] * dot_mult if dot else None)


def _average(components, nodes, weights, scale: float, support) -> list[Jet]:
    """``Σ_{i,j} w_i w_j f(c_i, c_j)`` for jets ``f = components(c, c')`` (a list of them):
    ``c`` scanned, ``c'`` along the leading axis of every coefficient (``(1 or n, n₁|1, n₂|1)``)."""
    nodes = jnp.asarray(nodes, jnp.float64) * scale
    weights = jnp.asarray(weights, jnp.float64)
    cp = nodes[:, None, None]
    w_col = weights[:, None, None]

    def row(c):
        """``Σ_j w_j`` of the components at ``(c, c_j)``: coefficient dicts."""
        out = []
        for jet in components(c, cp):
            coeffs = {}
            for m, coef in jet.coeffs.items():  # (1 or n, n₁|1, n₂|1): Σ_j w_j over axis 0
                coeffs[m] = jnp.sum(jnp.asarray(coef) * w_col, axis=0)
            out.append(coeffs)
        return out

    shapes = jax.eval_shape(row, nodes[0])
    init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def step(total, data):
        c, w = data
        return jax.tree_util.tree_map(lambda t, v: t + w * v, total, row(c)), None

    scanned = (nodes, weights)
    if len(nodes) == 1:  # XLA inlines a loop of one trip: keep the components a loop body
        scanned = (jnp.concatenate([nodes, nodes]), jnp.concatenate([weights, 0.0 * weights]))
    total, _ = jax.lax.scan(step, init, scanned)
    return [Jet(coeffs, support) for coeffs in total]


def _lift(jet: Jet) -> Jet:
    """The jet with every coefficient shaped ``(1, n₁|1, n₂|1)`` (no implicit rank promotion)."""
    coeffs = {}
    for m, coef in jet.coeffs.items():
        coef = jnp.asarray(coef, jnp.float64)
        if coef.ndim not in (0, 2):
            raise ValueError(f"jet coefficient of shape {coef.shape}: expected () or (n₁|1, n₂|1)")
        coeffs[m] = jnp.reshape(coef, (1, *(coef.shape or (1, 1))))
    return Jet(coeffs, jet.support)


# ----------------------------------------------------------------------------------------------
# the Gauss rule (regenerated by the tests; not needed at run time)
# ----------------------------------------------------------------------------------------------
def kolmogorov_pdf(k):
    """Density of the Kolmogorov distribution (mpmath; the theta-function series below 0.9)."""
    import mpmath as mp

    k = mp.mpf(k)
    total = mp.mpf(0)
    if k < mp.mpf("0.9"):  # d/dk of (√(2π)/k) Σ exp(-(2j-1)²π²/(8k²))
        for j in range(1, 60):
            a = (2 * j - 1) ** 2 * mp.pi**2 / 8
            term = mp.exp(-a / k**2) * (2 * a / k**4 - 1 / k**2)
            total += term
            if abs(term) <= mp.eps * abs(total):
                break
        return mp.sqrt(2 * mp.pi) * total
    for j in range(1, 200):  # d/dk of 1 - 2 Σ (-1)^{j-1} exp(-2j²k²)
        term = (-1) ** (j - 1) * j**2 * mp.exp(-2 * j**2 * k**2)
        total += term
        if abs(term) <= mp.eps * abs(total):
            break
    return 8 * k * total


def kolmogorov_rule(n: int = 24, dps: int = 40) -> tuple[list, list]:
    """Gauss nodes and weights (mpmath numbers) for ``E_K[f(K)]``, Gauss rule in ``t = log K``.

    The measure is discretized by 64 panels × 40-point Gauss–Legendre on ``K ∈ [0.08, 6.5]``
    (outside it the Kolmogorov distribution has mass below ``1e-36``); the Stieltjes procedure
    gives the recurrence of the orthogonal polynomials in ``t`` and Golub–Welsch the rule.
    """
    import mpmath as mp

    with mp.workdps(dps):
        gl_x, gl_w = _legendre(40)
        lo, hi, panels = mp.mpf("0.08"), mp.mpf("6.5"), 64
        t, w = [], []
        for i in range(panels):
            a = lo + (hi - lo) * i / panels
            b = lo + (hi - lo) * (i + 1) / panels
            for x, wx in zip(gl_x, gl_w, strict=True):
                k = (a + b) / 2 + (b - a) / 2 * x
                t.append(mp.log(k))
                w.append((b - a) / 2 * wx * kolmogorov_pdf(k))
        alpha, beta = [], []
        p_prev, p = [mp.mpf(0)] * len(t), [mp.mpf(1)] * len(t)
        norm_prev = None
        for _ in range(n):
            norm = mp.fsum(wi * q * q for wi, q in zip(w, p, strict=True))
            a = mp.fsum(wi * ti * q * q for wi, ti, q in zip(w, t, p, strict=True)) / norm
            b = norm if norm_prev is None else norm / norm_prev
            alpha.append(a)
            beta.append(b)
            p_new = [
                (ti - a) * q - (0 if norm_prev is None else b * qp)
                for ti, q, qp in zip(t, p, p_prev, strict=True)
            ]
            p_prev, p, norm_prev = p, p_new, norm
        jacobi = mp.zeros(n)
        for i in range(n):
            jacobi[i, i] = alpha[i]
            if i + 1 < n:
                jacobi[i, i + 1] = jacobi[i + 1, i] = mp.sqrt(beta[i + 1])
        eig, vec = mp.eigsy(jacobi)
        nodes = [mp.exp(eig[i]) for i in range(n)]
        weights = [beta[0] * vec[0, i] ** 2 for i in range(n)]
    return nodes, weights


def _legendre(m: int) -> tuple[list, list]:
    """Gauss–Legendre nodes and weights on [-1, 1] at the current mpmath precision."""
    import mpmath as mp

    xs, ws = [], []
    for i in range(1, m + 1):
        x = mp.cos(mp.pi * (i - mp.mpf(1) / 4) / (m + mp.mpf(1) / 2))
        for _ in range(100):
            p0, p1 = mp.mpf(1), x
            for k in range(2, m + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            dp = m * (x * p1 - p0) / (x * x - 1)
            step = p1 / dp
            x -= step
            if abs(step) < mp.eps:
                break
        xs.append(x)
        ws.append(2 / ((1 - x * x) * dp * dp))
    return xs, ws
