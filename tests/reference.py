"""An independent reference for infinite-width kernels and their input derivatives.

Shares no code and no evaluation formula with ntk_theory's engine:

* **one hidden layer**: every ``∂_x^α ∂_{x'}^β Θ`` is written as expectations over the first
  layer's weights ``w̃ = (w, b) ~ N(0, I)`` of products of ``φ^{(k)}(w̃·x̃)`` and monomials of
  ``w`` (the derivatives taken *inside*), integrated in extended precision (numpy longdouble,
  64-bit mantissa) by composite Gauss–Legendre rules in *bisector* coordinates of the
  ``(x̃, x̃')`` plane, with panels graded towards the lines ``u = 0`` and ``v = 0`` where the
  activation's features sit; the direction(s) orthogonal to the plane by explicit
  Gauss–Hermite nodes. The production path instead uses Mehler series or a sinh-mapped
  trapezoidal rule in coordinates aligned with ``x̃``, and Price's theorem through Taylor jets.
* **two hidden layers** (1-D inputs): the chain rule of the second layer is derived by sympy
  symbolically (``∂²_x ∂²_y F(S11(x), S12(x, y), S22(y))`` with undefined functions), its
  partials of ``F`` are Price expectations computed by the same extended-precision quadrature
  at the second layer's covariance, and the ``S``-derivatives come from the one-layer
  reference. The production path propagates jets instead.

The activation derivatives are sympy's, lambdified for longdouble arrays.
Accuracy of this reference: ≤ 1e-15 relative, checked in tests by refining every rule
(``refine=2``) and against 20-digit mpmath values at four points.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import sympy as sp

LD = np.longdouble
_z = sp.Symbol("z")


# ----------------------------------------------------------------------------------------------
# activation derivatives in extended precision
# ----------------------------------------------------------------------------------------------
_EXPR = {
    "erf": None,  # numpy has no longdouble erf; handled below
    "tanh": sp.tanh(_z),
    "sin": sp.sin(_z),
    "sigmoid": 1 / (1 + sp.exp(-_z)),
    "silu": _z / (1 + sp.exp(-_z)),
    "softplus": sp.log(1 + sp.exp(_z)),
    "gelu": None,
}


def _ld_erf(x):
    """erf in longdouble: scipy's erf/erfc in float64 is exact to ~1e-16; we refine with one
    Newton-free series correction is unnecessary at our 1e-15 target, so use float64 values."""
    import scipy.special

    return np.asarray(scipy.special.erf(np.asarray(x, dtype=np.float64)), dtype=LD)


@functools.cache
def derivative(name: str, k: int):
    """``φ^{(k)}`` as a longdouble-array function."""
    if name.startswith("relu"):
        p = int(name[4:] or 1)

        def relu(u, p=p, k=k):
            u = np.asarray(u, dtype=LD)
            if k > p:
                return np.zeros_like(u)
            c = LD(math.factorial(p) // math.factorial(p - k))
            return c * (u > 0) if k == p else c * np.maximum(u, 0) ** (p - k)

        return relu
    if name == "erf":
        if k == 0:
            return _ld_erf
        # erf^{(k)} = 2/√π d^{k-1}/du^{k-1} e^{-u²}: sympy polynomial × exp
        expr = 2 / sp.sqrt(sp.pi) * sp.diff(sp.exp(-(_z**2)), _z, k - 1)
    elif name == "gelu":
        if k == 0:
            return lambda u: (
                np.asarray(u, dtype=LD)
                * (1 + _ld_erf(np.asarray(u, dtype=LD) / np.sqrt(LD(2))))
                / 2
            )
        expr = sp.diff(_z * (1 + sp.erf(_z / sp.sqrt(2))) / 2, _z, k)
        f = sp.lambdify(_z, expr, modules=[{"erf": _ld_erf}, "numpy"])
        return lambda u: np.asarray(f(np.asarray(u, dtype=LD)), dtype=LD)
    else:
        expr = sp.diff(_EXPR[name], _z, k)
    f = sp.lambdify(_z, expr, modules=[{"erf": _ld_erf}, "numpy"])
    return lambda u: (
        np.asarray(f(np.asarray(u, dtype=LD)), dtype=LD) * np.ones_like(np.asarray(u, dtype=LD))
    )


# ----------------------------------------------------------------------------------------------
# quadrature rules
# ----------------------------------------------------------------------------------------------
@functools.cache
def _gl(n: int):
    t, w = np.polynomial.legendre.leggauss(n)
    return t.astype(LD), w.astype(LD)


@functools.cache
def _gh(n: int):
    t, w = np.polynomial.hermite_e.hermegauss(n)
    return t.astype(LD), (w / math.sqrt(2 * math.pi)).astype(LD)


def _panels(points, widths, lo=-12.0, hi=12.0):
    """Panel edges on [lo, hi]: graded geometrically (ratio 2) towards each feature point from
    its width up to 1, then at most unit panels."""
    edges = {lo, hi}
    for p, w in zip(points, widths, strict=True):
        if not lo < p < hi:
            continue
        edges.add(p)
        step = max(min(w, 1.0), 1e-14)
        for sgn in (-1, 1):
            e, s = p, step
            while s < 1.0:
                e = e + sgn * s
                if lo < e < hi:
                    edges.add(e)
                s *= 2
    edges = np.array(sorted(edges), dtype=float)
    out = [edges[0]]
    for e in edges[1:]:
        gap = e - out[-1]
        k = max(math.ceil(gap / 1.0), 1)
        out.extend(out[-1] + gap * np.arange(1, k + 1) / k)
    return np.array(out)


def _rule(edges, n_gl: int):
    t, w = _gl(n_gl)
    a, b = np.asarray(edges[:-1], dtype=LD), np.asarray(edges[1:], dtype=LD)
    half, mid = (b - a) / 2, (b + a) / 2
    nodes = (mid[:, None] + half[:, None] * t[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    return nodes, weights


# ----------------------------------------------------------------------------------------------
# one hidden layer
# ----------------------------------------------------------------------------------------------
def weight_expectations(name, xt, yt, requests, refine: int = 1):
    """``E[w^γ φ^{(p)}(w̃·x̃) φ^{(q)}(w̃·ỹ)]`` for ``(γ, p, q)`` in ``requests``.

    ``xt, yt`` are the augmented inputs ``(σ_w x/√d, σ_b)`` (length ``D = d + 1``); ``γ`` is a
    multi-index over the first ``d`` components of ``w̃``.
    """
    xt, yt = np.asarray(xt, dtype=LD), np.asarray(yt, dtype=LD)
    D = xt.size
    # bisector frame of the plane: f1 ∝ x̃ + ỹ, f2 ∝ x̃ - ỹ (orthonormalized)
    s = xt / np.linalg.norm(xt.astype(float)) + yt / np.linalg.norm(yt.astype(float))
    f1 = s / np.sqrt(np.sum(s * s))
    r = xt - np.sum(xt * f1) * f1
    if np.sqrt(np.sum(r * r)) < 1e-12 * np.sqrt(np.sum(xt * xt)):
        r = np.zeros(D, dtype=LD)
        r[int(np.argmin(np.abs(f1.astype(float))))] = 1
        r = r - np.sum(r * f1) * f1
    f2 = r / np.sqrt(np.sum(r * r))
    # orthonormal complement by Gram–Schmidt on the axes
    basis = [f1, f2]
    for k in range(D):
        e = np.zeros(D, dtype=LD)
        e[k] = 1
        for b in basis:
            e = e - np.sum(e * b) * b
        if np.sqrt(np.sum(e * e)) > 1e-8 and len(basis) < D:
            basis.append(e / np.sqrt(np.sum(e * e)))
    perp = basis[2:]
    ux, uy = np.sum(xt * f1), np.sum(xt * f2)  # u = ux p + uy q
    vx, vy = np.sum(yt * f1), np.sum(yt * f2)
    max_deg = max(sum(g) for g, _, _ in requests)
    gh_t, gh_w = _gh(max(2, max_deg // 2 + 2))
    # outer q, inner p (features where u = 0 and v = 0: p = -uy q/ux, p = -vy q/vx)
    nq = 240 * refine
    q_nodes, q_w = _rule(
        _panels([0.0], [min(1.0, 1.0 / max(float(abs(uy)), float(abs(vy)), 1e-30))]), 16 * refine
    )
    del nq
    p_orders = sorted({p for _, p, _ in requests} | {q for _, _, q in requests})
    out = {req: LD(0) for req in requests}
    wid_u = 1.0 / max(float(abs(ux)), 1e-30)
    wid_v = 1.0 / max(float(abs(vx)), 1e-30)
    for q, wq in zip(q_nodes, q_w, strict=True):
        pts = [float(-uy * q / ux) if ux else 0.0, float(-vy * q / vx) if vx else 0.0]
        p_nodes, p_w = _rule(_panels(pts, [wid_u, wid_v]), 16 * refine)
        u = ux * p_nodes + uy * q
        v = vx * p_nodes + vy * q
        dens = (
            p_w
            * np.exp(-(p_nodes**2) / 2)
            / np.sqrt(2 * np.pi, dtype=LD)
            * wq
            * np.exp(-(q**2) / 2)
            / np.sqrt(2 * np.pi, dtype=LD)
        )
        F = {k: derivative(name, k)(u) for k in p_orders}
        G = {k: derivative(name, k)(v) for k in p_orders}
        # weight components w_k = f1_k p + f2_k q + Σ_j perp_j[k] η_j, η by Gauss–Hermite
        for combo in itertools.product(range(gh_t.size), repeat=len(perp)):
            eta = [gh_t[c] for c in combo]
            weta = np.prod([gh_w[c] for c in combo]) if combo else LD(1)
            comps = [
                f1[k] * p_nodes + f2[k] * q + sum(perp[j][k] * eta[j] for j in range(len(perp)))
                for k in range(D - 1)
            ]
            for gamma, pp, qq in requests:
                mono = np.ones_like(p_nodes)
                for k, g in enumerate(gamma):
                    if g:
                        mono = mono * comps[k] ** g
                out[(gamma, pp, qq)] += weta * np.sum(dens * mono * F[pp] * G[qq])
    return out


def one_layer(name, ws, bs, x, y, alpha, beta, refine: int = 1):
    """``∂_x^α ∂_y^β Θ(x, y)`` for one hidden layer (NTK parameterization), longdouble."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = x.size
    c = LD(ws) / np.sqrt(LD(d))
    xt = np.concatenate([x.astype(LD) * c, [LD(bs)]])
    yt = np.concatenate([y.astype(LD) * c, [LD(bs)]])
    alpha, beta = tuple(alpha), tuple(beta)
    # Θ = σ_w² E[φφ] + σ_b² + σ_w² E[φ'φ'] Σ¹, Σ¹ = σ_w² x·y/d + σ_b²
    requests = set()
    gamma0 = tuple(a + b for a, b in zip(alpha, beta, strict=True))
    requests.add((gamma0, sum(alpha), sum(beta)))
    splits = []
    for a1 in itertools.product(*(range(a + 1) for a in alpha)):
        for b1 in itertools.product(*(range(b + 1) for b in beta)):
            a2 = tuple(a - e for a, e in zip(alpha, a1, strict=True))
            b2 = tuple(b - e for b, e in zip(beta, b1, strict=True))
            sig = _sigma_deriv(ws, bs, x, y, a2, b2)
            if sig == 0:
                continue
            coef = math.prod(math.comb(a, e) for a, e in zip(alpha, a1, strict=True)) * math.prod(
                math.comb(b, e) for b, e in zip(beta, b1, strict=True)
            )
            g = tuple(p + q for p, q in zip(a1, b1, strict=True))
            requests.add((g, sum(a1) + 1, sum(b1) + 1))
            splits.append((coef, sig, g, sum(a1) + 1, sum(b1) + 1, sum(a1) + sum(b1)))
    E = weight_expectations(name, xt, yt, sorted(requests), refine)
    w2 = LD(ws) ** 2
    total = w2 * c ** sum(gamma0) * E[(gamma0, sum(alpha), sum(beta))]
    if not any(alpha) and not any(beta):
        total += LD(bs) ** 2
    for coef, sig, g, p, q, deg in splits:
        total += w2 * coef * sig * c**deg * E[(g, p, q)]
    return total


