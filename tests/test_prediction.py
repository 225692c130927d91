"""Infinite-width predictions (ntk_theory.prediction) against independent formulas and against
ensembles of trained finite networks."""

import numpy as np
import pytest
import scipy.linalg

import ntk_theory as nt
from ntk_theory.training import train_ensemble

NET = nt.MLP(2, "erf", W_std=1.3, b_std=0.2)


def test_identity_operators_equal_kernel_regression():
    # Plain regression (identity operator, no boundary pieces): the neural-tangents formula of
    # Lee et al. 2019 eq. (16), written out with matrix powers, expm and solve -- no
    # eigendecomposition and no floor. Λ = I/N (loss weight 1 over N points).
    X = np.linspace(-1.0, 1.0, 6)[:, None]
    y = np.sin(3.0 * X[:, 0])
    xs = np.linspace(-1.5, 1.5, 7)[:, None]  # outside the data too
    problem = nt.PINNProblem(nt.identity(("x",)), (), X, y, (), ())
    Th, Ts = np.asarray(NET.ntk(X)), np.asarray(NET.ntk(xs, X))
    Kn, Ks, Kss = np.asarray(NET.nngp(X)), np.asarray(NET.nngp(xs, X)), np.asarray(NET.nngp(xs))
    assert np.linalg.cond(Th) < 1e4  # the reference's solve keeps ~12 digits
    N, steps = len(X), [0, 1, 10, 100]

    def moments(M):
        mean = Ts @ M @ y
        cov = Kss - Ts @ M @ Ks.T - Ks @ M.T @ Ts.T + Ts @ M @ Kn @ M.T @ Ts.T
        return mean, cov

    for method in ("gd", "flow"):
        p = nt.predict(NET, problem, xs, steps, method=method, full_cov=True)
        eta = p.learning_rate
        for i, t in enumerate(steps):
            if method == "gd":
                decay = np.linalg.matrix_power(np.eye(N) - eta * Th / N, t)
            else:
                decay = scipy.linalg.expm(-eta * t * Th / N)
            mean, cov = moments(np.linalg.solve(Th, np.eye(N) - decay))
            scale = np.abs(Kss).max()
            assert np.abs(p.mean[i] - mean).max() <= 1e-10 * np.abs(y).max(), (method, t)
            assert np.abs(p.cov[i] - cov).max() <= 1e-10 * scale, (method, t)
            np.testing.assert_allclose(p.std[i] ** 2, np.diag(cov), rtol=0, atol=1e-10 * scale)
        mean, cov = moments(np.linalg.inv(Th))
        assert np.abs(p.mean_inf - mean).max() <= 1e-10 * np.abs(y).max()
        assert np.abs(p.cov_inf - cov).max() <= 1e-10 * np.abs(Kss).max()


def test_infinite_time_interpolates_the_pde_and_boundary_data():
    # t → ∞ with K full rank: T μ_∞ = f at the collocation points and μ_∞ = g on the boundary.
    problem = nt.poisson_1d(8, frequency=1.0)
    K = np.asarray(problem.kernel(NET).K)
    assert np.linalg.cond(K) < 1e8  # full rank well above the floor
    f = problem.f
    res = nt.predict(NET, problem, problem.x_residual, [], T_test=problem.residual)
    assert np.abs(res.mean_inf - f).max() <= 1e-8 * np.abs(f).max()
    bnd = nt.predict(NET, problem, problem.x_boundary[0], [])
    assert np.abs(bnd.mean_inf - problem.g[0]).max() <= 1e-8 * np.abs(f).max()
    # and the data are learned exactly: no variance left at the training points
    assert np.all(bnd.std_inf <= 1e-6 * np.sqrt(np.asarray(NET.nngp(problem.x_boundary[0])).max()))


