"""Funk–Hecke spectra on the sphere."""

import numpy as np
import scipy.special

import ntk_theory as nt
from ntk_theory.spherical import multiplicity, sphere_spectrum


def test_multiplicities():
    assert [multiplicity(3, k) for k in range(4)] == [1, 3, 5, 7]
    assert [multiplicity(2, k) for k in range(3)] == [1, 2, 2]
    assert multiplicity(4, 2) == 9  # (k+1)² on S^3


def test_exp_kernel_known_mercer_coefficients():
    # exp(⟨x,x'⟩) on S²: μ_k = √(π/2) I_{k+1/2}(1) (modified spherical Bessel i_k(1)).
    s = sphere_spectrum(None, 3, 12, kernel=np.exp)
    want = np.sqrt(np.pi / 2) * scipy.special.iv(np.arange(13) + 0.5, 1.0)
    # relative 1e-10 where μ_k is large; absolute 1e-13 = round-off of Σ_i w_i κ(t_i) P_k(t_i)
    np.testing.assert_allclose(s.eigenvalues, want, rtol=1e-10, atol=1e-13)


def test_polynomial_kernel_exact():
    # (1 + t)^3 = Σ_k N(3,k) μ_k P_k(t): only degrees ≤ 3, and Σ N μ = κ(1) = 8.
    s = sphere_spectrum(None, 3, 6, kernel=lambda t: (1 + t) ** 3)
    assert np.all(np.abs(s.eigenvalues[4:]) < 1e-12)  # round-off of a κ of size 8
    # scipy's Gauss–Jacobi rule at 424 nodes integrates this cubic to ~1e-12 relative
    assert abs(s.trace - 8.0) < 1e-10


def test_trace_equals_kappa_at_one():
    net = nt.MLP(2, "erf", W_std=1.0, b_std=0.5)
    s = sphere_spectrum(net, 3, 60)
    kappa1 = float(net.ntk(np.array([[1.0, 0, 0]]))[0, 0])
    assert abs(s.trace - kappa1) < 1e-10 * kappa1


def test_agrees_with_nystrom_on_uniform_points():
    # 2000 uniform points on S²: Nyström eigenvalues match μ_k (with multiplicity) within
    # sampling error (~1/√n relative for the top eigenvalues: we allow 10%).
    net = nt.MLP(2, "relu", W_std=1.0, b_std=0.5)
    q = nt.sphere(3, 2000, seed=1)
    nys = nt.spectrum(np.asarray(net.ntk(q.points)), q.weights).eigenvalues[:9]
    exact = sphere_spectrum(net, 3, 20).sorted_eigenvalues(9)
    np.testing.assert_allclose(nys, exact, rtol=0.1)


def test_relu_ntk_rate_bietti_bach():
    # Bietti & Bach (arXiv 2009.14397), Thm. 1/2: on S^{d-1} the ReLU NTK (with bias) has
    # μ_k ~ k^{-d}; the ReLU NNGP k^{-d-2}. d = 3, degrees 50..200: within 5%.
    net = nt.MLP(2, "relu", W_std=1.0, b_std=0.5)
    ntk = sphere_spectrum(net, 3, 200, degree_window=(50, 200)).degree_decay
    nngp = sphere_spectrum(net, 3, 200, get="nngp", degree_window=(50, 200)).degree_decay
    assert abs(ntk.alpha - 3) < 0.05 * 3
    assert abs(nngp.alpha - 5) < 0.05 * 5


def test_laplace_beltrami_multiplier_against_operator_kernel():
    # T = -Δ_S + 1 acts on degree k by k(k+1) + 1; the sphere spectrum with that operator must
    # equal the Funk–Hecke spectrum of the operator kernel written in coordinates.
    net = nt.MLP(1, "erf", W_std=1.0, b_std=0.5)
    T = -1 * nt.laplace_beltrami(("x", "y", "z")) + nt.identity(("x", "y", "z"))
    e1 = np.array([[1.0, 0.0, 0.0]])

    def kappa_T(t):
        x2 = np.stack([t, np.sqrt(1 - t**2), np.zeros_like(t)], 1)
        return np.asarray(nt.operator_kernel(net, T, e1, T, x2))[0]

    via_kernel = sphere_spectrum(None, 3, 10, kernel=kappa_T).eigenvalues
    via_multiplier = sphere_spectrum(net, 3, 10, operator=[1.0, 1.0]).eigenvalues
    # absolute tolerance: accuracy of scipy's Gauss–Jacobi weights (~1e-12, see the cubic test), relative to κ_T(1) = Σ_k N(3,k) μ_k p(ℓ_k)²
    scale = float(kappa_T(np.array([1.0]))[0])
    np.testing.assert_allclose(via_kernel, via_multiplier, rtol=1e-8, atol=1e-10 * scale)


def test_bad_input():
    import pytest

    with pytest.raises(ValueError, match="dim must be"):
        sphere_spectrum(nt.MLP(1, "erf"), 1, 10)
    with pytest.raises(ValueError, match="exactly one"):
        sphere_spectrum(None, 3, 10)