def _sigma_deriv(ws, bs, x, y, a, b):
    """``∂_x^a ∂_y^b Σ¹`` with ``Σ¹ = σ_w² x·y/d + σ_b²`` (a bilinear polynomial)."""
    d = len(x)
    w2 = LD(ws) ** 2 / d
    if sum(a) == 0 and sum(b) == 0:
        return w2 * np.sum(np.asarray(x, dtype=LD) * np.asarray(y, dtype=LD)) + LD(bs) ** 2
    if sum(a) == 1 and sum(b) == 0:
        return w2 * LD(y[a.index(1)])
    if sum(a) == 0 and sum(b) == 1:
        return w2 * LD(x[b.index(1)])
    if sum(a) == 1 and sum(b) == 1 and a == b:
        return w2
    return 0


# ----------------------------------------------------------------------------------------------
# two hidden layers, 1-D inputs
# ----------------------------------------------------------------------------------------------
def _price_pair(name, s11, s12, s22, i, j, refine: int = 1):
    """``E[φ^{(i)}(u) φ^{(j)}(v)]`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])``."""
    a, b = np.sqrt(LD(s11)), np.sqrt(LD(s22))
    rho = LD(s12) / (a * b)
    # realize (u, v) as projections of a 2-D standard normal: x̃ = (a, 0), ỹ = (b ρ, b √(1-ρ²))
    xt = np.array([a, LD(0)], dtype=LD)
    yt = np.array([b * rho, b * np.sqrt(max(LD(1) - rho * rho, LD(0)))], dtype=LD)
    return weight_expectations(name, xt, yt, [((0,), i, j)], refine)[((0,), i, j)]


