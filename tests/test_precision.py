"""Float64 everywhere: float32 never leaks into a result; float32 mode is refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntk_theory as nt
from ntk_theory._precision import as_float64, require_x64
from ntk_theory.operator_kernels import operator_kernel
from ntk_theory.operators import laplacian


def test_import_enables_x64():
    assert jax.config.jax_enable_x64
    assert jnp.zeros(()).dtype == jnp.float64


def test_float32_inputs_give_float64_results():
    x32 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
    net = nt.MLP(2, "erf")
    for K in (net.ntk(x32), net.nngp(x32), operator_kernel(net, laplacian(("x", "y")), x32)):
        assert K.dtype == jnp.float64
    # and the values are those of the (exactly representable) float32 points in float64
    np.testing.assert_array_equal(
        np.asarray(net.ntk(x32)), np.asarray(net.ntk(x32.astype(np.float64)))
    )


def test_float32_mode_is_refused():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(nt.Float64Error, match="jax_enable_x64"):
            require_x64()
        with pytest.raises(nt.Float64Error):
            nt.MLP(1, "erf").ntk(np.ones((2, 1)))
    finally:
        jax.config.update("jax_enable_x64", True)
    require_x64()


def test_non_numeric_input_rejected():
    with pytest.raises(TypeError, match="real numeric"):
        as_float64(np.array([1 + 2j]))
