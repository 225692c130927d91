"""The logistic family as Gaussian scale mixtures (``ntk_theory._mixture``).

* The stored Gauss rule is what ``kolmogorov_rule`` builds, and it reproduces moments of the
  Kolmogorov distribution known in closed form (``E[K²] = π²/12``, from the logistic variance
  ``π²/3 = 4E[K²]``; ``E[1/K] = √(π/2)``, from ``tanh'(0) = 1``).
* The mixture kernels *and their derivatives in the covariance* equal the Price pairs
  ``2^{-a-c} E[φ^{(2a+b)}(u) φ^{(2c+b)}(v)]`` of the sinh-mapped 2-D quadrature
  (``ntk_theory._gauss2d``, checked against an extended-precision reference in
  test_activations): a different formula (numerical integration of the activation's own
  derivatives) at variances ``1e-2 … 1e4``, correlations up to 1 and derivative orders up to 9.
"""

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from ntk_theory import _gauss2d, _mixture
from ntk_theory._jets import Jet
from ntk_theory.activations import get_activation

sys.path.insert(0, str(Path(__file__).parent))

MIXED = sorted(_mixture.MIXTURES)


def test_rule_is_current_and_has_the_known_moments():
    nodes, weights = _mixture.kolmogorov_rule(24, 40)
    np.testing.assert_allclose(_mixture.NODES, [float(k) for k in nodes], rtol=1e-15)
    np.testing.assert_allclose(_mixture.WEIGHTS, [float(w) for w in weights], rtol=1e-14)
    with mp.workdps(40):
        assert abs(mp.fsum(weights) - 1) < mp.mpf(10) ** -30
        # E[K^2] = pi^2/12 (logistic variance pi^2/3 = Var(2KZ) = 4 E[K^2])
        assert (
            abs(mp.fsum(w * k**2 for k, w in zip(nodes, weights, strict=True)) - mp.pi**2 / 12)
            < 1e-30
        )
        # E[1/K] = sqrt(pi/2): tanh(z) = E[erf(z/(sqrt2 K))] and tanh'(0) = 1 = E[sqrt(2/pi)/K]
        assert (
            abs(mp.fsum(w / k for k, w in zip(nodes, weights, strict=True)) - mp.sqrt(mp.pi / 2))
            < 1e-20
        )
    # the density is a density (numerical integral over the support used by the rule)
    with mp.workdps(20):
        assert abs(mp.quad(_mixture.kolmogorov_pdf, [0.05, 0.9, 3, 8]) - 1) < 1e-15


def _jet_in_entries(v11, v12, v22, degree: int):
    """Jets of ``Σ11 + t₁``, ``Σ12 + t₂``, ``Σ22 + t₃`` in three independent increments (a 3-D
    "input" whose coefficients are the partial derivatives in the covariance entries)."""
    keys = [m for m in np.ndindex(degree + 1, degree + 1, degree + 1) if sum(m) <= degree]
    support = frozenset((*(int(v) for v in m), 0, 0, 0) for m in keys)

    def jet(value, axis):
        unit = [0] * 6
        unit[axis] = 1
        return Jet({(0,) * 6: jnp.reshape(value, (1, 1)), tuple(unit): 1.0}, support)

    return jet(v11, 0), jet(v12, 1), jet(v22, 2)


DEGREE = 3


def _partials_fn(name):
    def fn(v11, v12, v22, det0):
        s11, s12, s22 = _jet_in_entries(v11, v12, v22, DEGREE)
        increments = s11 * s22 - s12 * s12
        det = increments + (det0 - jnp.reshape(increments.value, ()))
        nngp, dot = _mixture.dual(name, s11, s12, s22, det)
        return nngp.coeffs, dot.coeffs

    return jax.jit(fn)


COVARIANCES = [  # (Σ11, τ = 1 - ρ, Σ22): small and large variances, ρ up to 1, unequal variances
    (0.01, 0.5, 0.02),
    (1.0, 0.5, 2.0),
    (1.0, 0.0, 1.0),
    (3.0, 1e-3, 3.1),
    (20.0, 1.7, 15.0),
    (1e3, 1e-5, 1.1e3),
    (1e4, 0.0, 1e4),
]


@pytest.mark.parametrize("name", MIXED)
def test_mixture_derivatives_are_price_pairs(name):
    """∂^a_{11} ∂^b_{12} ∂^c_{22} of the mixture kernel (a + b + c ≤ 3: orders up to 9 in φ for
    E[φφ], 10 for E[φ'φ']) against the quadrature's Price pairs, relative to the Cauchy-Schwarz
    scale sqrt(E[φ^(i)(u)²] E[φ^(j)(v)²]) (entries cross zero as ρ varies). Measured: tanh and
    sigmoid ≤ 2e-15 everywhere; SiLU and softplus ≤ 1e-15 × variance."""
    act = get_activation(name)
    partials = _partials_fn(name)
    v11, tau, v22 = (np.array(c) for c in zip(*COVARIANCES, strict=True))
    # the correlation from τ = 1 - ρ, so that both sides get sin² = τ(2 - τ) without the
    # cancellation of 1 - ρ²
    rho, sin2 = 1.0 - tau, tau * (2.0 - tau)
    v12 = rho * np.sqrt(v11 * v22)
    results = [partials(*args) for args in zip(v11, v12, v22, v11 * v22 * sin2, strict=True)]
    keys = [m[:3] for m in results[0][0]]
    pairs = sorted({(2 * i + j + s, 2 * k + j + s) for i, j, k in keys for s in (0, 1)})
    n = max(max(p) for p in pairs)
    a, b = np.sqrt(v11), np.sqrt(v22)
    bound = float(max(a.max(), b.max()))
    price = _gauss2d.expectations(  # every covariance in one compiled rule
        act.stack(n),
        jnp.asarray(a),
        jnp.asarray(b),
        jnp.asarray(rho),
        [(i, j, 0, 0) for i, j in pairs],
        a_max=bound,
        b_max=bound,
        c_max=bound,
        s=jnp.asarray(np.sqrt(sin2)),
    )
    price = {p: np.asarray(v) for p, v in zip(pairs, price, strict=True)}
    diag = _gauss2d.diagonal(
        act.stack(n), jnp.asarray(np.stack([a, b])), [(i, i) for i in range(n + 1)], a_max=bound
    )
    norm = [np.asarray(v) for v in diag]  # E[φ^(i)(u)²], E[φ^(i)(v)²] per covariance
    for c, (nngp, dot) in enumerate(results):
        for shift, coeffs in ((0, nngp), (1, dot)):
            for m, coef in coeffs.items():
                i, j, k = m[:3]
                p, q = 2 * i + j + shift, 2 * k + j + shift
                weight = 0.5 ** (i + k) / (
                    math.factorial(i) * math.factorial(j) * math.factorial(k)
                )
                scale = math.sqrt(float(norm[p][0, c]) * float(norm[q][1, c])) * weight
                got = float(np.asarray(coef).ravel()[0])
                err = abs(got - float(price[(p, q)][c]) * weight) / scale
                # the gelu-type closed forms (SiLU, softplus) lose ~ε × variance in their
                # derivatives (5e-13 at 1e3; the same as gelu's own closed form)
                tol = 1e-13 + 1e-15 * max(v11[c], v22[c])
                assert err < tol, (name, COVARIANCES[c], shift, m, err)