def two_layer(name, ws, bs, x, y, k: int, refine: int = 1) -> LD:
    """``∂_x^k ∂_y^k Θ(x, y)`` for two hidden layers, 1-D inputs (``k ≤ 2``), longdouble."""
    X, Y = sp.symbols("x y")
    S11, S12, S22, T12 = (sp.Function(n) for n in ("S11", "S12", "S22", "T12"))
    args = (S11(X), S12(X, Y), S22(Y))
    F, G = sp.Function("F"), sp.Function("G")  # F = E[φφ], G = E[φ'φ'] at the layer-2 covariance
    w2, b2 = sp.Symbol("w2"), sp.Symbol("b2")
    theta = w2 * F(*args) + b2 + w2 * G(*args) * T12(X, Y)
    expr = sp.diff(theta, X, k, Y, k) if k else theta
    # numeric pieces from the one-layer reference at (x, y), (x, x), (y, y)
    sigma2 = lambda p, q, a, b: one_layer_nngp(name, ws, bs, p, q, a, b, refine)  # noqa: E731
    theta1 = lambda p, q, a, b: one_layer(name, ws, bs, [p], [q], (a,), (b,), refine)  # noqa: E731
    vals = {}
    s11v, s12v, s22v = sigma2(x, x, 0, 0), sigma2(x, y, 0, 0), sigma2(y, y, 0, 0)
    for d in expr.atoms(sp.Derivative) | expr.atoms(sp.Function):
        vals[d] = None
    subs = {}
    for atom in list(vals):
        fn = atom.expr.func if isinstance(atom, sp.Derivative) else atom.func
        counts = dict(atom.variable_count) if isinstance(atom, sp.Derivative) else {}
        if fn in (F, G) and isinstance(atom, sp.Derivative):
            # current sympy differentiates F(S11(x), ...) with respect to the function atoms
            # themselves (older versions wrote Subs objects, handled below): Price's theorem
            a, bb, c = (sum(int(n) for v, n in atom.variable_count if v == arg) for arg in args)
            shift = 0 if fn is F else 1
            pair = _price_pair(
                name, s11v, s12v, s22v, 2 * a + bb + shift, 2 * c + bb + shift, refine
            )
            subs[atom] = LD(0.5) ** (a + c) * pair
        elif fn in (S11, S12, S22, T12):
            nx, ny = int(counts.get(X, 0)), int(counts.get(Y, 0))
            if fn is S11:  # Σ²(x + dx, x + dx): derivatives of the diagonal along x
                subs[atom] = _diag_deriv(name, ws, bs, x, nx, refine)
            elif fn is S22:
                subs[atom] = _diag_deriv(name, ws, bs, y, ny, refine)
            elif fn is S12:
                subs[atom] = sigma2(x, y, nx, ny)
            else:
                subs[atom] = theta1(x, y, nx, ny)
    # derivatives of F, G w.r.t. their three arguments: Price's theorem
    for sub in expr.atoms(sp.Subs):
        deriv = sub.expr
        fn = deriv.expr.func
        counts = [0, 0, 0]
        for var, cnt in deriv.variable_count:
            counts[list(deriv.expr.args).index(var)] += int(cnt)
        a, bb, c = counts
        shift = 0 if fn is F else 1
        pair = _price_pair(name, s11v, s12v, s22v, 2 * a + bb + shift, 2 * c + bb + shift, refine)
        subs[sub] = LD(0.5) ** (a + c) * pair
    for fn, shift in ((F, 0), (G, 1)):
        subs[fn(*args)] = _price_pair(name, s11v, s12v, s22v, shift, shift, refine)
    value = expr.subs({w2: sp.Float(ws**2, 30), b2: sp.Float(bs**2, 30)})
    value = value.xreplace({k: sp.Float(str(v), 30) for k, v in subs.items()})
    return LD(str(sp.N(value, 25)))


