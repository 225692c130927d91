"""Architectures PINNs are trained with: Fourier features, periodic embeddings, hard constraints,
several outputs and systems of PDEs.

References used here, none sharing code or formulas with the engine's jets:

* ``operator_kernel_autodiff``: neural-tangents' ``kernel_fn`` applied to the embedded points
  ``γ(x)`` (it forms ``⟨γ, γ'⟩/F`` itself), times ``D(x) D(x')`` for an output transform, and
  differentiated in ``x`` by nested forward mode (so ``T∘D`` is never formed);
* Monte Carlo over one neuron of a one-hidden-layer network, the NTK written as the expectation
  ``E[⟨∇_θ T h(x), ∇_θ T h(x)⟩]`` and ``T`` applied by autodiff to each sampled ``∇_θ h``;
* Williams' (1997) closed form of the erf NNGP, with ``Σ¹`` written in the test;
* wide finite networks (the empirical NTK's error falls like ``width^{-1/2}``).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntk_theory as nt
from ntk_theory.operators import OperatorError

X1 = ("x",)
X2 = ("x", "y")
OPS_1D = {
    "u_x": nt.derivative(X1, "x", 1),
    "u_xx": nt.derivative(X1, "x", 2),
    "variable": nt.Operator.parse("u_xx + sin(x)*u_x - 2*u", X1),
}
# Points at several scales, the diagonal included (K[i, i]); one shape for every 1-D check.
PTS_1D = np.array([[-0.01], [0.013], [0.7], [2.5], [-9.0], [31.0]])
PTS_2D = np.array([[0.1, 0.2], [0.9, -0.4], [-3.0, 7.0], [0.01, 0.02], [12.0, -20.0]])
FF_1D = nt.FourierFeatures.gaussian(m=24, scale=1.5, dim=1, seed=3)
FF_2D = nt.FourierFeatures.gaussian(m=16, scale=1.0, dim=2, seed=4)
D_1D = nt.OutputTransform("x*(1 - x)", g="sin(x)", coords=X1)
D_2D = nt.OutputTransform("x*(1 - x)*y*(1 - y)", coords=X2)


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _check_kernel(K, tol=1e-12):
    K = np.asarray(K)
    np.testing.assert_array_equal(K, K.T)
    assert np.all(np.diag(K) > 0)
    ev = np.linalg.eigvalsh(K)
    assert ev[0] > -tol * ev[-1], ev


# ----------------------------------------------------------------------------------------------
# primary path vs autodiff through neural-tangents, every architecture × several operators
# ----------------------------------------------------------------------------------------------
ARCH_1D = {
    "fourier": dict(embedding=FF_1D),
    "periodic": dict(embedding=nt.PeriodicEmbedding((2.0,))),
    "constrained": dict(output_transform=D_1D),
    "fourier+constrained": dict(embedding=FF_1D, output_transform=D_1D),
}


CASES_1D = [(a, op) for a in ARCH_1D for op in ("u_x", "u_xx")] + [
    ("fourier+constrained", "variable")  # 9 autodiff pairs: one architecture keeps it cheap
]


@pytest.mark.parametrize(("arch", "op"), CASES_1D)
def test_1d_operator_kernels_equal_autodiff(arch, op):
    net = nt.MLP(2, "erf", W_std=1.2, b_std=0.4, **ARCH_1D[arch])
    T = OPS_1D[op]
    K = nt.operator_kernel(net, T, PTS_1D)
    R = nt.operator_kernel_autodiff(net, T, PTS_1D)
    assert _rel(K, R) <= 1e-10
    _check_kernel(K)
    if op == "u_xx":  # a cross kernel, another operator on the second argument
        S = nt.identity(X1)
        K2 = nt.operator_kernel(net, T, PTS_1D, S, PTS_1D[:3])
        assert _rel(K2, nt.operator_kernel_autodiff(net, T, PTS_1D, S, PTS_1D[:3])) <= 1e-10


@pytest.mark.parametrize(
    "arch",
    [
        dict(embedding=FF_2D),
        dict(embedding=nt.PeriodicEmbedding((None, 3.0))),
        dict(output_transform=D_2D),
    ],
    ids=["fourier", "periodic-in-y", "constrained"],
)
def test_2d_laplacian_equals_autodiff(arch):
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5, **arch)
    T = nt.laplacian(X2)
    K = nt.operator_kernel(net, T, PTS_2D)
    assert _rel(K, nt.operator_kernel_autodiff(net, T, PTS_2D)) <= 1e-10
    _check_kernel(K)


# ----------------------------------------------------------------------------------------------
# the diagonal against Monte Carlo over the exact expectation (one hidden layer)
# ----------------------------------------------------------------------------------------------
def _monte_carlo_diagonal(net, T, x, n=200_000, seed=0):
    """``(T_x T_x' Θ)(x, x)`` of a 1-hidden-layer net as ``E_{w,b,v}[|T ∇_θ h(x)|²] + σ_b² (T D)²``,
    ``h(x) = D(x) σ_w v φ(σ_w ⟨w, γ(x)⟩/√F + σ_b b)``; returns (mean, standard error)."""
    emb, ot = net.embedding, net.output_transform
    F = net.fan_in(1)
    sw, sb, phi = net.W_std, net.b_std, net.act.fn
    key = jax.random.PRNGKey(seed)
    kw, kb, kv = jax.random.split(key, 3)
    w = jax.random.normal(kw, (n, F))
    b = jax.random.normal(kb, (n,))
    v = jax.random.normal(kv, (n,))

    def D(p):
        return 1.0 if ot is None else ot.D_values(p[None, :])[0]

    def grads(p):  # ∇_(v, w, b) h at the point p: (n, F + 2)
        g = p[None, :] if emb is None else emb.features(p[None, :])
        z = sw * (w @ g[0]) / math.sqrt(F) + sb * b
        dphi = jax.vmap(jax.grad(phi))(z)
        out = jnp.concatenate(
            [
                (sw * phi(z))[:, None],
                (sw * v * dphi * sw / math.sqrt(F))[:, None] * g,
                (sw * v * dphi * sb)[:, None],
            ],
            axis=1,
        )
        return D(p) * out

    def apply(f, p):
        c = T.coefficient_values(p[None, :])
        return sum(
            c[key][0] * nt.operators.partial_derivative(f, p, alpha)
            for key, (_, alpha) in zip(c, T.keys, strict=True)
        )

    p = jnp.asarray(x, dtype=jnp.float64)
    TG = apply(grads, p)
    per = jnp.sum(TG * TG, axis=1)
    bias = sb**2 * apply(lambda q: D(q) * jnp.ones(()), p) ** 2
    return float(jnp.mean(per) + bias), float(jnp.std(per) / math.sqrt(n))


@pytest.mark.parametrize(
    "arch",
    [
        dict(embedding=FF_1D),
        dict(embedding=nt.PeriodicEmbedding((2.0,))),
        dict(output_transform=D_1D),
        dict(embedding=nt.FourierFeatures.gaussian(8, 3.0, 1, seed=0), output_transform=D_1D),
    ],
    ids=["fourier", "periodic", "constrained", "fourier+constrained"],
)
@pytest.mark.parametrize("act", ["erf", "tanh"])
def test_diagonal_matches_monte_carlo(arch, act):
    net = nt.MLP(1, act, W_std=1.3, b_std=0.7, **arch)
    T = OPS_1D["variable"]
    K = np.diag(np.asarray(nt.operator_kernel(net, T, PTS_1D)))
    for i in (0, 2, 5):
        mean, se = _monte_carlo_diagonal(net, T, PTS_1D[i], seed=i)
        assert abs(K[i] - mean) <= 5 * se + 1e-12 * abs(mean), (i, K[i], mean, se)


# ----------------------------------------------------------------------------------------------
# Fourier features: the m → ∞ limit
# ----------------------------------------------------------------------------------------------
def _erf_depth1_ntk(s12, s11, s22, sw, sb):
    """Williams (1997): E[erf(u) erf(v)] = 2/π asin(2Σ12/√((1+2Σ11)(1+2Σ22))), and its Σ12-derivative."""
    q = jnp.sqrt((1 + 2 * s11) * (1 + 2 * s22))
    nngp = sw**2 * 2 / jnp.pi * jnp.arcsin(2 * s12 / q) + sb**2
    dot = 4 / jnp.pi / jnp.sqrt(q**2 - 4 * s12**2)
    return nngp + sw**2 * dot * s12


def test_infinite_fourier_features_closed_form_and_limit():
    scale, sw, sb = 0.8, 1.1, 0.3
    net = nt.MLP(1, "erf", W_std=sw, b_std=sb, embedding=nt.FourierFeatures.infinite(scale))
    x = PTS_1D[:4, 0]

    def theta(a, c):  # Σ¹ = σ_w² ½ exp(-2π² s² (a - c)²) + σ_b², written here
        s12 = sw**2 * 0.5 * jnp.exp(-2 * jnp.pi**2 * scale**2 * (a - c) ** 2) + sb**2
        s11 = sw**2 * 0.5 + sb**2
        return _erf_depth1_ntk(s12, s11, s11, sw, sb)

    def matrix(f):  # f(x_i, x_j) on the grid, one compiled program
        return np.asarray(jax.jit(jax.vmap(jax.vmap(f, (None, 0)), (0, None)))(x, x))

    ref = matrix(jax.grad(jax.grad(jax.grad(jax.grad(theta, 0), 0), 1), 1))
    K = nt.operator_kernel(net, OPS_1D["u_xx"], x[:, None])
    assert _rel(K, ref) <= 1e-12
    np.testing.assert_allclose(np.asarray(net.ntk(x[:, None])), matrix(theta), rtol=1e-13)
    # The Gaussian-frequency kernels converge to it at the Monte Carlo rate m^{-1/2}: RMS over
    # 24 frequency draws, m = 64 ... 4096 (measured: Θ slope -0.48 over m = 64 ... 16384, the
    # u_xx kernel -0.52). The finite-m kernels here are Williams' closed form on the sampled
    # features (no compilation per frequency draw), the limit is ours.
    K0 = np.asarray(net.ntk(x[:, None]))
    ms = [64, 256, 1024, 4096]
    errs = []
    for m in ms:
        e = []
        for s in range(24):
            g = np.asarray(nt.FourierFeatures.gaussian(m, scale, 1, seed=s).features(x[:, None]))
            s12 = sw**2 * (g @ g.T) / (2 * m) + sb**2
            d = np.diag(s12)
            e.append(_rel(_erf_depth1_ntk(s12, d[:, None], d[None, :], sw, sb), K0))
        errs.append(np.sqrt(np.mean(np.square(e))))
    slope = np.polyfit(np.log(ms), np.log(errs), 1)[0]
    assert -0.65 <= slope <= -0.35, (errs, slope)


def test_fourier_features_without_frequencies_is_infinite_only():
    emb = nt.FourierFeatures.infinite(2.0)
    net = nt.MLP(1, "erf", embedding=emb)
    with pytest.raises(ValueError, match="infinitely many"):
        net.finite(16)
    with pytest.raises(ValueError, match="infinitely many"):
        nt.MLP(1, "erf", embedding=emb, parameterization="standard")


# ----------------------------------------------------------------------------------------------
# periodic embedding
# ----------------------------------------------------------------------------------------------
def test_periodic_kernels_are_periodic():
    # (t, x) with x of period P: every kernel is P-periodic in x and in x' (to round-off of
    # cos/sin at arguments up to 2π·20/P), for a numeric activation and a closed-form one.
    P = 1.7
    T = nt.Operator.parse("u_t - 0.1*u_xx", ("t", "x"))
    x = PTS_2D
    for act in ("tanh", "sin"):
        net = nt.MLP(1, act, W_std=1.0, b_std=0.5, embedding=nt.PeriodicEmbedding((None, P)))
        K = np.asarray(nt.operator_kernel(net, T, x))
        _check_kernel(K)
        for shift in (P, -3 * P):
            y = x + np.array([0.0, shift])
            Ky = np.asarray(nt.operator_kernel(net, T, y, T, x))
            np.testing.assert_allclose(Ky, K, rtol=0, atol=1e-12 * np.abs(K).max())
            np.testing.assert_allclose(
                np.asarray(net.ntk(x, y)), np.asarray(net.ntk(x)), rtol=0, atol=1e-12
            )


# ----------------------------------------------------------------------------------------------
# hard constraints
# ----------------------------------------------------------------------------------------------
def test_output_transform_algebra_is_the_product_rule():
    # T∘D by the operator algebra against the Leibniz rule written out:
    # (u_xx + sin(x) u_x - 2u)∘D = D u_xx + (2D' + sin D) u_x + (D'' + sin D' - 2D) u
    TD = D_1D.compose(OPS_1D["variable"])
    x = np.linspace(-2, 3, 7)[:, None]
    c = TD.coefficient_values(x)
    t = x[:, 0]
    D, D1, D2 = t * (1 - t), 1 - 2 * t, -2.0 * np.ones_like(t)
    expect = {
        (0, (2,)): D,
        (0, (1,)): 2 * D1 + np.sin(t) * D,
        (0, (0,)): D2 + np.sin(t) * D1 - 2 * D,
    }
    assert set(c) == set(expect)
    for key, val in expect.items():
        np.testing.assert_allclose(c[key], val, rtol=1e-14, atol=1e-14)


def test_output_transform_plain_kernel_and_network():
    base = nt.MLP(2, "tanh", W_std=1.0, b_std=1.0)
    net = nt.MLP(2, "tanh", W_std=1.0, b_std=1.0, output_transform=D_1D)
    x = PTS_1D
    D = x[:, 0] * (1 - x[:, 0])
    np.testing.assert_allclose(
        np.asarray(net.ntk(x)), D[:, None] * np.asarray(base.ntk(x)) * D[None, :], rtol=1e-15
    )
    # the finite network satisfies the boundary condition exactly: u(0) = g(0), u(1) = g(1)
    init_fn, apply_fn = net.finite(64)
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 1))
    ub = np.asarray(apply_fn(params, jnp.array([[0.0], [1.0]])))[:, 0]
    np.testing.assert_array_equal(ub, np.sin([0.0, 1.0]))


def test_pinn_kernel_refuses_enforced_boundary_pieces():
    net = nt.MLP(1, "tanh", W_std=1.0, b_std=1.0, output_transform=nt.OutputTransform("x*(1 - x)"))
    prob = nt.poisson_1d(12)
    with pytest.raises(ValueError, match="enforced exactly"):
        prob.kernel(net)
    # without the boundary piece: the residual block alone, equal to (∂²∘D)(∂²∘D) Θ
    P = nt.pinn_kernel(net, prob.residual, [], prob.x_residual, [])
    assert P.K.shape == (12, 12) and P.labels == ("residual",)
    _check_kernel(P.K)
    # a Neumann piece is not enforced by D = x(1 - x): it stays
    P2 = nt.pinn_kernel(
        net, prob.residual, nt.derivative(X1, "x"), prob.x_residual, np.array([[0.0], [1.0]])
    )
    assert P2.K.shape == (14, 14) and np.all(np.diag(np.asarray(P2.blocks["bb"])) > 0)


# ----------------------------------------------------------------------------------------------
# several outputs and systems of PDEs
# ----------------------------------------------------------------------------------------------
def test_one_unknown_reduces_to_the_scalar_kernels_exactly():
    x = PTS_2D
    base = nt.MLP(2, "erf", W_std=1.2, b_std=0.3)
    multi = nt.MLP(2, "erf", W_std=1.2, b_std=0.3, outputs=3)
    T1 = nt.Operator.parse("-(u_xx + u_yy) + x*u_y", X2)
    T3 = nt.Operator.parse("-(u_xx + u_yy) + x*u_y", X2, functions=("u", "v", "p"))
    ref = np.asarray(nt.operator_kernel(base, T1, x))
    np.testing.assert_array_equal(np.asarray(nt.operator_kernel(multi, T3, x)), ref)
    np.testing.assert_array_equal(np.asarray(nt.operator_kernel(multi, T1, x)), ref)


def test_stokes_blocks():
    prob = nt.stokes_cavity(n_per_dim=3, n_boundary=2)
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5, outputs=3)
    P = prob.kernel(net)
    assert P.labels == (
        "residual 0",
        "residual 1",
        "residual 2",
        "u on the walls",
        "v on the walls",
    )
    K = np.asarray(P.K)
    _check_kernel(K, tol=1e-11)
    # u-wall and v-wall pieces act on different outputs: an exact zero block (Θ ⊗ I)
    assert not np.any(np.asarray(P.piece(3, 4)))
    # a cross block against autodiff through neural-tangents
    eqs = prob.residuals
    for i, j in ((0, 2),):  # momentum-x × continuity: u and p terms against u terms
        ref = nt.operator_kernel_autodiff(net, eqs[i], prob.x_residual, eqs[j], prob.x_residual)
        assert _rel(P.piece(i, j), ref) <= 1e-10
    w = nt.trace_weights(P)
    assert len(w) == 5 and all(v > 0 for v in w.values())


def test_multi_output_empirical_kernel_converges():
    # the finite 3-output network's continuity kernel approaches the analytic one
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5, outputs=3)
    T = nt.Operator.parse("u_x + v_y", X2, functions=("u", "v", "p"))
    x = PTS_2D[:3]
    K = np.asarray(nt.operator_kernel(net, T, x))
    errs = [
        np.mean([_rel(nt.empirical_ntk(net, x, T=T, width=w, seed=s), K) for s in range(4)])
        for w in (256, 4096)
    ]
    assert errs[1] < errs[0] / 2.5, errs


# ----------------------------------------------------------------------------------------------
# the finite networks of every architecture converge to the analytic kernels
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["u_x", "u_xx"])
def test_empirical_width_slope_fourier_and_constrained(op):
    # RMS relative error over 12 seeds, widths 128 ... 8192: slope -0.49 (u_x), -0.41 (u_xx)
    # measured; theory -1/2.
    emb = nt.FourierFeatures.gaussian(16, 0.5, 1, seed=2)
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5, embedding=emb, output_transform=D_1D)
    T = OPS_1D[op]
    x = PTS_1D[:4]
    K = np.asarray(nt.operator_kernel(net, T, x))
    widths = [128, 512, 2048, 8192]
    errs = [
        np.sqrt(
            np.mean(
                [_rel(nt.empirical_ntk(net, x, T=T, width=w, seed=s), K) ** 2 for s in range(12)]
            )
        )
        for w in widths
    ]
    slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
    assert -0.7 <= slope <= -0.3, (errs, slope)


def test_empirical_mean_is_unbiased_at_one_hidden_layer():
    # With one hidden layer the empirical NTK is a mean over iid neurons, so its expectation is
    # the analytic kernel at every width: 32 seeds at width 128 agree within 4.5 standard errors
    # (higher frequencies than above: heavy-tailed u_xx terms, hence a mean test, not a slope).
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5, embedding=FF_1D, output_transform=D_1D)
    T = OPS_1D["variable"]
    x = PTS_1D[:4]
    K = np.asarray(nt.operator_kernel(net, T, x))
    E = np.stack([np.asarray(nt.empirical_ntk(net, x, T=T, width=128, seed=s)) for s in range(32)])
    se = E.std(axis=0, ddof=1) / np.sqrt(len(E))
    assert np.all(np.abs(E.mean(axis=0) - K) <= 4.5 * se), (E.mean(axis=0) - K) / se


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="dimension 1"):
        nt.MLP(1, "erf", embedding=FF_2D).ntk(PTS_1D)
    with pytest.raises(ValueError, match="dimension 2"):
        nt.operator_kernel(
            nt.MLP(1, "erf", embedding=nt.PeriodicEmbedding((1.0,))), nt.laplacian(X2), PTS_2D
        )
    with pytest.raises(ValueError, match="B must be an"):
        nt.FourierFeatures(np.ones(3))
    with pytest.raises(ValueError, match="infinite"):
        nt.FourierFeatures(None)
    with pytest.raises(ValueError, match="positive"):
        nt.FourierFeatures.gaussian(8, -1.0, 1)
    with pytest.raises(ValueError, match="periods"):
        nt.PeriodicEmbedding((None, None))
    with pytest.raises(ValueError, match="embedding must be"):
        nt.MLP(1, "erf", embedding="fourier")
    with pytest.raises(OperatorError, match="unknown name 'w_x'"):
        nt.Operator.parse("u_x + w_x", X2, functions=("u", "v", "p"))
    with pytest.raises(OperatorError, match="unknown name 'z'"):
        nt.OutputTransform("x*(1 - z)")
    with pytest.raises(OperatorError, match="coordinates"):
        nt.operator_kernel(
            nt.MLP(1, "erf", output_transform=D_1D), nt.derivative(("t",), "t"), PTS_1D
        )
    with pytest.raises(OperatorError, match="outputs=3"):
        nt.operator_kernel(
            nt.MLP(1, "erf"), nt.Operator.parse("u_x + v_y", X2, functions=("u", "v", "p")), PTS_2D
        )
    with pytest.raises(ValueError, match="one output"):
        nt.MLP(1, "erf", outputs=2, output_transform=D_1D)
    with pytest.raises(OperatorError, match="unknown function"):
        nt.OutputTransform("__import__('os').system('echo hi')")


def test_hard_constrained_prediction_honours_the_lift():
    # u'' = f on [0, 1], u(0) = 0, u(1) = 1, exact u = sin(πx) + x; u = x + x(1 - x) N(x) has
    # the boundary values built in, and the loss is the residual alone. At t → ∞ the predicted
    # mean solves the collocation equations (T μ = f) and takes the boundary values exactly.
    net = nt.MLP(
        1, "erf", W_std=1.0, b_std=1.0, output_transform=nt.OutputTransform("x*(1 - x)", g="x")
    )
    xr = np.linspace(0.0, 1.0, 12)[:, None]
    f = -(np.pi**2) * np.sin(np.pi * xr[:, 0])
    prob = nt.PINNProblem(
        nt.derivative(X1, "x", 2),
        (),
        xr,
        f,
        (),
        (),
        exact=lambda x: np.sin(np.pi * x[:, 0]) + x[:, 0],
    )
    ends = np.array([[0.0], [1.0]])
    p = nt.predict(net, prob, ends, [10])
    np.testing.assert_array_equal(p.mean_inf, [0.0, 1.0])
    np.testing.assert_array_equal(p.mean[0], [0.0, 1.0])
    r = nt.predict(net, prob, xr, [], T_test=prob.residual)
    assert _rel(r.mean_inf, f) <= 1e-8
    x = np.linspace(0, 1, 41)[:, None]
    assert nt.predict(net, prob, x, []).l2_error_inf < 1e-3
