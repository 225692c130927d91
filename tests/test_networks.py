"""MLP specification: validation, repr, hashing; kernels agree with neural-tangents' kernel_fn
and with textbook closed forms; the engine's scanned layers equal unrolled ones."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import rel_err

import ntk_theory as nt
from ntk_theory import _engine, _jets


def test_validation_messages():
    with pytest.raises(ValueError, match="depth must be an integer ≥ 1"):
        nt.MLP(0, "erf")
    with pytest.raises(ValueError, match="Unknown activation 'mish'.*erf.*from_sympy"):
        nt.MLP(1, "mish")
    with pytest.raises(ValueError, match="W_std must be positive"):
        nt.MLP(1, "erf", W_std=0.0)
    with pytest.raises(ValueError, match="b_std must be non-negative"):
        nt.MLP(1, "erf", b_std=-1.0)
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="must be finite"):
            nt.MLP(1, "erf", W_std=bad)
        with pytest.raises(ValueError, match="must be finite"):
            nt.MLP(1, "erf", b_std=bad)
    with pytest.raises(ValueError, match="parameterization"):
        nt.MLP(1, "erf", parameterization="mup")
    with pytest.raises(ValueError, match="width must be a positive integer"):
        nt.MLP(1, "erf").finite(0)


def test_frozen_hashable_repr():
    a = nt.MLP(2, "tanh", W_std=1, b_std=1)
    b = nt.MLP(2, "tanh", W_std=1.0, b_std=1.0)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert (
        repr(a) == "MLP(depth=2, activation='tanh', W_std=1.0, b_std=1.0, parameterization='ntk')"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.depth = 3
    assert nt.MLP(1, "swish").act.name == "silu"  # alias


def test_points_validation():
    net = nt.MLP(1, "erf")
    with pytest.raises(ValueError, match=r"\(n, d\) array.*x\[:, None\]"):
        net.ntk(np.ones(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.ntk(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="dimension 2 but x2 of dimension 3"):
        net.ntk(np.ones((2, 2)), np.ones((2, 3)))


# Every activation, both parameterizations: the engine (x-space jets, Mehler tables for the
# numeric activations) against neural-tangents' kernel_fn built from our stax layers, whose
# numeric activations evaluate every entry on its own by 2-D quadrature -- two independent
# evaluations of the same recursion. Depth 3 reaches the scanned layers. The standard
# parameterization only rescales the dense layers (activation-independent code): it is checked
# for every closed form and for tanh, which stands for the Mehler route of sigmoid, silu and
# softplus (each ~25 s of compilation on 2 cores).
_NUMERIC_NTK_ONLY = ("sigmoid", "silu", "swish", "softplus")


@pytest.mark.parametrize(
    "name, parameterization",
    [(a, "ntk") for a in nt.ACTIVATIONS]
    + [(a, "standard") for a in nt.ACTIVATIONS if a not in _NUMERIC_NTK_ONLY],
)
def test_engine_equals_stax(name, parameterization, rng):
    net = nt.MLP(3, name, W_std=1.3, b_std=0.2, parameterization=parameterization)
    x = rng.uniform(-1, 1, size=(6, 3))
    y = rng.uniform(-1, 1, size=(4, 3))
    for get in ("ntk", "nngp"):
        ours = np.asarray(getattr(net, get)(x, y))
        ref = np.asarray(net.kernel_fn(x, y, get))
        assert rel_err(ours, ref) < 1e-13, get


@pytest.mark.parametrize("name", ["erf", "tanh", "relu4"])
def test_scanned_layers_equal_unrolled(name, rng):
    # The engine runs every hidden layer as one lax.scan body (compile time); every entry of an
    # operator kernel must equal the unrolled recursion to round-off.
    net = nt.MLP(4, name, W_std=1.2, b_std=0.3)
    x = rng.uniform(-1, 1, size=(5, 2))
    order = 1 if name == "relu4" else 2
    T = nt.Operator.parse("u_x + u_y" if order == 1 else "u_xx + u_y", ("x", "y"))
    keys = tuple(key for key, _ in T.terms)  # (unknown, multi-index)
    alphas = tuple(a for _, a in keys)
    support = _jets.support(alphas, alphas)
    spec, d1, _ = _engine.plan(net, x, x, support, "ntk", order)
    assert spec.scan
    ones = [np.asarray(v) for v in T.coefficient_values(x).values()]
    idx = np.arange(5)
    scanned = _engine.block_function(net, spec, keys, keys, True)(
        x, x, ones, ones, _engine._take(d1, idx), _engine._take(d1, idx)
    )
    flat = dataclasses.replace(spec, scan=False)
    # the scanned layers' data is one stacked entry (layers, ...): one entry per layer unrolled
    *first, stacked = d1.layers
    rest = len(spec.layers) - len(first)
    data = [None if r is None else (r[0][..., idx, :], r[1][idx]) for r in first]
    data += (
        [None] * rest if stacked is None else [(stacked[0][k], stacked[1][k]) for k in range(rest)]
    )
    unrolled = _engine.block_function(net, flat, keys, keys, False)(x, x, ones, ones, data, data)
    assert rel_err(scanned, unrolled) < 1e-12


@pytest.mark.parametrize(
    "f, x",
    [
        (_jets.rsqrt, np.array([0.2, 1.0, 3.5])),
        (_jets.reciprocal, np.array([0.2, 1.0, -3.5])),
        (_jets.power(1.5), np.array([0.2, 1.0, 3.5])),
        (jnp.exp, np.array([-1.0, 0.0, 2.0])),
        (jnp.sinh, np.array([-1.0, 0.3, 2.0])),
        (jnp.cosh, np.array([-1.0, 0.3, 2.0])),
        (jnp.arctan, np.array([-3.0, 0.3, 40.0])),
    ],
)
def test_closed_form_derivative_stacks(f, x):
    # The closed-form stacks equal nested forward-mode autodiff (the generic fallback).
    closed = _jets.elementwise_derivatives(f, jnp.asarray(x), 5)
    nested = _jets._derivative_stack(f, 5)(jnp.asarray(x))
    for k, (a, b) in enumerate(zip(closed, nested, strict=True)):
        assert rel_err(a, b) < 1e-13, k


def _erf_closed_form(x, ws, bs):
    """One hidden erf layer, ntk parameterization, by hand (Williams 1997; Jacot et al. 2018)."""
    d = x.shape[1]
    S = ws**2 * x @ x.T / d + bs**2
    v = np.diag(S)
    prod = np.outer(1 + 2 * v, 1 + 2 * v)
    E = 2 / np.pi * np.arcsin(2 * S / np.sqrt(prod))
    Ed = 4 / np.pi / np.sqrt(prod - 4 * S**2)
    nngp = ws**2 * E + bs**2
    return nngp, nngp + ws**2 * Ed * S


def _relu_closed_form(x, ws, bs):
    """One hidden ReLU layer (Cho & Saul 2009 J_0, J_1; Arora et al. 2019 eq. (5))."""
    d = x.shape[1]
    S = ws**2 * x @ x.T / d + bs**2
    n = np.sqrt(np.outer(np.diag(S), np.diag(S)))
    rho = np.clip(S / n, -1, 1)
    np.fill_diagonal(rho, 1.0)
    th = np.arccos(rho)
    E = n * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
    Ed = (np.pi - th) / (2 * np.pi)
    nngp = ws**2 * E + bs**2
    return nngp, nngp + ws**2 * Ed * S


@pytest.mark.parametrize("name, closed", [("erf", _erf_closed_form), ("relu", _relu_closed_form)])
def test_textbook_closed_forms(name, closed, rng):
    x = rng.normal(size=(7, 3))
    net = nt.MLP(1, name, W_std=1.3, b_std=0.2)
    nngp, ntk = closed(x, 1.3, 0.2)
    np.testing.assert_allclose(np.asarray(net.nngp(x)), nngp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(net.ntk(x)), ntk, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# contract tests: every registered activation gets these for free
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(7).uniform(-1, 1, size=(12, 2))


@pytest.mark.parametrize("name", list(nt.ACTIVATIONS))
def test_activation_contract(name, points):
    net = nt.MLP(2, name, W_std=1.2, b_std=0.3)
    for K in (net.ntk(points), net.nngp(points)):
        assert K.dtype == jnp.float64 and K.shape == (12, 12)
        K = np.asarray(K)
        assert np.all(np.isfinite(K))
        np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-13 * np.abs(K).max())
        assert np.linalg.eigvalsh(K).min() > -1e-12 * np.abs(K).max()
        assert np.all(np.diag(K) > 0)
    act = net.act
    assert act.source, "every activation documents where its kernel comes from"
    assert act.max_operator_order is None or act.max_operator_order >= 0
    # the function itself is jit-compatible and float64
    assert jax.jit(act.fn)(jnp.ones(3)).dtype == jnp.float64


def test_large_inputs_are_blocked_exactly(rng):
    # 300 points → 300² entries > 256²: MLP.ntk switches to padded 256 x 256 blocks.
    net = nt.MLP(2, "erf", W_std=1.3, b_std=0.2)
    x = rng.uniform(size=(300, 2))
    direct = np.asarray(jax.jit(lambda a: net.kernel_fn(a, None, "ntk"))(x))
    np.testing.assert_allclose(np.asarray(net.ntk(x)), direct, rtol=1e-14, atol=1e-15)


def test_huge_inputs_stay_finite():
    # erf's closed form written with det Σ (from the input geometry) and atan2 does not cancel:
    # the old arcsin form returned inf at |x| = 1e8. Reference: the sign-activation limit, E[φφ]
    # → (2/π) arcsin ρ with ρ → 1 on the diagonal, so Σ² → σ_w² + σ_b² there.
    net = nt.MLP(1, "erf", W_std=1.3, b_std=0.2)
    x = np.array([[1e8], [2e8], [-1e8]])
    S = np.asarray(net.nngp(x))
    assert np.all(np.isfinite(S)) and np.all(np.isfinite(np.asarray(net.ntk(x))))
    np.testing.assert_allclose(np.diag(S), 1.3**2 * 2 / np.pi * np.arcsin(1.0) + 0.04, rtol=1e-7)
    assert abs(S[0, 2] - (1.3**2 * 2 / np.pi * np.arcsin(-1.0) + 0.04)) < 1e-6