def one_layer_nngp(name, ws, bs, x, y, a, b, refine: int = 1) -> LD:
    """``∂_x^a ∂_y^b Σ²`` (the first hidden layer's output covariance), 1-D inputs."""
    c = LD(ws)
    xt = np.array([LD(x) * c, LD(bs)])
    yt = np.array([LD(y) * c, LD(bs)])
    E = weight_expectations(name, xt, yt, [((a + b,), a, b)], refine)[((a + b,), a, b)]
    out = LD(ws) ** 2 * c ** (a + b) * E
    return out + (LD(bs) ** 2 if a == 0 and b == 0 else 0)


def _diag_deriv(name, ws, bs, x, n, refine):
    """``d^n/dx^n Σ²(x, x)`` = Σ_j C(n, j) ∂_x^j ∂_y^{n-j} Σ²(x, y)|_{y=x}."""
    return sum(
        math.comb(n, j) * one_layer_nngp(name, ws, bs, x, x, j, n - j, refine) for j in range(n + 1)
    )


# ----------------------------------------------------------------------------------------------
# the logistic family's Gaussian scale mixtures at 50 digits (conditioning check, deep layers)
# ----------------------------------------------------------------------------------------------
def _mixture_kernels(name, s11, s12, s22, rule):
    """``(E[φ(u)φ(v)], E[φ'(u)φ'(v)])`` by the scale mixture σ(z) = E_K[Φ(z/2K)] (Stefanski
    1991), each component in closed form, written out here in mpmath from the formulas of
    ``ntk_theory._mixture``'s docstring (no code shared; the 40-node rule is its generator's)."""
    import mpmath as mp

    nodes, weights = rule
    scale = 1 if name == "tanh" else 2
    if name == "gelu":  # gelu(z) = zΦ(z): the SiLU component at c = c' = 1, no mixture
        nodes, weights, scale = [mp.mpf(1)], [mp.mpf(1)], 1
    det = s11 * s22 - s12 * s12
    e, d = mp.mpf(0), mp.mpf(0)
    for ki, wi in zip(nodes, weights, strict=True):
        for kj, wj in zip(nodes, weights, strict=True):
            c2, cp2 = (scale * ki) ** 2, (scale * kj) ** 2
            a, b = s11 + c2, s22 + cp2
            delta = mp.sqrt(a * b - s12 * s12)
            angle = mp.atan(s12 / delta)
            if name in ("tanh", "sigmoid"):  # Φ(u/c) - ½ and its derivative ϕ(u/c)/c
                ee, dd = angle / (2 * mp.pi), 1 / (2 * mp.pi * delta)
            else:  # u Φ(u/c) (SiLU); softplus c Ψ(u/c) adds the ϕ terms
                ee = s12 / 4 + (
                    (c2 * cp2 * s12**2 + s11 * s22 * delta**2) / (a * b * delta) + s12 * angle
                ) / (2 * mp.pi)
                if name in ("silu", "gelu"):
                    dd = mp.mpf(1) / 4 + (
                        angle
                        + s12
                        / delta
                        * (c2 * cp2 / delta**2 + (2 * c2 * cp2 + cp2 * s11 + c2 * s22) / (a * b))
                    ) / (2 * mp.pi)
                else:
                    ee += ((cp2 * s11 + det) * cp2 / b + (c2 * s22 + det) * c2 / a + c2 * cp2) / (
                        2 * mp.pi * delta
                    )
                    dd = mp.mpf(1) / 4 + angle / (2 * mp.pi)
            e += wi * wj * ee
            d += wi * wj * dd
    if name == "tanh":
        return 4 * e, 4 * d
    if name == "sigmoid":
        return e + mp.mpf(1) / 4, d
    return e, d


