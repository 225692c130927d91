"""ntk_theory: infinite-width NTKs of physics-informed networks.

Importing ntk_theory enables float64 in JAX (``jax_enable_x64``); see ``_precision``.
"""

from ._precision import enable_x64 as _enable_x64

_enable_x64()

# ruff: noqa: E402
from ._precision import Float64Error as Float64Error
from .activations import ACTIVATIONS as ACTIVATIONS
from .activations import Activation as Activation
from .activations import SmoothnessError as SmoothnessError
from .constraints import OutputTransform as OutputTransform
from .domains import Quadrature as Quadrature
from .domains import box as box
from .domains import box_boundary as box_boundary
from .domains import interval as interval
from .domains import interval_boundary as interval_boundary
from .domains import sphere as sphere
from .embeddings import Embedding as Embedding
from .embeddings import FourierFeatures as FourierFeatures
from .embeddings import PeriodicEmbedding as PeriodicEmbedding
from .empirical import empirical_ntk as empirical_ntk
from .empirical import init_params as init_params
from .models import ModelError as ModelError
from .models import analytic_counterpart as analytic_counterpart
from .models import init_scales as init_scales
from .networks import MLP as MLP
from .operator_kernels import operator_kernel as operator_kernel
from .operator_kernels import operator_kernel_autodiff as operator_kernel_autodiff
from .operators import Operator as Operator
from .operators import OperatorError as OperatorError
from .operators import derivative as derivative
from .operators import identity as identity
from .operators import laplace_beltrami as laplace_beltrami
from .operators import laplacian as laplacian
from .operators import neumann as neumann
from .operators import robin as robin
from .pinn import PINNKernel as PINNKernel
from .pinn import PINNProblem as PINNProblem
from .pinn import pinn_kernel as pinn_kernel
from .prediction import Prediction as Prediction
from .prediction import predict as predict
from .problems import poisson_1d as poisson_1d
from .problems import poisson_2d as poisson_2d
from .problems import stokes_cavity as stokes_cavity
from .problems import wave_1d as wave_1d
from .spectra import DecayFit as DecayFit
from .spectra import ExtrapolatedEigenvalues as ExtrapolatedEigenvalues
from .spectra import Spectrum as Spectrum
from .spectra import compare_decay as compare_decay
from .spectra import fit_decay as fit_decay
from .spectra import richardson_eigenvalues as richardson_eigenvalues
from .spectra import spectrum as spectrum
from .spectra import trace_weights as trace_weights
from .spherical import SphereSpectrum as SphereSpectrum
from .spherical import sphere_spectrum as sphere_spectrum
from .sweeps import SweepFileError as SweepFileError
from .sweeps import SweepResult as SweepResult
from .sweeps import width_sweep as width_sweep
from .tracking import NTKTracker as NTKTracker
from .training import EnsembleRecord as EnsembleRecord
from .training import LossPrediction as LossPrediction
from .training import TrainingRecord as TrainingRecord
from .training import predicted_losses as predicted_losses
from .training import stable_learning_rate as stable_learning_rate
from .training import train_ensemble as train_ensemble
from .training import train_pinn as train_pinn

__version__ = "0.2.0"

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Activation",
    "DecayFit",
    "Embedding",
    "EnsembleRecord",
    "ExtrapolatedEigenvalues",
    "Float64Error",
    "FourierFeatures",
    "LossPrediction",
    "ModelError",
    "NTKTracker",
    "Operator",
    "OperatorError",
    "OutputTransform",
    "PINNKernel",
    "PINNProblem",
    "PeriodicEmbedding",
    "Prediction",
    "Quadrature",
    "SmoothnessError",
    "Spectrum",
    "SphereSpectrum",
    "SweepFileError",
    "SweepResult",
    "TrainingRecord",
    "analytic_counterpart",
    "box",
    "box_boundary",
    "compare_decay",
    "derivative",
    "empirical_ntk",
    "fit_decay",
    "identity",
    "init_params",
    "init_scales",
    "interval",
    "interval_boundary",
    "laplace_beltrami",
    "laplacian",
    "neumann",
    "operator_kernel",
    "operator_kernel_autodiff",
    "pinn_kernel",
    "poisson_1d",
    "poisson_2d",
    "predict",
    "predicted_losses",
    "richardson_eigenvalues",
    "robin",
    "spectrum",
    "sphere",
    "sphere_spectrum",
    "stable_learning_rate",
    "stokes_cavity",
    "trace_weights",
    "train_ensemble",
    "train_pinn",
    "wave_1d",
    "width_sweep",
]
