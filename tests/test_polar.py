"""The polar form of deep gelu/SiLU/softplus kernels (``ntk_theory._polar``).

* One layer's outputs -- ``E[φφ]``, ``E[φ'φ']``, the next ``det Σ'``, norm ``a'`` and
  correlation ``ρ'`` -- against the closed-form mixture of 50-digit mpmath evaluated from the
  covariance *entries* (``reference._mixture_kernels``, the same Gauss rule): this checks the
  rewriting in the norms and degree-0 variables, in the three regimes of ``ρ`` (close, far,
  opposite) at variances ``1 … 1e8``. The components themselves are checked against 2-D
  quadrature of the activations' derivatives in test_mixture; the composed deep kernels against
  mpmath's derivatives in test_reference.
* gelu's layer at variances 1e4 … 1e8 against 1-D quadrature of its conditional expectations
  (no bivariate closed form), and :func:`_polar.mixed_layer` (points near the origin) against
  the mixture of the entries.
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


def _jet(values):
    """A jet of order 0 with one entry per case: shape ``(1, cases)``."""
    return Jet({(0, 0): jnp.asarray(values, jnp.float64)[None, :]}, frozenset({(0, 0)}))


def _references(name, cases, derived):
    """Per case ``(Σ11, Σ22, det Σ, sign)`` the 50-digit mixture kernels from the entries and
    the quantities ``derived(row)`` adds (in mpmath: differences are formed exactly), as
    float64 columns."""
    _, _, nodes, weights = _polar.ACTIVATIONS[name]
    rows = []
    with mp.workdps(50):
        rule = ([mp.mpf(k) for k in nodes], [mp.mpf(w) for w in weights])
        w2, b2 = mp.mpf(W2), mp.mpf(B2)
        for v11, v22, det, sign in cases:
            s11, s22, d = mp.mpf(v11), mp.mpf(v22), mp.mpf(det)
            row = {"s11": s11, "s22": s22, "det": d, "s12": sign * mp.sqrt(s11 * s22 - d)}
            for key, args in (("", (s11, row["s12"], s22)), ("11", (s11,) * 3), ("22", (s22,) * 3)):
                row["e" + key], row["dot" + key] = R._mixture_kernels(name, *args, rule)
            row.update({f"n{k}": w2 * row[f"e{k}"] + b2 for k in ("11", "22")})
            row["n12"] = w2 * row["e"] + b2
            row["e_scale"] = mp.sqrt(row["e11"] * row["e22"])
            row["dot_scale"] = mp.sqrt(row["dot11"] * row["dot22"])
            row.update(derived(row, w2, b2))
            rows.append(row)
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _assert_close(checks, cases):
    """``(got, reference, scale)`` columns: every case within 3e-15 of its scale."""
    for got, ref, scale in checks:
        err = np.abs(np.ravel(got.value) - ref)  # (x = 0 without bias: E = √(E11E22) = 0)
        bad = ~(err <= 3e-15 * np.abs(scale))
        assert not bad.any(), [(c, e) for c, e, b in zip(cases, err, bad, strict=True) if b]


@pytest.mark.parametrize("name", sorted(_polar.ACTIVATIONS))
def test_one_layer_against_the_mixture_of_the_entries(name):
    """Every output of :func:`_polar.layer` at 50-digit references. Formed from float64
    entries, ``det Σ'`` would lose ``~ε Σ²`` (1e-4 relative to itself at Σ = 1e6, x ≈ x').
    Measured: ``E``, ``E'`` within 3e-15 of their Cauchy-Schwarz scales ``√(E11 E22)``, ``a'``
    and ``ρ'`` relative; ``q' = det Σ'/(a'²b'²)`` ≤ 1e-14 relative or 1e-16 σ_w⁴ Σ/(a'²b'²)
    where it is itself far below 1 (x = x' at Σ = 1e8)."""

    def derived(row, w2, b2):
        e, e11, e22 = row["e"], row["e11"], row["e22"]
        a, b = mp.sqrt(row["s11"]), mp.sqrt(row["s22"])
        return {
            "a": a,
            "b": b,
            "rho": row["s12"] / (a * b),
            "q": row["det"] / (a * b) ** 2,
            "q'": (w2**2 * (e11 * e22 - e**2) + w2 * b2 * (e11 + e22 - 2 * e))
            / (row["n11"] * row["n22"]),
            "a'b'": mp.sqrt(row["n11"] * row["n22"]),
            "a'": mp.sqrt(row["n11"]),
            "rho'": row["n12"] / mp.sqrt(row["n11"] * row["n22"]),
        }

    ref = _references(name, LAYER_CASES, derived)
    got_e, got_dot, (got_det, got_a, _, got_rho) = _polar.layer(
        name, *(_jet(ref[k]) for k in ("a", "b", "s12", "q", "rho")), W2, B2
    )
    _assert_close(
        [  # (got, reference, its scale: the Cauchy-Schwarz bound for kernels)
            (got_e, ref["e"], ref["e_scale"]),
            (got_dot, ref["dot"], ref["dot_scale"]),
            (got_a, ref["a'"], ref["a'"]),
            (got_rho, ref["rho'"], 1.0),
        ],
        LAYER_CASES,
    )
    big = np.maximum(ref["s11"], ref["s22"])
    tol = 1e-14 * np.abs(ref["q'"]) + 1e-16 * W2**2 * big / ref["a'b'"] ** 2
    err = np.abs(np.ravel(got_det.value) - ref["q'"])
    assert np.all(err <= tol), err / tol


QUADRATURE_CASES = [  # (Σ11, Σ22, ρ) at the variances of deep layers at |x| = 100 … 1e4
    (1e4, 1.2e4, 0.3),
    (1e6, 1.0e6, 0.999999),
    (1e6, 2.0e6, -0.7),
    (1e8, 1.3e8, 0.5),
    (1e8, 1.0e8, -0.99999),
]


def test_gelu_layer_against_one_dimensional_quadrature():
    """gelu's ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` from :func:`_polar.layer` at variances 1e4 …
    1e8 against a route that shares no formula with the bivariate closed form: 30-digit mpmath
    quadrature over ``u`` of ``gelu(u)`` times ``E[gelu(v) | u]``, the latter from univariate
    Gaussian identities (``v | u ~ N(m, s²)``, ``τ² = 1 + s²``: ``E[vΦ(v)] = mΦ(m/τ) +
    s²ϕ(m/τ)/τ``, ``E[Φ(v) + vϕ(v)] = Φ(m/τ) + mϕ(m/τ)/τ³``). The test_mixture checks stop at
    variance 1e4 (2-D quadrature of the activations). Measured: ≤ 1e-16 of ``√(E11E22)``
    (``E``), ≤ 6e-17 absolute (``E'`` ≤ 1)."""
    with mp.workdps(30):

        def expectations(s11, s12, s22):
            k, s2 = s12 / s11, s22 - s12 * s12 / s11
            tau = mp.sqrt(1 + s2)
            sd = mp.sqrt(s11)
            edge = tau / abs(k)  # where E[· | u] turns: m/τ ~ 1
            knots = sorted({mp.mpf(0), *(t * v for t in (1, -1) for v in (1, 10, sd, 10 * sd))})
            knots = sorted({*knots, edge, -edge, 10 * edge, -10 * edge})
            knots = [v for v in knots if abs(v) <= 40 * sd]

            def weight(u):
                return mp.npdf(u / sd) / sd

            def value(u):
                m = k * u
                return u * mp.ncdf(u) * (m * mp.ncdf(m / tau) + s2 * mp.npdf(m / tau) / tau)

            def slope(u):
                m = k * u
                inner = mp.ncdf(m / tau) + m * mp.npdf(m / tau) / tau**3
                return (mp.ncdf(u) + u * mp.npdf(u)) * inner

            return [mp.quad(lambda u, f=f: f(u) * weight(u), knots) for f in (value, slope)]

        rows = []
        for v11, v22, rho in QUADRATURE_CASES:
            s11, s22 = mp.mpf(v11), mp.mpf(v22)
            s12 = rho * mp.sqrt(s11 * s22)
            e, dot = expectations(s11, s12, s22)
            e11, e22 = expectations(s11, s11, s11)[0], expectations(s22, s22, s22)[0]
            row = [mp.sqrt(s11), mp.sqrt(s22), s12, 1 - mp.mpf(rho) ** 2, rho, e, dot]
            rows.append([float(v) for v in (*row, mp.sqrt(e11 * e22))])
    a, b, s12, q, rho, e, dot, scale = np.array(rows).T
    got_e, got_dot, _ = _polar.layer("gelu", *map(_jet, (a, b, s12, q, rho)), W2, B2)
    _assert_close([(got_e, e, scale), (got_dot, dot, 1.0)], QUADRATURE_CASES)


SMALL_CASES = [  # (Σ11, Σ22, det Σ, sign of Σ12), Σ11 < POLAR_SMALL_VARIANCE, Σ22 large
    (0.0, 1e6, 0.0, 1),  # x = 0 without bias: Σ11 = Σ12 = 0
    (0.3, 1e6, 0.29e6, -1),  # nearly orthogonal, far out
    (0.9, 1e8, 0.5e8, 1),
    (1e-4, 4.0, 1e-4, 1),  # the other point only moderately large
]
SMALL_PAIRS = [  # both small
    (0.3, 0.3, 0.0, 1),  # x = x'
    (0.5, 0.2, 0.05, -1),
    (0.0, 0.2, 0.0, 1),
]


@pytest.mark.parametrize("name", sorted(_polar.ACTIVATIONS))
def test_mixed_layer_against_the_mixture_of_the_entries(name):
    """:func:`_polar.mixed_layer` for a small point against a large one (both orientations)
    and two small points, at 50-digit references like the test above: ``E``, ``E'`` within
    3e-15 of ``√(E11 E22)``; the hand-on -- the small points' variances ``Σ11'``, the large
    norm ``b'``, ``r' = Σ12'/b'`` and ``Q' = det Σ'/b'²`` (or ``Σ12'`` and ``det Σ'`` for two
    small points) -- within 3e-15 of ``Σ11'``, ``b'``, ``√Σ11'`` and ``Σ11'`` (``Σ11'Σ22'``)."""

    def derived(row, w2, b2):
        b, b_next = mp.sqrt(row["s22"]), mp.sqrt(row["n22"])
        r_next = row["n12"] / b_next
        prod = row["n11"] * row["n22"]
        return {
            "b": b,
            "r": row["s12"] / b,
            "q": row["det"] / row["s22"],
            "b'": b_next,
            "r'": r_next,
            "q'": row["n11"] - r_next**2,
            "root'": mp.sqrt(row["n11"]),
            "prod'": prod,
            "det'": prod - row["n12"] ** 2,
        }

    ref = _references(name, SMALL_CASES, derived)
    yes, no = jnp.ones((1, len(SMALL_CASES)), bool), jnp.zeros((1, len(SMALL_CASES)), bool)
    s11, b = _jet(ref["s11"]), _jet(ref["b"])
    slots = (_jet(ref["s12"]), _jet(ref["q"]), _jet(ref["r"]))
    sl = _polar.mixed_layer(name, s11, b, *slots, W2, B2, (yes, no))  # as (x, x')
    ls = _polar.mixed_layer(name, b, s11, *slots, W2, B2, (no, yes))  # as (x', x)
    checks = []
    for (e, dot, (q_next, *slot, r_next)), small in ((sl, 0), (ls, 1)):
        checks += [(e, ref["e"], ref["e_scale"]), (dot, ref["dot"], ref["dot_scale"])]
        checks += [(slot[small], ref["n11"], ref["n11"]), (slot[1 - small], ref["b'"], ref["b'"])]
        checks += [(r_next, ref["r'"], ref["root'"]), (q_next, ref["q'"], ref["n11"])]
    _assert_close(checks, SMALL_CASES)
    ref = _references(name, SMALL_PAIRS, derived)
    e, dot, (det_next, a_next, b_next, s12_next) = _polar.mixed_layer(
        name,
        *(_jet(ref[k]) for k in ("s11", "s22", "s12", "det", "s12")),
        W2,
        B2,
        (jnp.ones((1, len(SMALL_PAIRS)), bool),) * 2,
    )
    checks = [(e, ref["e"], ref["e_scale"]), (dot, ref["dot"], ref["dot_scale"])]
    checks += [(a_next, ref["n11"], ref["n11"]), (b_next, ref["n22"], ref["n22"])]
    checks += [(s12_next, ref["n12"], np.sqrt(ref["prod'"])), (det_next, ref["det'"], ref["prod'"])]
    _assert_close(checks, SMALL_PAIRS)


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


def test_first_layer_norm_and_direction_in_two_dimensions():
    """``√Σ11(x + dx)`` with ``Σ11 = c|x|² + σ_b²`` in 2-D, and the unit vector ``u = (x +
    dx)/√Σ11``: every Taylor coefficient up to order 4 against mpmath's, each relative to itself
    (the pure radial second derivative of the norm at ``x = (1000, 0)`` is ``σ_b²c/s^{3/2} ≈
    3e-11``, 2e-8 of the transverse one; ``u``'s radial derivatives are ``σ_b²/(c|x|²)`` of its
    transverse ones). Formed as the jet of ``√`` of the quadratic, the norm loses ``~ε
    |x|²/σ_b²`` there (1e-8), and ``u`` as a quotient as much."""
    c = W2 / 2
    points = np.array([[1000.0, 0.0], [700.0, -700.0], [0.01, 0.3], [-30.0, 4.0]])
    sup = support([(4, 0), (0, 4), (2, 2), (1, 3), (3, 1)], [(0, 0)])
    jets = [_polar.norm(points, 0, sup, c, B2), *_polar.direction(points, 0, sup, c, B2)[1]]
    with mp.workdps(40):
        for i, (x, y) in enumerate(points):

            def root(u, v):
                return mp.sqrt(c * (u * u + v * v) + B2)

            functions = [root, lambda u, v: u / root(u, v), lambda u, v: v / root(u, v)]
            for f, jet in zip(functions, jets, strict=True):
                for m in sup:
                    ref = mp.diff(f, (mp.mpf(x), mp.mpf(y)), m[:2]) / (
                        math.factorial(m[0]) * math.factorial(m[1])
                    )
                    got = float(np.broadcast_to(jet.coeffs.get(m, 0.0), (4, 1))[i, 0])
                    # (1e-45: mpmath's differences where a coefficient is 0 by symmetry)
                    assert abs(got - ref) <= 1e-13 * abs(ref) + 1e-45, ((x, y), m, got, ref)


def test_gelu_rule_is_the_single_component():
    """gelu is SiLU's component ``zΦ(z/c)`` at ``c = 1`` (SiLU's nodes are ``c = 2K``)."""
    assert _polar.ACTIVATIONS["gelu"][1:] == (1.0, (1.0,), (1.0,))
    assert _polar.ACTIVATIONS["silu"][1:] == (2.0, _mixture.NODES, _mixture.WEIGHTS)