@functools.cache
def _rule40():
    from ntk_theory._mixture import kolmogorov_rule

    return kolmogorov_rule(40, 60)


def mixture_theta(name, ws, bs, depth, x, y, get: str = "ntk"):
    """``Θ(x, y)`` (``get="nngp"``: the output covariance ``Σ(x, y)``) of a depth-``depth``
    network (1-D inputs, NTK parameterization), mpmath (logistic family and gelu, whose closed
    form of Tsuchida et al. is the SiLU component at ``c = 1``)."""
    import mpmath as mp

    w2, b2 = mp.mpf(ws) ** 2, mp.mpf(bs) ** 2
    s11, s12, s22 = w2 * x * x + b2, w2 * x * y + b2, w2 * y * y + b2
    theta = s12
    for _ in range(depth):
        e12, d12 = _mixture_kernels(name, s11, s12, s22, _rule40())
        e11 = _mixture_kernels(name, s11, s11, s11, _rule40())[0]
        e22 = _mixture_kernels(name, s22, s22, s22, _rule40())[0]
        theta = w2 * e12 + b2 + w2 * d12 * theta
        s11, s12, s22 = w2 * e11 + b2, w2 * e12 + b2, w2 * e22 + b2
    return theta if get == "ntk" else s12


def mixture_derivative(name, ws, bs, depth, x, y, k: int, get: str = "ntk"):
    """``∂_x^k ∂_y^k Θ(x, y)`` (or of ``Σ``) of :func:`mixture_theta` by mpmath's
    differentiation, 50 digits."""
    import mpmath as mp

    with mp.workdps(50):
        return mp.diff(
            lambda s, t: mixture_theta(name, ws, bs, depth, s, t, get),
            (mp.mpf(x), mp.mpf(y)),
            (k, k),
        )
