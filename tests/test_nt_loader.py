"""ntk_theory._nt: neural-tangents' stax on current JAX, without its package __init__."""

import importlib.util
import subprocess
import sys

import jax
import numpy as np
import pytest

from ntk_theory import _nt


def test_stax_is_loaded_without_tensorflow():
    # A fresh interpreter: importing ntk_theory must not import TensorFlow (DESIGN.md fact 1).
    code = (
        "import sys, ntk_theory; import ntk_theory._nt as n; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
        "assert 'tf2jax' not in sys.modules; "
        "assert 'neural_tangents.experimental' not in sys.modules; "
        "print(n.stax.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "neural_tangents.stax"


def test_environment_has_no_tensorflow():
    # pyproject's override keeps TensorFlow and tf2jax out of the environment (fact 2).
    assert importlib.util.find_spec("tensorflow") is None
    assert importlib.util.find_spec("tf2jax") is None


def test_stax_erf_matches_arcsin_closed_form(rng):
    # One Dense + Erf layer: NNGP = (2/π) arcsin(2Σ12/√((1+2Σ11)(1+2Σ22))) (Williams 1997),
    # Σ = σ_w²⟨x,x'⟩/d + σ_b² -- an independent closed form, to round-off.
    x = rng.normal(size=(5, 3))
    _, _, kfn = _nt.stax.serial(_nt.stax.Dense(1, W_std=1.3, b_std=0.2), _nt.stax.Erf())
    got = np.asarray(kfn(x, None, "nngp"))
    S = 1.69 * x @ x.T / 3 + 0.04
    d = np.diag(S)
    want = 2 / np.pi * np.arcsin(2 * S / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_stax_relu_matches_arccos_closed_form(rng):
    # Dense + Relu NNGP: √(Σ11Σ22)(sin θ + (π-θ) cos θ)/(2π) (Cho & Saul 2009, J_1).
    x = rng.normal(size=(5, 3))
    _, _, kfn = _nt.stax.serial(_nt.stax.Dense(1, W_std=1.0, b_std=0.5), _nt.stax.Relu())
    got = np.asarray(kfn(x, None, "nngp"))
    S = x @ x.T / 3 + 0.25
    nrm = np.sqrt(np.outer(np.diag(S), np.diag(S)))
    th = np.arccos(np.clip(S / nrm, -1, 1))
    want = nrm * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_missing_package_gives_clear_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "neural_tangents.stax", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(_nt.NeuralTangentsImportError, match="uv sync"):
        _nt.load_stax()


def test_kernels_are_float64(rng):
    x = rng.normal(size=(4, 2))
    _, _, kfn = _nt.stax.serial(_nt.stax.Dense(1), _nt.stax.Erf(), _nt.stax.Dense(1))
    assert kfn(x, None, "ntk").dtype == jax.numpy.float64