@pytest.mark.slow
def test_ensemble_of_trained_networks_matches_prediction():
    # 32 networks of width 2048 (one hidden layer: seconds on CPU) trained by gradient descent
    # with the same η against the predicted mean and standard deviation. Allowance for the mean:
    # finite-width corrections are O(width^-1/2) (Lee et al. 2019, Thm 2.1); we allow
    # 1/sqrt(width) times max|u|, and check that the deviation falls from width 512 to 2048.
    net = nt.MLP(1, "erf", W_std=1.3, b_std=0.5)
    problem = nt.poisson_1d(8, frequency=1.0)
    xs = np.linspace(0.0, 1.0, 9)[:, None]
    steps = [0, 10, 100, 300]
    p = nt.predict(net, problem, xs, steps)
    seeds = range(32)
    dev = {}
    for width in (512, 2048):
        rec = train_ensemble(net, width, problem, steps, xs, seeds=seeds)
        assert rec.learning_rate == pytest.approx(p.learning_rate, rel=1e-12)
        dev[width] = np.abs(rec.mean - p.mean).max(axis=1)
    se = rec.std / np.sqrt(len(seeds))
    allowance = 1.0 / np.sqrt(2048) * np.abs(problem.exact(xs)).max()
    assert np.all(np.abs(rec.mean - p.mean) <= 3 * se + allowance), dev[2048]
    # converging with width, where the trained part dominates the sampling error of u_0
    assert np.all(dev[2048][2:] < dev[512][2:] / 1.5), dev
    # spread at initialization and early in training: the NNGP prediction within the sampling
    # error of a standard deviation from 32 draws, sd/sqrt(2(n-1)), plus the same allowance
    for i in (0, 1):
        tol = 3 * p.std[i] / np.sqrt(2 * (len(seeds) - 1)) + allowance
        assert np.all(np.abs(rec.std[i] - p.std[i]) <= tol), (steps[i], rec.std[i], p.std[i])
    # the relative L2 error falls as predicted (after step 0, where the ensemble mean of 32
    # draws of u_0 is sampling noise, not the predicted 0)
    actual = np.linalg.norm(rec.mean - problem.exact(xs), axis=1) / np.linalg.norm(
        problem.exact(xs)
    )
    np.testing.assert_allclose(actual[1:], p.l2_error()[1:], rtol=0, atol=allowance)


def test_prediction_inputs():
    problem = nt.poisson_1d(6)
    x = np.linspace(0, 1, 4)[:, None]
    with pytest.raises(ValueError, match="dimension 2"):
        nt.predict(NET, problem, np.zeros((3, 2)), [1])
    with pytest.raises(ValueError, match="stability limit"):
        nt.predict(NET, problem, x, [1], learning_rate=1e6)
    with pytest.raises(ValueError, match="strictly increasing"):
        nt.predict(NET, problem, x, [10, 1])
    with pytest.raises(ValueError, match="≥ 0"):
        nt.predict(NET, problem, x, [-1])
    with pytest.raises(ValueError, match="whole step"):
        nt.predict(NET, problem, x, [0.5])
    with pytest.raises(ValueError, match="method"):
        nt.predict(NET, problem, x, [1], method="adam")
    with pytest.raises(TypeError, match="PINNProblem"):
        nt.predict(NET, problem.kernel(NET), x, [1])
    # gradient flow takes continuous times, and large ones are stable
    p = nt.predict(NET, problem, x, [0.5, 1e12], method="flow", learning_rate=1e6)
    np.testing.assert_allclose(p.mean[-1], p.mean_inf, rtol=0, atol=1e-9)


def test_cli_predict(tmp_path, capsys):
    from ntk_theory.cli import main

    png = tmp_path / "p.png"
    args = ["predict", "--activation", "erf", "--depth", "2", "--W-std", "1.3", "--b-std", "0.2"]
    args += ["--n", "6", "--n-test", "9", "--steps", "10", "100", "--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [
        line.split() for line in out.splitlines() if line.strip().startswith(("10", "100", "∞"))
    ]
    assert [r[0] for r in rows] == ["10", "100", "∞"]
    errors = [float(r[1]) for r in rows]
    assert errors[0] > errors[1] > errors[2]  # the L2 error falls with training
    assert png.stat().st_size > 0
    assert main([*args[:-2], "--steps", "100", "10"]) == 2
    assert "strictly increasing" in capsys.readouterr().err
