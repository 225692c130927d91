"""Float64 everywhere: enabling it, and refusing to run without it.

High-order derivatives of kernels and condition numbers of 1e12 are meaningless in float32,
so ntk_theory enables ``jax_enable_x64`` when it is imported (before any array is created) and
every public entry point calls :func:`require_x64`, which raises if somebody switched it off
afterwards. Inputs are converted with :func:`as_float64`, so a float32 array passed by a user is
promoted, never the other way round.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Float64Error", "as_float64", "enable_x64", "require_x64"]


class Float64Error(RuntimeError):
    """JAX is running in float32 mode, in which ntk_theory refuses to compute."""


def enable_x64() -> None:
    """Turn on ``jax_enable_x64`` (idempotent)."""
    jax.config.update("jax_enable_x64", True)


def require_x64() -> None:
    """Raise :class:`Float64Error` unless JAX computes in float64."""
    if not jax.config.jax_enable_x64 or jnp.zeros(()).dtype != jnp.float64:
        raise Float64Error(
            "JAX is in float32 mode (jax_enable_x64 is off), but ntk_theory computes in float64 "
            "only: high-order kernel derivatives and condition numbers near 1e12 are meaningless "
            "in float32. Re-enable it with `jax.config.update('jax_enable_x64', True)` before "
            "creating arrays (importing ntk_theory does this; something switched it off later), "
            "or set the environment variable JAX_ENABLE_X64=1."
        )


def as_float64(x, name: str = "x") -> jax.Array:
    """Return ``x`` as a float64 JAX array, raising on complex or non-numeric input."""
    require_x64()
    arr = x if isinstance(x, jax.Array) else np.asarray(x)
    if np.dtype(arr.dtype).kind not in "biuf":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {arr.dtype}.")
    return jnp.asarray(arr, dtype=jnp.float64)
