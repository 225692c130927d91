"""Infinite-width predictions: the function a PINN converges to, with its uncertainty.

The linearized network trained on the PINN loss ``L = ½ eᵀ Λ e`` (:mod:`ntk_theory.pinn`)
moves its stacked errors by ``de/dt = -K Λ e`` and its output at any point by
``du_t(x*)/dt = -Θ_{*X} Λ e(t)``, where ``Θ_{*X}`` is the cross kernel between ``u`` at ``x*``
(or ``T* u``, any operator) and the loss pieces' operators at their points. Integrated,

.. math::
    u_t(x^*) = u_0(x^*) - Θ_{*X}\\, M_t\\, e(0), \\qquad
    M_t = Λ^{1/2} V\\, \\mathrm{diag}(φ_t(λ))\\, V^⊤ Λ^{1/2},

with ``Λ^{1/2} K Λ^{1/2} = V diag(λ) Vᵀ`` and, for ``t`` steps of gradient descent with step ``η``
or for gradient flow over the time ``η t``,

.. math::
    φ_t^{GD}(λ) = \\frac{1 - (1 - ηλ)^t}{λ}, \\qquad φ_t^{GF}(λ) = \\frac{1 - e^{-ηλt}}{λ},
    \\qquad φ_∞(λ) = \\frac{1}{λ}

(``M_t = K⁻¹(I - e^{-KΛηt})`` when ``K`` is invertible; nothing is inverted here). Over random
initializations ``u_0`` is the network's Gaussian process with the NNGP ``𝒦`` (operator blocks
alike), so ``u_t(x*)`` is Gaussian with

.. math::
    μ_t = Θ_{*X} M_t\\, y, \\qquad
    Σ_t = 𝒦_{**} - Θ_{*X} M_t 𝒦_{X*} - 𝒦_{*X} M_t Θ_{X*} + Θ_{*X} M_t 𝒦_{XX} M_t Θ_{X*}

(``y``: the stacked targets ``f_e``, ``g_k``) -- Lee et al. 2019 (arXiv 1902.06720), eq. (16),
with the plain kernels replaced by operator blocks.

Eigenvalue floor: modes with ``λ ≤ rcond · λ_max`` get ``φ = 0``. An exact null mode ``v``
(``K Λ^{1/2} v = 0``) has ``Θ_{*X} Λ^{1/2} v = 0`` as well (both are ``J`` times
``J_opᵀ Λ^{1/2} v = 0``), so it contributes nothing at any ``t``; below the floor the computed
eigenpairs are round-off. The default ``rcond = N ε`` is numpy's ``pinv``/``lstsq`` convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .networks import MLP, check_points
from .operator_kernels import operator_kernel
from .operators import Operator, identity
from .pinn import PINNProblem, block_matrix

__all__ = ["Prediction", "predict"]

METHODS = ("gd", "flow")


@dataclass(frozen=True)
class Prediction:
    """The infinite-width ensemble's prediction at test points (see :func:`predict`).

    Attributes:
        steps: ``(m,)`` step numbers (gradient flow: time in units of ``η``).
        mean: ``(m, n)`` mean ``μ_t(x*)`` over initializations.
        std: ``(m, n)`` standard deviation of ``u_t(x*)``.
        mean_inf, std_inf: ``(n,)`` the same at ``t → ∞``.
        cov: ``(m, n, n)`` covariances, or ``None`` (``full_cov=False``).
        cov_inf: ``(n, n)`` or ``None``.
        x_test: ``(n, d)`` test points.
        exact: ``(n,)`` the problem's exact ``T* u`` at the test points when known (``T*`` the
            identity), else ``None``.
        learning_rate: ``η``.
        method: ``"gd"`` or ``"flow"``.
        weight_change: ``(m,)`` ``‖θ_t - θ_0‖`` of the linearized network driven by the
            targets alone (``u_0 = 0``): ``(Σ_k c_k² φ_t(λ_k)² λ_k)^{1/2}``, ``c = Vᵀ Λ^{1/2} y``.
            The prediction needs a network that stays linear over this distance; in the NTK
            parameterization the kernel's relative drift grows like ``weight_change/√width``
            (Lee et al. 2019, Thm 2.1), so compare it with ``√width``.
        weight_change_inf: the same at ``t → ∞``.
        eigenvalues: ``(N,)`` eigenvalues of ``Λ^{1/2} K Λ^{1/2}`` (ascending, clipped at 0).
        floor: the eigenvalue floor ``rcond · λ_max``; ``n_floored`` modes are below it.
    """

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mean_inf: np.ndarray
    std_inf: np.ndarray
    cov: np.ndarray | None
    cov_inf: np.ndarray | None
    x_test: np.ndarray
    exact: np.ndarray | None
    learning_rate: float
    method: str
    weight_change: np.ndarray
    weight_change_inf: float
    eigenvalues: np.ndarray
    floor: float
    n_floored: int

    def l2_error(self) -> np.ndarray:
        """``(m,)`` relative L2 error ``‖μ_t - u‖ / ‖u‖`` of the mean at the test points."""
        return np.array([self._rel(m) for m in self.mean])

    @property
    def l2_error_inf(self) -> float:
        """Relative L2 error of the mean at ``t → ∞``."""
        return self._rel(self.mean_inf)

    def _rel(self, mean: np.ndarray) -> float:
        if self.exact is None:
            raise ValueError("the problem has no exact solution (PINNProblem.exact is None).")
        return float(np.linalg.norm(mean - self.exact) / np.linalg.norm(self.exact))


def _stacked(net: MLP, T: Operator, x: np.ndarray, pieces, get: str) -> np.ndarray:
    """``[T_x P_{x'} k(x, x_P)]`` over the pieces ``(P, x_P)``: shape ``(n, N)``."""
    return np.concatenate(
        [np.asarray(operator_kernel(net, T, x, P, xp, get=get)) for P, xp in pieces], axis=1
    )


def _diagonal(net: MLP, T: Operator, x: np.ndarray, get: str, block: int = 128) -> np.ndarray:
    """``T_x T_{x'} k(x_i, x_i)`` for every point, from diagonal blocks (one compiled shape)."""
    n = x.shape[0]
    out = np.empty(n)
    for start in range(0, n, block):
        idx = np.minimum(np.arange(start, start + block), n - 1)
        blk = np.asarray(operator_kernel(net, T, x[idx], get=get))
        stop = min(start + block, n)
        out[start:stop] = np.diag(blk)[: stop - start]
    return out


def _check_steps(steps, method: str) -> np.ndarray:
    arr = np.asarray([] if steps is None else steps, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"steps must be a 1-D sequence of step numbers, got shape {arr.shape}.")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError("steps must be finite; t → ∞ is always returned (mean_inf, std_inf).")
    if arr.size and arr.min() < 0:
        raise ValueError(f"steps must be ≥ 0, got {arr.min():g}.")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        raise ValueError("steps must be strictly increasing (sort them and drop repeats).")
    if method == "gd" and not np.all(arr == np.round(arr)):
        raise ValueError(
            "gradient descent takes whole step numbers; for continuous times use method='flow'."
        )
    return arr


def _phi(lam: np.ndarray, live: np.ndarray, eta: float, t: float, method: str) -> np.ndarray:
    """``φ_t(λ)`` (module docstring), 0 on floored modes; ``t = inf`` gives ``1/λ``."""
    out = np.zeros_like(lam)
    ll = lam[live]
    if math.isinf(t):
        out[live] = 1.0 / ll
    elif method == "gd":
        # 1 - (1 - ηλ)^t: through log1p/expm1 where ηλ is small (no cancellation), directly
        # where 1 - ηλ is small or negative (ηλ ∈ (1, 2) oscillates and decays)
        h = eta * ll
        small = h <= 0.5
        decay = np.where(small, 0.0, np.power(1.0 - np.where(small, 0.0, h), t))
        gain = np.where(small, -np.expm1(t * np.log1p(-np.where(small, h, 0.0))), 1.0 - decay)
        out[live] = gain / ll
    else:
        out[live] = -np.expm1(-eta * ll * t) / ll
    return out


def predict(
    net: MLP,
    problem: PINNProblem,
    x_test,
    steps: Sequence[float] | None = None,
    *,
    learning_rate: float | None = None,
    method: str = "gd",
    T_test: Operator | None = None,
    full_cov: bool = False,
    rcond: float | None = None,
) -> Prediction:
    """Mean and uncertainty of the infinitely wide network trained on ``problem``.

    .. math::
        μ_t = Θ_{*X} M_t y, \\quad M_t = Λ^{1/2} V φ_t(λ) V^⊤ Λ^{1/2}

    and the covariance of the module docstring (Lee et al. 2019, eq. (16), with operator blocks).

    Args:
        net: the network (its infinite-width NTK and NNGP).
        problem: the PINN problem (pieces, targets, loss weights).
        x_test: ``(n, d)`` test points.
        steps: step numbers at which to predict (strictly increasing; may be empty: ``t → ∞``
            is always returned). Under ``method="flow"`` they are times in units of ``η``.
        learning_rate: ``η``; default :func:`~ntk_theory.training.stable_learning_rate`
            (``1/λ_max``, as :func:`~ntk_theory.train_pinn` uses). Gradient descent needs
            ``η < 2/λ_max``.
        method: ``"gd"`` (``t`` steps of gradient descent: ``(I - ηKΛ)^t``) or ``"flow"``
            (gradient flow for the time ``η t``: ``exp(-ηKΛt)``).
        T_test: the quantity predicted at ``x_test`` (default ``u`` itself; e.g. the residual
            operator to predict ``T u``).
        full_cov: also return the ``(n, n)`` covariance matrices (memory ``8 n² (m+1)`` bytes).
        rcond: eigenvalue floor relative to ``λ_max`` (default ``N ε``).

    Returns:
        :class:`Prediction`.

    Raises:
        ValueError: test points of another dimension, unsorted or negative steps, a learning
            rate at or above the stability limit ``2/λ_max``.

    Example:
        >>> problem = poisson_1d(16)
        >>> p = predict(MLP(2, "tanh"), problem, np.linspace(0, 1, 50)[:, None], [10, 100])
        >>> p.mean.shape, p.std.shape, p.l2_error_inf

    References:
        Lee et al. 2019 (arXiv 1902.06720), eq. (16); Wang, Yu, Perdikaris (arXiv 2007.14527),
        eq. (4.9).
    """
    if not isinstance(problem, PINNProblem):
        raise TypeError(f"problem must be a PINNProblem, got {type(problem).__name__}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    x_test, _ = check_points(x_test, None, "x_test")
    x_test = np.asarray(x_test)
    d = problem.x_residual.shape[1]
    if x_test.shape[1] != d:
        raise ValueError(
            f"x_test has points of dimension {x_test.shape[1]} but the problem's points have "
            f"dimension {d}; pass an (n, {d}) array."
        )
    coords = problem.residuals[0].coords
    T_star = identity(coords) if T_test is None else T_test
    if not isinstance(T_star, Operator):
        raise TypeError(f"T_test must be an Operator, got {type(T_star).__name__}.")
    times = _check_steps(steps, method)

    pieces = [(op, np.asarray(x)) for op, x, _ in problem.pieces]
    y = np.concatenate([np.asarray(t) for t in problem.targets])
    ot = net.output_transform
    if ot is not None:  # u = g + D N: N learns the targets minus what the lift g gives
        y = y - np.concatenate([ot.lift_values(op, x) for op, x in pieces])
    kernel = problem.kernel(net)
    K = np.asarray(kernel.K)
    s = np.sqrt(np.asarray(problem.lam))
    S = s[:, None] * K * s[None, :]
    lam, V = scipy.linalg.eigh(0.5 * (S + S.T))
    lam = np.clip(lam, 0.0, None)  # round-off negatives of a PSD matrix
    lam_max = float(lam[-1])
    if not lam_max > 0:
        raise ValueError("the PINN kernel is zero: nothing is learned.")
    eta = float(1.0 / lam_max) if learning_rate is None else float(learning_rate)
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate!r}.")
    if method == "gd" and eta * lam_max >= 2.0:
        raise ValueError(
            f"learning_rate {eta:.4g} is at or above the stability limit 2/λ_max = "
            f"{2 / lam_max:.4g}: gradient descent on the linearized network diverges. Use a "
            "smaller learning_rate (the default is 1/λ_max)."
        )
    n_train = K.shape[0]
    rel = n_train * np.finfo(float).eps if rcond is None else float(rcond)
    if not (0 <= rel < 1):
        raise ValueError(f"rcond must be in [0, 1), got {rcond!r}.")
    floor = rel * lam_max
    live = lam > floor

    G = s[:, None] * V  # Λ^{1/2} V
    P = _stacked(net, T_star, x_test, pieces, "ntk") @ G  # Θ_{*X} Λ^{1/2} V
    R = _stacked(net, T_star, x_test, pieces, "nngp") @ G  # 𝒦_{*X} Λ^{1/2} V
    kxx = np.asarray(block_matrix(net, pieces, "nngp"))
    C = G.T @ kxx @ G
    c = G.T @ y
    if full_cov:
        k_star = np.asarray(operator_kernel(net, T_star, x_test, get="nngp"))
        k_diag = np.diag(k_star).copy()
    else:
        k_star, k_diag = None, _diagonal(net, T_star, x_test, "nngp")

    def at(t: float):
        phi = _phi(lam, live, eta, t, method)
        A = P * phi[None, :]  # Θ_{*X} M_t = A Gᵀ
        mean = A @ c
        AC = A @ C
        var = k_diag - 2.0 * np.sum(A * R, axis=1) + np.sum(AC * A, axis=1)
        # a variance is ≥ 0; round-off of the three terms is ~ε times the largest of them
        scale = k_diag + 2.0 * np.abs(np.sum(A * R, axis=1)) + np.abs(np.sum(AC * A, axis=1))
        if np.any(var < -1e-8 * scale):
            raise FloatingPointError(
                "negative predicted variance beyond round-off; raise rcond (the kernel is "
                "ill-conditioned below the floor)."
            )
        cov = None
        if full_cov:
            cov = k_star - A @ R.T - R @ A.T + AC @ A.T
            cov = 0.5 * (cov + cov.T)
        moved = float(np.sqrt(np.sum(c**2 * phi**2 * lam)))
        return mean, np.sqrt(np.maximum(var, 0.0)), cov, moved

    results = [at(float(t)) for t in times]
    mean_inf, std_inf, cov_inf, moved_inf = at(math.inf)
    if ot is not None:
        shift = ot.lift_values(T_star, x_test)
        results = [(r[0] + shift, *r[1:]) for r in results]
        mean_inf = mean_inf + shift
    n = x_test.shape[0]
    exact = None
    if problem.exact is not None and T_test is None:
        exact = np.asarray(problem.exact(x_test), dtype=float).reshape(n)
    return Prediction(
        steps=times,
        mean=np.array([r[0] for r in results]).reshape(len(times), n),
        std=np.array([r[1] for r in results]).reshape(len(times), n),
        mean_inf=mean_inf,
        std_inf=std_inf,
        cov=np.array([r[2] for r in results]).reshape(len(times), n, n) if full_cov else None,
        cov_inf=cov_inf,
        x_test=x_test,
        exact=exact,
        learning_rate=eta,
        method=method,
        weight_change=np.array([r[3] for r in results]),
        weight_change_inf=moved_inf,
        eigenvalues=lam,
        floor=floor,
        n_floored=int(np.sum(~live)),
    )
