"""Integral-operator spectra, decay fits, diagnostics and bad input."""

import math

import numpy as np
import pytest

import ntk_theory as nt
from ntk_theory.spectra import fit_decay, richardson_eigenvalues, spectrum


def _min_kernel(p):
    return np.minimum(p, p.T)


def test_min_kernel_known_spectrum():
    # min(x, y) on [0, 1]: λ_k = 1/((k - 1/2)² π²). Nyström with Gauss–Legendre converges like
    # n^-2 here (the kernel has a kink on the diagonal); Richardson extrapolation over n = 400,
    # 800 gives the first 20 to ≤ 1e-6 relative.
    k = np.arange(1, 21)
    exact = 1 / ((k - 0.5) ** 2 * np.pi**2)
    r = richardson_eigenvalues(_min_kernel, lambda n: nt.interval(0, 1, n), 400, 20)
    assert np.max(np.abs(r.eigenvalues - exact) / exact) <= 1e-6
    # the plain Nyström error falls by 4 per doubling (the order the extrapolation assumes)
    ratio = np.abs(r.coarse - exact) / np.abs(r.fine - exact)
    assert np.all(np.abs(ratio[:10] - 4) < 0.05)


def test_operator_eigenvalues_do_not_grow_with_n():
    net = nt.MLP(2, "tanh", W_std=1.0, b_std=1.0)
    tops = []
    for n in (40, 80):
        q = nt.interval(0, 1, n)
        tops.append(spectrum(np.asarray(net.ntk(q.points)), q.weights).eigenvalues[:5])
    np.testing.assert_allclose(tops[0], tops[1], rtol=1e-8)
    # while plain matrix eigenvalues grow with n (by a factor ≈ 2 here)
    q = nt.interval(0, 1, 80)
    assert spectrum(np.asarray(net.ntk(q.points))).eigenvalues[0] > 60 * tops[1][0]


def test_decay_fit_recovers_exponent(rng):
    # Synthetic λ_i = 3 i^-2.5 with 5% multiplicative noise: α within 3 standard errors.
    i = np.arange(1, 301)
    lam = 3 * i**-2.5 * np.exp(0.05 * rng.standard_normal(i.size))
    fit = fit_decay(np.sort(lam)[::-1], window=(5, 200))
    assert abs(fit.alpha - 2.5) < 3 * fit.stderr
    assert fit.stderr < 0.02
    assert fit.window == (5, 200)


def test_diagnostics():
    lam = np.array([4.0, 2.0, 1.0, 0.5])
    K = np.diag(lam)
    s = spectrum(K, learning_rate=0.5, time_budget=1.5)
    np.testing.assert_allclose(s.eigenvalues, lam)
    assert s.condition_number == 8.0
    assert math.isclose(s.effective_rank, 7.5**2 / 21.25)
    np.testing.assert_allclose(s.times, 1 / (0.5 * lam))
    assert s.slow_modes == 2  # times 0.5, 1, 2, 4 → two above 1.5
    assert "effective rank" in s.summary()


def test_negative_eigenvalues_reported_not_clipped():
    # -1e-14 is beyond round-off for a 3 x 3 matrix of scale 1 (n ε λ_max ≈ 7e-16): reported,
    # kept, and flagged as not PSD; -1e-16 is round-off and only reported.
    with pytest.warns(nt.spectra.NotPSDWarning, match="not positive semi-definite"):
        s = spectrum(np.diag([1.0, 0.5, -1e-14]))
    assert s.n_negative == 1 and s.most_negative == -1e-14 and s.eigenvalues[-1] == -1e-14
    assert s.numerical_rank == 2 and not s.is_psd and "NOT positive" in s.summary()
    s = spectrum(np.diag([1.0, 0.5, -1e-16]))
    assert s.is_psd and s.n_negative == 1


def test_eigenfunctions_orthonormal_in_l2():
    q = nt.interval(0, 1, 30)
    s = spectrum(_min_kernel(q.points), q.weights, eigenvectors=True)
    G = s.eigenvectors.T @ (q.weights[:, None] * s.eigenvectors)
    np.testing.assert_allclose(G, np.eye(30), atol=1e-10)


def test_trace_weights_three_piece_wave_problem():
    # Wang–Yu–Perdikaris §7.3: u_tt - 4u_xx with u(x,0), u_t(x,0) and Dirichlet pieces.
    C = ("t", "x")
    net = nt.MLP(1, "tanh", W_std=1.0, b_std=1.0)
    T = nt.Operator.parse("u_tt - 4*u_xx", C)
    g = np.linspace(0.05, 0.95, 6)
    xr = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    x_init = np.stack([np.zeros(6), g], 1)
    x_wall = np.stack([np.concatenate([g, g]), np.r_[np.zeros(6), np.ones(6)]], 1)
    P = nt.pinn_kernel(
        net,
        T,
        [nt.identity(C), nt.derivative(C, "t"), nt.identity(C)],
        xr,
        [x_init, x_init, x_wall],
    )
    w = nt.trace_weights(P)
    tr = np.trace(np.asarray(P.K))
    for k, label in enumerate(P.labels):
        assert math.isclose(w[label], tr / np.trace(np.asarray(P.piece(k, k))))
    assert w["residual"] < w["boundary 0"]  # the residual block dominates the trace


@pytest.mark.parametrize(
    "K, kwargs, match",
    [
        (np.array([[1.0, 2.0], [0.0, 1.0]]), {}, "not symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), {}, "NaN"),
        (np.eye(3), {"weights": np.ones(2)}, "shape"),
        (np.eye(3), {"weights": np.array([1.0, -1.0, 1.0])}, "positive"),
        (np.eye(10), {"window": (3, 50)}, "outside the spectrum"),
        (np.ones((2, 3)), {}, "square"),
    ],
)
def test_bad_input(K, kwargs, match):
    with pytest.raises(ValueError, match=match):
        spectrum(K, **kwargs)
