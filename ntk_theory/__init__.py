"""ntk_theory: infinite-width NTKs of physics-informed networks.

Importing ntk_theory enables float64 in JAX (``jax_enable_x64``); see ``_precision``.
"""

from ._precision import enable_x64 as _enable_x64

_enable_x64()

from ._precision import Float64Error as Float64Error  # noqa: E402
from .activations import ACTIVATIONS as ACTIVATIONS  # noqa: E402
from .activations import Activation as Activation  # noqa: E402
from .activations import SmoothnessError as SmoothnessError  # noqa: E402
from .networks import MLP as MLP  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Activation",
    "Float64Error",
    "SmoothnessError",
]
