"""Activation kernels against Monte Carlo (diagonal included), wide finite networks,
quadrature accuracy, and the smoothness guard."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import ntk_theory as nt
import ntk_theory.activations as A
from ntk_theory._nt import stax
from ntk_theory.empirical import empirical_ntk

WS, BS = 1.3, 0.2
# 4 points in R^3; the diagonal x = x' is part of every kernel matrix checked below.
X = np.array([[0.3, -0.5, 0.8], [1.0, 0.2, -0.4], [-0.7, 0.6, 0.1], [0.31, -0.49, 0.8]])


def _mc_layer(act: A.Activation, S, T, n_samples: int, seed: int):
    """One layer of the recursion by Monte Carlo: samples z ~ N(0, S) for all points jointly.

    Returns ``(Σ_out, Θ_out, se_Σ, se_Θ)`` with ``Σ_out = σ_w² E[φφ] + σ_b²`` and
    ``Θ_out = Σ_out + σ_w² E[φ'φ'] Θ`` and their standard errors (sample std / √n)."""
    rng = np.random.default_rng(seed)
    ev, V = np.linalg.eigh(S)
    z = rng.standard_normal((n_samples, len(S))) @ (V * np.sqrt(np.clip(ev, 0, None))).T
    f, df = act.derivative(0), act.derivative(1)
    fz, dfz = np.asarray(f(jnp.asarray(z))), np.asarray(df(jnp.asarray(z)))
    prod = fz[:, :, None] * fz[:, None, :]
    dprod = dfz[:, :, None] * dfz[:, None, :]
    se_E, se_Ed = prod.std(0) / math.sqrt(n_samples), dprod.std(0) / math.sqrt(n_samples)
    S_out = WS**2 * prod.mean(0) + BS**2
    T_out = S_out + WS**2 * dprod.mean(0) * T
    return S_out, T_out, WS**2 * se_E, WS**2 * np.sqrt(se_E**2 + (se_Ed * T) ** 2)


def _mc_kernels(act, depth, n_samples, seed):
    """Monte Carlo through all layers (errors compound: use for depth 1)."""
    S = WS**2 * X @ X.T / X.shape[1] + BS**2
    T = S.copy()
    for layer in range(depth):
        S, T, se_s, se_t = _mc_layer(act, S, T, n_samples, seed + layer)
    return S, T, se_s, se_t


@pytest.mark.parametrize("name", list(nt.ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 3])
def test_monte_carlo(name, depth):
    # Each layer of a depth-`depth` network against 1e6 Monte Carlo samples at the layer's
    # exact input covariance (Σ^l, Θ^l from the network one layer shallower), so Monte Carlo
    # errors do not compound through layers (for ReLU^4 the recursion amplifies input
    # errors ~10^3-fold). Tolerance: 6 standard errors, entrywise, diagonal included.
    S = WS**2 * X @ X.T / X.shape[1] + BS**2
    T = S.copy()
    for layer in range(1, depth + 1):
        net = nt.MLP(layer, name, W_std=WS, b_std=BS)
        S_mc, T_mc, se_s, se_t = _mc_layer(net.act, S, T, 1_000_000, seed=layer)
        S, T = np.asarray(net.nngp(X)), np.asarray(net.ntk(X))
        assert np.all(np.abs(S - S_mc) <= 6 * se_s + 1e-12 * np.abs(S)), (name, layer)
        assert np.all(np.abs(T - T_mc) <= 6 * se_t + 1e-12 * np.abs(T)), (name, layer)


@pytest.mark.parametrize(
    "name, depth",
    [(a, 1) for a in ("erf", "tanh", "gelu", "relu", "relu3", "silu")] + [("tanh", 3)],
)
def test_wide_finite_network(name, depth):
    # The empirical NTK of net.finite(width) (neural-tangents' init and apply) approaches the
    # analytic kernel with relative error O(width^-1/2): quadrupling the width should halve
    # the error (mean of 8 seeds); we accept a ratio in [1.3, 3.5] (seed noise). The constant
    # differs a lot between activations (err·√2048 ≈ 0.6 for erf, ≈ 12 for ReLU^3, whose
    # heavy-tailed features make finite widths noisy), so it is not bounded here.
    # Depth 1 at widths 2048 and 8192 for every activation (ReLU^k features are so
    # heavy-tailed that width 512 is not yet asymptotic); depth 3 at 512 and 2048 for erf, tanh.
    net = nt.MLP(depth, name, W_std=WS, b_std=BS)
    K = np.asarray(net.ntk(X))
    widths = (2048, 8192) if depth == 1 else (512, 2048)
    errs = {}
    for width in widths:
        e = [
            np.linalg.norm(np.asarray(empirical_ntk(net, X, width=width, seed=s)) - K)
            / np.linalg.norm(K)
            for s in range(8)
        ]
        errs[width] = float(np.mean(e))
    ratio = errs[widths[0]] / errs[widths[1]]
    print(f"{name} depth {depth}: relative error {errs}, ratio {ratio:.2f}")
    assert 1.3 <= ratio <= 3.5, errs


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "silu", "softplus", "erf", "gelu", "sin"])
def test_derivative_stacks_at_large_arguments(name):
    # φ^(k)(u) for k ≤ 9 at u ∈ [-60, 60] against 120-digit mpmath values of sympy's
    # derivatives, relative to the function's local size (max |φ^(k)| within ±1 of u, so zeros
    # of φ^(k) do not count as relative errors). The forms in ntk_theory._stacks avoid the
    # cancellation of polynomials in tanh, which loses every digit beyond |u| ≈ 18.
    mpmath = pytest.importorskip("mpmath")
    # gelu = u(1 + erf(u/√2))/2 cancels to 0 at u = -26 unless mpmath carries > 300 digits
    mpmath.mp.dps = 900 if name == "gelu" else 120
    act = nt.ACTIVATIONS[name]
    u = np.linspace(-60, 60, 97)
    got = act.stack(9, "numpy")(u)
    z = sp.Symbol("z")
    expr = act.expr.subs(sp.Symbol("z"), z)
    for k in range(10):
        f = sp.lambdify(z, sp.diff(expr, z, k), "mpmath")
        ref = np.array([float(f(mpmath.mpf(float(v)))) for v in u])
        env = np.array([np.abs(ref[np.abs(u - v) <= 1.0]).max() for v in u])
        err = np.abs(got[k] - ref) / np.maximum(env, 1e-300)
        # e^{-u²/2} (erf, gelu) has condition number u²: float64 itself allows ε u² there
        tol = 2e-13 + 4e-16 * u**2
        assert np.all(err < tol), (k, float(err.max()))


@pytest.mark.parametrize("name", ["tanh", "softplus"])
def test_mehler_equals_quadrature(name):
    # The two numeric schemes share nothing but the activation's derivative stack: the Mehler
    # series (per-point Hermite coefficients, Horner in ρ) and the sinh-mapped 2-D trapezoidal
    # rule. They agree to ~1e-15 relative to the Cauchy–Schwarz scale √(E[φ^(p)²]E[φ^(q)²]) for
    # variances 1e-4 … 2.5 and correlations up to exactly 1 (the diagonal).
    from ntk_theory import _gauss2d, _hermite

    act = nt.ACTIVATIONS[name]
    pairs = [(0, 0), (1, 1), (2, 0), (3, 3), (5, 3)]
    orders = sorted({p for pq in pairs for p in pq})
    stack_np, stack = act.stack(5, "numpy"), act.stack(5)
    rhos = np.array([-0.9, 0.0, 0.99, 0.9999, 1.0])
    for va, vb in ((1e-4, 2e-4), (1.0, 0.7), (2.5, 2.0)):
        a, b = np.sqrt(va), np.sqrt(vb)
        # each order's coefficients as far as its longest pair (as the engine plans them)
        own = _hermite.terms_needed(stack_np, max(a, b), orders, act.strip)
        cols = {p: max(max(own[i], own[j]) for i, j in pairs if p in (i, j)) for p in orders}
        hc = _hermite.hermite_coefficients(
            stack_np, np.array([a, b]), orders, act.strip, terms=cols
        )
        quad = _gauss2d.expectations(
            stack,
            jnp.full(5, a),
            jnp.full(5, b),
            jnp.asarray(rhos),
            [(p, q, 0, 0) for p, q in pairs],
            a_max=a,
            b_max=b,
            c_max=b,
        )
        for (p, q), Q in zip(pairs, quad, strict=True):
            ip, iq = hc.index(p), hc.index(q)
            K = max(own[p], own[q])
            ca, cb = hc.coefficients[ip, 0, :K], hc.coefficients[iq, 1, :K]
            mehler = np.array([np.sum(r ** np.arange(K) * ca * cb) for r in rhos])
            scale = np.sqrt(hc.energy[ip, 0] * hc.energy[iq, 1])
            assert np.max(np.abs(mehler - np.asarray(Q))) < 1e-14 * scale, (va, vb, p, q)


def test_pair_terms_keep_the_cauchy_schwarz_bound():
    # Per-pair truncation (√(t_p(K) t_q(K)) ≤ tol, fewer terms than max(K_p, K_q) when one side
    # converges faster) against the 2-D sinh-mapped quadrature, which shares only the derivative
    # stack: within tol of the Cauchy–Schwarz scale on the diagonal ρ = 1, where the series
    # converges slowest. The compact layout (odd/even class only) holds the same numbers.
    from ntk_theory import _gauss2d, _hermite

    act = nt.ACTIVATIONS["tanh"]
    stack_np, stack = act.stack(7, "numpy"), act.stack(7)
    a, tol = 1.3, _hermite.TAIL_TOLERANCE  # first-layer scale of MLP(·, 1.3, 0.2) on [0, 1]²
    pairs = [(0, 4), (1, 5), (3, 7), (2, 2)]
    orders = sorted({p for pq in pairs for p in pq})
    tails = _hermite.tail_curves(stack_np, a, orders, act.strip, tol)
    own = {p: int(np.nonzero(t <= tol)[0][0]) for p, t in tails.items()}
    K = _hermite.pair_terms(tails, pairs, tol)
    assert all(K[(p, q)] <= max(own[p], own[q]) for p, q in pairs)
    assert K[(3, 7)] < 0.9 * own[7]  # the saving is real where the tails differ
    par = _hermite.derivative_parity(stack_np, orders)
    cols = {p: max(K[pq] for pq in pairs if p in pq) + 1 for p in orders}
    full = _hermite.hermite_coefficients(
        stack_np, np.array([a]), orders, act.strip, terms=cols, parity=par
    )
    compact = _hermite.hermite_coefficients(
        stack_np, np.array([a]), orders, act.strip, terms=cols, parity=par, compact=True
    )
    quad = _gauss2d.expectations(
        stack,
        jnp.full(1, a),
        jnp.full(1, a),
        jnp.ones(1),
        [(p, q, 0, 0) for p, q in pairs],
        a_max=a,
        b_max=a,
        c_max=a,
    )
    for (p, q), Q in zip(pairs, quad, strict=True):
        ip, iq = full.index(p), full.index(q)
        k = K[(p, q)]
        mehler = np.sum(full.coefficients[ip, 0, :k] * full.coefficients[iq, 0, :k])
        scale = np.sqrt(full.energy[ip, 0] * full.energy[iq, 0])
        assert abs(mehler - float(Q[0])) < tol * scale, (p, q, abs(mehler - float(Q[0])) / scale)
        n = _hermite.class_size(k, par[p])
        packed = np.sum(compact.coefficients[ip, 0, :n] * compact.coefficients[iq, 0, :n])
        assert packed == pytest.approx(mehler, rel=1e-15, abs=1e-17 * scale)


def test_quadrature_converges_at_large_variance():
    # Beyond the Mehler range (variance 10 … 1e4, where the series would need thousands of
    # terms) the sinh-mapped rule with its default steps agrees with itself at half the steps
    # to ~1e-15 of the Cauchy–Schwarz scale, near-diagonal correlations included.
    from ntk_theory import _gauss2d

    act = nt.ACTIVATIONS["tanh"]
    stack = act.stack(5)
    terms = [(0, 0, 0, 0), (1, 1, 0, 0), (3, 1, 0, 0), (5, 5, 0, 0), (2, 2, 2, 1)]
    for va, vb in ((10.0, 8.0), (1e4, 0.9e4)):
        a, b = np.sqrt(va), np.sqrt(vb)
        rhos = jnp.asarray([-0.5, 0.7, 1 - 1e-6, 1.0])
        A, B = jnp.full(4, a), jnp.full(4, b)
        kw = dict(a_max=a, b_max=b, c_max=b)
        coarse = _gauss2d.expectations(stack, A, B, rhos, terms, **kw)
        saved = _gauss2d.OUTER_STEP, _gauss2d.INNER_STEP
        try:
            _gauss2d.OUTER_STEP, _gauss2d.INNER_STEP = saved[0] / 2, saved[1] / 2
            fine = _gauss2d.expectations(stack, A, B, rhos, terms, **kw)
        finally:
            _gauss2d.OUTER_STEP, _gauss2d.INNER_STEP = saved
        diag_a = _gauss2d.diagonal(stack, jnp.asarray([a]), [(k, k) for k in range(6)], a_max=a)
        diag_b = _gauss2d.diagonal(stack, jnp.asarray([b]), [(k, k) for k in range(6)], a_max=b)
        for (p, q, m, n), c, f in zip(terms, coarse, fine, strict=True):
            scale = np.sqrt(float(diag_a[p][0]) * float(diag_b[q][0])) * (3.0 if m + n else 1.0)
            assert float(np.max(np.abs(np.asarray(c) - np.asarray(f)))) < 1e-14 * scale


def test_arccos_mixed_degrees_monte_carlo():
    # E[relu^m(u) relu^n(v)] (sympy-derived closed form) vs 1e6 samples, including ρ = 1.
    rng = np.random.default_rng(3)
    for rho in (0.4, 1.0):
        cov = np.array([[1.3, rho * math.sqrt(1.3 * 0.8)], [rho * math.sqrt(1.3 * 0.8), 0.8]])
        ev, V = np.linalg.eigh(cov)
        z = rng.standard_normal((1_000_000, 2)) @ (V * np.sqrt(np.clip(ev, 0, None))).T
        u, v = np.maximum(z[:, 0], 0), np.maximum(z[:, 1], 0)
        for m, n in [(0, 0), (0, 2), (1, 3), (2, 2), (3, 4)]:
            samples = (u**m if m else (z[:, 0] > 0)) * (v**n if n else (z[:, 1] > 0))
            want, se = samples.mean(), samples.std() / 1000
            got = float(A.arccos_expectation(m, n, cov[0, 0], cov[0, 1], cov[1, 1]))
            assert abs(got - want) < 6 * se, (rho, m, n)


def test_rectified_monomial_is_wrong_on_the_diagonal_ours_is_not():
    # DESIGN.md fact 3: neural-tangents' RectifiedMonomial(2) gets the NTK diagonal wrong
    # (negative in fact 3's setting, NaN at these points); our ReLU^2 agrees with Monte Carlo.
    x = X[:2]
    _, _, kfn = stax.serial(stax.Dense(1, WS, BS), stax.RectifiedMonomial(2), stax.Dense(1, WS, BS))
    theirs = np.asarray(kfn(x, None, "ntk"))
    net = nt.MLP(1, "relu2", W_std=WS, b_std=BS)
    ours = np.asarray(net.ntk(x))
    _, mc, _, se = _mc_kernels(net.act, 1, 1_000_000, seed=11)
    assert np.all(np.abs(np.diag(ours) - np.diag(mc[:2, :2])) < 6 * np.diag(se[:2, :2]))
    assert not np.any(np.isclose(np.diag(theirs), np.diag(ours), rtol=0.1))
    # off the diagonal they agree
    assert abs(theirs[0, 1] - ours[0, 1]) < 1e-6 * abs(ours[0, 1])


def test_smoothness_guard_message():
    relu = nt.ACTIVATIONS["relu"]
    with pytest.raises(
        nt.SmoothnessError, match="'relu' has only 1 derivative.*erf, tanh, sin, gelu"
    ):
        relu.check_operator_orders(2, 2)
    assert nt.ACTIVATIONS["relu4"].max_operator_order == 1
    assert nt.ACTIVATIONS["relu3"].max_operator_order == 0
    assert nt.ACTIVATIONS["erf"].max_operator_order is None


def test_activation_from_sympy():
    # An Activation from any analytic sympy expression gets the numeric scheme with the strip
    # from sympy's singularities; checked against Monte Carlo like the registered ones.
    z = sp.Symbol("u")
    mish = nt.Activation.from_sympy("mish", z * sp.tanh(sp.log(1 + sp.exp(z))), strip=0.5)
    softplus = nt.Activation.from_sympy("my_softplus", sp.log(1 + sp.exp(z)))
    assert softplus.strip == pytest.approx(np.pi)
    for act in (mish, softplus):
        net = nt.MLP(1, act, W_std=WS, b_std=BS)
        x = X[:3]
        _, ntk, _, se_t = _mc_kernels(act, 1, 400_000, seed=5)
        assert np.all(np.abs(np.asarray(net.ntk(x)) - ntk[:3, :3]) < 6 * se_t[:3, :3])
    # the same softplus as the registered one (which uses a cancellation-free stack)
    x = X[:3]
    np.testing.assert_allclose(
        np.asarray(nt.MLP(2, softplus, 1.3, 0.2).ntk(x)),
        np.asarray(nt.MLP(2, "softplus", 1.3, 0.2).ntk(x)),
        rtol=1e-13,
    )


@pytest.mark.parametrize(
    "expr, match",
    [
        (sp.Symbol("a") * sp.Symbol("b"), "exactly one variable"),
        (sp.Integer(3), "exactly one variable"),
        (sp.Max(sp.Symbol("z"), 0) ** 2, "not analytic.*relu"),
        (sp.Abs(sp.Symbol("z")), "not analytic"),
        (1 / sp.Symbol("z"), "singularity on the real line"),
    ],
)
def test_activation_from_sympy_bad_input(expr, match):
    with pytest.raises(ValueError, match=match):
        nt.Activation.from_sympy("bad", expr)
