"""MLP specification: validation, repr, hashing; kernels agree with neural-tangents and with
textbook closed forms; the jets engine's constant term equals the stax kernel."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import rel_err

import ntk_theory as nt
from ntk_theory import _jets
from ntk_theory._jets import Jet, derivative_set


def test_validation_messages():
    with pytest.raises(ValueError, match="depth must be an integer ≥ 1"):
        nt.MLP(0, "erf")
    with pytest.raises(ValueError, match="Unknown activation 'swish'.*erf"):
        nt.MLP(1, "swish")
    with pytest.raises(ValueError, match="W_std must be positive"):
        nt.MLP(1, "erf", W_std=0.0)
    with pytest.raises(ValueError, match="b_std must be non-negative"):
        nt.MLP(1, "erf", b_std=-1.0)
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


def test_points_validation():
    net = nt.MLP(1, "erf")
    with pytest.raises(ValueError, match=r"\(n, d\) array.*x\[:, None\]"):
        net.ntk(np.ones(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.ntk(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="dimension 2 but x2 of dimension 3"):
        net.ntk(np.ones((2, 2)), np.ones((2, 3)))


@pytest.mark.parametrize("name", list(nt.ACTIVATIONS))
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_jets_engine_equals_stax(name, parameterization, rng):
    # The layer recursion on jets (used for operator kernels) reproduces neural-tangents'
    # kernel_fn exactly at order 0, for both parameterizations.
    net = nt.MLP(3, name, W_std=1.3, b_std=0.2, parameterization=parameterization)
    x = rng.uniform(-1, 1, size=(6, 3))
    M = derivative_set(0, 0)
    q = jnp.sum(x * x, axis=1)
    nngp, ntk = net.kernel_jets(
        Jet.variable(x @ x.T, 0, M),
        Jet.variable(q[:, None], 1, M),
        Jet.variable(q[None, :], 2, M),
        3,
    )
    assert rel_err(ntk.value, net.ntk(x)) < 1e-13
    assert rel_err(nngp.value, net.nngp(x)) < 1e-13


@pytest.mark.parametrize("name", ["erf", "gelu", "relu4"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_scanned_layers_equal_unrolled(name, parameterization, rng):
    # kernel_jets(scan=True) runs hidden layers 2..L as one lax.scan body (compile time); every
    # Taylor coefficient must equal the unrolled recursion to round-off.
    net = nt.MLP(4, name, W_std=1.2, b_std=0.3, parameterization=parameterization)
    x = rng.uniform(-1, 1, size=(5, 2))
    M = derivative_set(1, 1)
    q = jnp.sum(x * x, axis=1)
    args = (
        Jet.variable(x @ x.T, 0, M),
        Jet.variable(q[:, None], 1, M),
        Jet.variable(q[None, :], 2, M),
        2,
    )
    scanned = jax.jit(lambda: net.kernel_jets(*args, scan=True)[1].coeffs)()
    unrolled = net.kernel_jets(*args)[1].coeffs
    assert set(scanned) == set(unrolled)
    for m in unrolled:
        assert rel_err(scanned[m], unrolled[m]) < 1e-12, m


@pytest.mark.parametrize(
    "f, x",
    [
        (_jets.rsqrt, np.array([0.2, 1.0, 3.5])),
        (_jets.reciprocal, np.array([0.2, 1.0, -3.5])),
        (_jets.power(1.5), np.array([0.2, 1.0, 3.5])),
        (jnp.exp, np.array([-1.0, 0.0, 2.0])),
        (jnp.sinh, np.array([-1.0, 0.3, 2.0])),
        (jnp.cosh, np.array([-1.0, 0.3, 2.0])),
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
    # jit-compatible: the stax kernel_fn traces
    out = jax.jit(lambda a: net.kernel_fn(a, None, "ntk"))(points)
    np.testing.assert_allclose(np.asarray(out), np.asarray(net.ntk(points)), rtol=1e-14)
    act = net.act
    assert act.source, "every activation documents where its kernel comes from"
    assert act.max_operator_order is None or act.max_operator_order >= 0


def test_large_inputs_are_blocked_exactly(rng):
    # 300 points → 300² entries > 256²: MLP.ntk switches to padded 256 x 256 blocks.
    net = nt.MLP(2, "erf", W_std=1.3, b_std=0.2)
    x = rng.uniform(size=(300, 2))
    direct = np.asarray(jax.jit(lambda a: net.kernel_fn(a, None, "ntk"))(x))
    np.testing.assert_allclose(np.asarray(net.ntk(x)), direct, rtol=1e-14, atol=1e-15)
