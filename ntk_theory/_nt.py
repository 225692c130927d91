"""Load ``neural_tangents.stax`` on current JAX without running the package ``__init__``.

neural-tangents 0.6.5 (the last release) ships a package ``__init__`` that imports
``neural_tangents.experimental`` (TensorFlow, tf2jax) and ``neural_tangents._src.empirical``,
which needs ``jax.core.Jaxpr`` -- removed in jax 0.6. Its ``stax`` modules, on the other hand,
only use public JAX API and work on current JAX (DESIGN.md, fact 1).

We therefore register a bare package module named ``neural_tangents`` whose ``__path__`` points
at the installed package, and import ``neural_tangents.stax`` through it: Python finds the
submodules on that path and never executes the original ``__init__``. This is the only place
in ntk_theory that knows about this; everything else does ``from ._nt import stax``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__all__ = ["load_stax", "stax"]

_EXPECTED_VERSION = "0.6.5"


class NeuralTangentsImportError(ImportError):
    """neural-tangents is missing or its layout is not the one we know how to load."""


def load_stax() -> types.ModuleType:
    """Return ``neural_tangents.stax`` imported without the package ``__init__``.

    Raises:
        NeuralTangentsImportError: neural-tangents is not installed, or a future release moved
            ``stax`` so that this loader no longer applies.
    """
    existing = sys.modules.get("neural_tangents.stax")
    if existing is not None:
        return existing

    spec = importlib.util.find_spec("neural_tangents")
    if spec is None or not spec.submodule_search_locations:
        raise NeuralTangentsImportError(
            "neural-tangents is not installed. ntk_theory needs neural-tangents==0.6.5 for its "
            "closed-form kernels; run `uv sync` in the project root (TensorFlow is kept out by "
            "the override in pyproject.toml)."
        )

    if "neural_tangents" not in sys.modules:
        package = types.ModuleType("neural_tangents")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__version__ = _EXPECTED_VERSION
        package.__doc__ = (
            "Bare package registered by ntk_theory._nt (the real __init__ is skipped)."
        )
        sys.modules["neural_tangents"] = package

    try:
        module = importlib.import_module("neural_tangents.stax")
    except ImportError as err:  # pragma: no cover - only with an unknown release
        raise NeuralTangentsImportError(
            f"Could not import neural_tangents.stax from {spec.submodule_search_locations}: "
            f"{err}. ntk_theory is tested with neural-tangents=={_EXPECTED_VERSION}; a different "
            "release may have changed its layout. Pin neural-tangents==0.6.5."
        ) from err
    for name in ("serial", "Dense", "Elementwise", "Erf", "Sin", "Gelu", "Relu"):
        if not hasattr(module, name):  # pragma: no cover - only with an unknown release
            raise NeuralTangentsImportError(
                f"neural_tangents.stax has no `{name}`; ntk_theory needs neural-tangents==0.6.5."
            )
    return module


stax = load_stax()
