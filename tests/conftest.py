"""Strict numerics for every test: float64 on, fixed PRNG, no silent rank promotion."""

import jax
import numpy as np
import pytest

import ntk_theory  # noqa: F401  (enables float64)

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def rng():
    """A seeded NumPy generator (tests must not depend on global random state)."""
    return np.random.default_rng(20260101)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


def rel_err(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
