"""The polar form of deep gelu/SiLU/softplus kernels (``ntk_theory._polar``).

* One layer's outputs -- ``E[φφ]``, ``E[φ'φ']``, the next ``det Σ'``, norm ``a'`` and
  correlation ``ρ'`` -- against the closed-form mixture of 50-digit mpmath evaluated from the
  covariance *entries* (``reference._mixture_kernels``, the same Gauss rule): this checks the
  rewriting in the norms and degree-0 variables, in the three regimes of ``ρ`` (close, far,
  opposite) at variances ``1 … 1e8``. The components themselves are checked against 2-D
  quadrature of the activations' derivatives in test_mixture; the composed deep kernels against
  mpmath's derivatives in test_reference.
* ``tan_gap`` and its derivatives against mpmath on both sides of its series switch.
* The first layer's norm jet in 2-D: every Taylor coefficient to order 4 against mpmath, in the
  radial direction too, where ``√`` of the quadratic ``Σ11`` loses a factor ``|x|²/σ_b²``.
"""

import math
import sys
from pathlib import Path

import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from ntk_theory import _mixture, _polar
from ntk_theory._jets import Jet, elementwise_derivatives, support

sys.path.insert(0, str(Path(__file__).parent))
import reference as R

W2, B2 = 1.69, 0.04

LAYER_CASES = [  # (Σ11, Σ22, det Σ, sign of Σ12): regimes close / far / opposite, variances 1 … 1e8
    (1.0, 1.2, 0.3, 1),  # close, unit scale
    (1e4, 1.01e4, 5.0, 1),  # close: det ≪ Σ (x ≈ x')
    (1e6, 1.003e6, 1e-3, 1),
    (1e8, 1e8, 1e-2, 1),
    (2.0, 1e6, 1.5e6, 1),  # mixed scales
    (1e6, 9e5, 8.9e11, 1),  # far (ρ ≈ 0.1)
    (1e6, 9e5, 8.99e11, -1),  # far, ρ < 0
    (1e6, 9e5, 5e11, -1),  # opposite (ρ ≈ -0.7)
    (1e6, 1.1e6, 3.0, -1),  # opposite, x' ≈ -x
    (3.0, 2.0, 4.0, -1),
]


def _jet(value):
    return Jet({(0, 0): jnp.full((1, 1), float(value))}, frozenset({(0, 0)}))


@pytest.mark.parametrize("name", sorted(_polar.ACTIVATIONS))
def test_one_layer_against_the_mixture_of_the_entries(name):
    """Every output of :func:`_polar.layer` at 50-digit references. Formed from float64
    entries, ``det Σ'`` would lose ``~ε Σ²`` (1e-4 relative to itself at Σ = 1e6, x ≈ x').
    Measured: ``E``, ``E'`` within 3e-15 of their Cauchy-Schwarz scales ``√(E11 E22)``, ``a'``
    and ``ρ'`` relative; ``det Σ'`` ≤ 1e-14 relative or 1e-16 σ_w⁴ Σ where it is itself far
    below Σ (x = x' at Σ = 1e8)."""
    _, _, nodes, weights = _polar.ACTIVATIONS[name]
    with mp.workdps(50):
        rule = ([mp.mpf(k) for k in nodes], [mp.mpf(w) for w in weights])

        def kernels(s11, s12, s22):
            return R._mixture_kernels(name, s11, s12, s22, rule)

        w2, b2 = mp.mpf(W2), mp.mpf(B2)
        for v11, v22, det, sign in LAYER_CASES:
            s11, s22, d = mp.mpf(v11), mp.mpf(v22), mp.mpf(det)
            s12 = sign * mp.sqrt(s11 * s22 - d)
            (e12, dot), (e11, dot11), (e22, dot22) = (
                kernels(s11, s12, s22),
                kernels(s11, s11, s11),
                kernels(s22, s22, s22),
            )
            det_next = w2**2 * (e11 * e22 - e12**2) + w2 * b2 * (e11 + e22 - 2 * e12)
            a_next, b_next = mp.sqrt(w2 * e11 + b2), mp.sqrt(w2 * e22 + b2)
            rho_next = (w2 * e12 + b2) / (a_next * b_next)
            a, b = mp.sqrt(s11), mp.sqrt(s22)
            got_e, got_dot, (got_det, got_a, _, got_rho) = _polar.layer(
                name, _jet(a), _jet(b), _jet(s12), _jet(d), _jet(s12 / (a * b)), W2, B2
            )
            case = (name, v11, v22, det, sign)
            checks = (  # (got, reference, its scale: the Cauchy-Schwarz bound for kernels)
                (got_e, e12, mp.sqrt(e11 * e22)),
                (got_dot, dot, mp.sqrt(dot11 * dot22)),
                (got_a, a_next, a_next),
                (got_rho, rho_next, 1),
            )
            for got, ref, scale in checks:
                got = float(got.value[0, 0])
                assert abs(got - ref) <= 3e-15 * scale, (case, got, float(ref))
            got = float(got_det.value[0, 0])
            tol = 1e-14 * abs(det_next) + 1e-16 * W2**2 * max(v11, v22)
            assert abs(got - det_next) <= tol, (case, got, float(det_next))


def test_tan_gap_and_its_derivatives():
    """``t - atan t`` (series below 0.5, where the two terms agree to ``t³/3``) and its first
    three derivatives against mpmath, on both sides of the switch."""
    ts = [1e-8, 1e-3, 0.1, 0.4999, 0.5001, 2.0, 100.0]
    got = elementwise_derivatives(_polar.tan_gap, jnp.asarray(ts), 3)
    with mp.workdps(40):
        for i, t in enumerate(ts):
            for k in range(4):
                ref = mp.diff(lambda s: s - mp.atan(s), mp.mpf(t), k)
                assert abs(float(got[k][i]) - ref) <= 2e-15 * abs(ref), (t, k)


def test_first_layer_norm_in_two_dimensions():
    """``√Σ11(x + dx)`` with ``Σ11 = c|x|² + σ_b²`` in 2-D: every Taylor coefficient up to
    order 4 against mpmath's, each relative to itself (the pure radial second derivative at
    ``x = (1000, 0)`` is ``σ_b²c/s^{3/2} ≈ 3e-11``, 2e-8 of the transverse one). Formed as the
    jet of ``√`` of the quadratic it loses ``~ε |x|²/σ_b²`` there (1e-8)."""
    c = W2 / 2
    points = np.array([[1000.0, 0.0], [700.0, -700.0], [0.01, 0.3], [-30.0, 4.0]])
    sup = support([(4, 0), (0, 4), (2, 2), (1, 3), (3, 1)], [(0, 0)])
    jet = _polar.norm(points, 0, sup, c, B2)
    with mp.workdps(40):
        for i, (x, y) in enumerate(points):

            def f(u, v):
                return mp.sqrt(c * (u * u + v * v) + B2)

            for m in sup:
                ref = mp.diff(f, (mp.mpf(x), mp.mpf(y)), m[:2]) / (
                    math.factorial(m[0]) * math.factorial(m[1])
                )
                got = float(np.broadcast_to(jet.coeffs.get(m, 0.0), (4, 1))[i, 0])
                assert abs(got - ref) <= 1e-13 * abs(ref) + 1e-300, ((x, y), m, got, float(ref))


def test_gelu_rule_is_the_single_component():
    """gelu is SiLU's component ``zΦ(z/c)`` at ``c = 1`` (SiLU's nodes are ``c = 2K``)."""
    assert _polar.ACTIVATIONS["gelu"][1:] == (1.0, (1.0,), (1.0,))
    assert _polar.ACTIVATIONS["silu"][1:] == (2.0, _mixture.NODES, _mixture.WEIGHTS)
