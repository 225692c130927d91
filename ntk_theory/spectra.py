"""Spectra of kernels as integral operators, decay-rate fits and training diagnostics.

For a kernel ``K`` and a measure ``μ`` with quadrature ``(x_i, w_i)``, the Nyström method
approximates the eigenvalues of ``(T_K f)(x) = ∫ K(x, x') f(x') dμ(x')`` by those of the
symmetric matrix ``W^{1/2} K W^{1/2}`` (Nyström 1930; Baker 1977, §3.4). Unlike the raw matrix
eigenvalues, they converge as ``N`` grows instead of growing with ``N``. Eigenfunctions at the
nodes are ``φ_i(x_j) = v_{ji} / √w_j``, orthonormal in ``L²(μ)``.

Decay: ``λ_i ≈ C i^{-α}``, ordinary least squares on ``(log i, log λ_i)`` over an index window,
with the slope's standard error. Gan, Li, Lin, Shi (arXiv 2503.11029) ask whether a
differential operator in the loss changes ``α``; :func:`compare_decay` answers it for a list of
kernels on one domain. Training diagnostics follow Wang, Yu, Perdikaris (arXiv 2007.14527):
mode ``i`` of the error decays like ``exp(-η λ_i t)`` under gradient descent with rate ``η``
(their eq. (4.9)), and their Algorithm 1 sets loss weights from block traces.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

__all__ = [
    "DecayFit",
    "ExtrapolatedEigenvalues",
    "NotPSDWarning",
    "Spectrum",
    "compare_decay",
    "fit_decay",
    "format_table",
    "richardson_eigenvalues",
    "spectrum",
    "trace_weights",
]


@dataclass(frozen=True)
class DecayFit:
    """``λ_i ≈ C i^{-α}`` fitted on indices ``window = (first, last)`` (1-based, inclusive).

    Attributes:
        alpha: decay exponent ``α``.
        stderr: its standard error (OLS on log–log).
        log_c: intercept ``log C``.
        window: ``(first, last)`` indices used.
        r2: coefficient of determination of the log–log fit.
    """

    alpha: float
    stderr: float
    log_c: float
    window: tuple[int, int]
    r2: float

    def __str__(self) -> str:
        return f"α = {self.alpha:.3f} ± {self.stderr:.3f} (i = {self.window[0]}..{self.window[1]})"


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of a kernel (as an integral operator when weights are given).

    Attributes:
        eigenvalues: ``(n,)`` descending, not clipped (negative round-off kept).
        eigenvectors: ``(n, n)`` eigenfunctions at the nodes (columns), or ``None``.
        weights: the quadrature weights used (``None``: plain matrix eigenvalues).
        n_negative: number of negative eigenvalues; ``most_negative``: the smallest one.
        floor: numerical floor: ``max(|most negative|, n ε λ_max)``; eigenvalues below it are
            round-off, not spectrum.
        numerical_rank: number of eigenvalues above ``floor``.
        decay: the decay fit (``None`` if fewer than 5 eigenvalues lie above the floor).
        condition_number: ``λ_max / λ_min`` (``inf`` if ``λ_min ≤ 0``).
        condition_number_window: ``λ_first / λ_last`` over the fit window.
        effective_rank: ``(Σλ)² / Σλ²`` over positive eigenvalues.
        entropy_rank: ``exp(-Σ p_i log p_i)`` with ``p = λ / Σλ`` over positive eigenvalues.
        learning_rate: ``η`` if given; then ``times = 1/(η λ_i)`` (``inf`` for ``λ_i ≤ floor``).
        slow_modes: number of modes with ``1/(η λ_i) > time_budget`` (if a budget is given).
        is_psd: ``False`` if some eigenvalue is negative beyond round-off (``n ε λ_max``): not a
            valid kernel matrix (a :class:`NotPSDWarning` is issued too).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    weights: np.ndarray | None
    n_negative: int
    most_negative: float
    floor: float
    numerical_rank: int
    decay: DecayFit | None
    condition_number: float
    condition_number_window: float
    effective_rank: float
    entropy_rank: float
    learning_rate: float | None = None
    times: np.ndarray | None = field(default=None, repr=False)
    time_budget: float | None = None
    slow_modes: int | None = None
    is_psd: bool = True

    def summary(self) -> str:
        """A few lines a person can read."""
        ev = self.eigenvalues
        lines = [
            f"n = {ev.size}, λ_max = {ev[0]:.4e}, λ_min = {ev[-1]:.4e}",
            f"negative eigenvalues: {self.n_negative} (most negative {self.most_negative:.2e}); "
            f"numerical floor {self.floor:.2e}; numerical rank {self.numerical_rank}",
            f"decay: {self.decay}" if self.decay else "decay: not enough eigenvalues above floor",
            f"condition number {self.condition_number:.3e} (window {self.condition_number_window:.3e})",
            f"effective rank {self.effective_rank:.2f} (entropy {self.entropy_rank:.2f})",
        ]
        if not self.is_psd:
            lines.insert(
                1,
                f"NOT positive semi-definite: most negative eigenvalue {self.most_negative:.3e} is "
                "beyond round-off; this is not a valid kernel matrix.",
            )
        if self.slow_modes is not None:
            lines.append(
                f"modes slower than t = {self.time_budget:g} at η = {self.learning_rate:g}: "
                f"{self.slow_modes}"
            )
        return "\n".join(lines)


class NotPSDWarning(UserWarning):
    """A kernel matrix has negative eigenvalues beyond round-off."""


def _as_symmetric(K, name="K") -> np.ndarray:
    if np.iscomplexobj(np.asarray(K)):
        raise ValueError(
            f"{name} is complex; spectrum() needs a real symmetric kernel matrix (for a complex "
            "Hermitian matrix use numpy.linalg.eigvalsh)."
        )
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {K.shape}.")
    if not np.all(np.isfinite(K)):
        bad = int(np.sum(~np.isfinite(K)))
        raise ValueError(
            f"{name} has {bad} NaN/inf entries; check the kernel (an operator beyond the "
            "activation's smoothness, or non-finite points)."
        )
    scale = np.max(np.abs(K))
    asym = np.max(np.abs(K - K.T))
    if asym > 1e-10 * max(scale, np.finfo(float).tiny):
        raise ValueError(
            f"{name} is not symmetric (max |K - Kᵀ| = {asym:.2e}, max |K| = {scale:.2e}); a "
            "spectrum needs a symmetric kernel: use the same operator and points on both sides "
            "(cross blocks T_x S_x' have no eigen-decomposition of their own)."
        )
    return 0.5 * (K + K.T)


def _check_weights(weights, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) (one per point), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("Quadrature weights must be finite and strictly positive.")
    return w


def fit_decay(eigenvalues, window: tuple[int, int] | None = None, floor: float = 0.0) -> DecayFit:
    """Fit ``λ_i ≈ C i^{-α}`` by least squares on ``(log i, log λ_i)``.

    Args:
        eigenvalues: descending eigenvalues.
        window: ``(first, last)`` 1-based inclusive indices; default: from ``i = 3`` (skips the
            first few, which follow no power law) to the last index whose eigenvalue exceeds
            ``100 × floor`` and at most ``n // 2`` (the Nyström tail is the least accurate).
        floor: numerical floor (see :class:`Spectrum`).

    Returns:
        :class:`DecayFit` with the slope's standard error
        ``sqrt(s² / Σ (log i - mean)²)``, ``s²`` the residual variance.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    n = lam.size
    if window is None:
        above = np.nonzero(lam > max(100.0 * floor, np.finfo(float).tiny))[0]
        last = min(int(above[-1]) + 1 if above.size else 0, max(n // 2, 5))
        first = 3 if last >= 12 else 1
        window = (first, last)
    first, last = (int(window[0]), int(window[1]))
    if not 1 <= first < last <= n or last - first + 1 < 5:
        raise ValueError(
            f"Decay window {window} is outside the spectrum (1..{n}) or has fewer than 5 "
            "eigenvalues; pass window=(first, last) with 1 ≤ first, last ≤ n, last - first ≥ 4."
        )
    vals = lam[first - 1 : last]
    if np.any(vals <= 0):
        raise ValueError(
            f"Decay window {window} contains non-positive eigenvalues (round-off); choose a "
            "window above the numerical floor."
        )
    x = np.log(np.arange(first, last + 1, dtype=float))
    y = np.log(vals)
    xm = x - x.mean()
    slope = float(np.dot(xm, y - y.mean()) / np.dot(xm, xm))
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    dof = max(x.size - 2, 1)
    stderr = float(math.sqrt(np.dot(resid, resid) / dof / np.dot(xm, xm)))
    ss_tot = float(np.dot(y - y.mean(), y - y.mean()))
    r2 = 1.0 - float(np.dot(resid, resid)) / ss_tot if ss_tot > 0 else 1.0
    return DecayFit(-slope, stderr, intercept, (first, last), r2)


def spectrum(
    K,
    weights=None,
    *,
    window: tuple[int, int] | None = None,
    eigenvectors: bool = False,
    learning_rate: float | None = None,
    time_budget: float | None = None,
) -> Spectrum:
    """Eigenvalues (descending) of a symmetric kernel, as an integral operator if weighted.

    .. math::
        λ_i = \\operatorname{eig}_i\\big(W^{1/2} K W^{1/2}\\big), \\qquad W = \\operatorname{diag}(w)

    Args:
        K: ``(n, n)`` symmetric kernel matrix.
        weights: ``(n,)`` quadrature weights (see :mod:`ntk_theory.domains`); ``None`` gives
            plain matrix eigenvalues.
        window: decay-fit window (1-based inclusive); default automatic (see :func:`fit_decay`).
        eigenvectors: also return eigenfunctions at the nodes (``L²(μ)``-orthonormal).
        learning_rate: ``η``; gives convergence times ``1/(η λ_i)`` per mode.
        time_budget: with ``learning_rate``, count the modes slower than this time.

    Returns:
        :class:`Spectrum`.

    Raises:
        ValueError: non-square, non-symmetric or non-finite ``K``; weights of the wrong length
            or sign; a window outside the spectrum.

    Example:
        >>> q = interval(0, 1, 200)
        >>> s = spectrum(net.ntk(q.points), q.weights)
        >>> s.eigenvalues[:5], s.decay.alpha, s.decay.stderr
    """
    K = _as_symmetric(K)
    n = K.shape[0]
    if weights is not None:
        w = _check_weights(weights, n)
        sw = np.sqrt(w)
        M = sw[:, None] * K * sw[None, :]
    else:
        w, M = None, K
    if eigenvectors:
        lam, vec = scipy.linalg.eigh(M)
        lam, vec = lam[::-1], vec[:, ::-1]
        if w is not None:
            vec = vec / np.sqrt(w)[:, None]
    else:
        lam = scipy.linalg.eigh(M, eigvals_only=True)[::-1]
        vec = None
    lam = np.ascontiguousarray(lam)
    lam_max = float(lam[0])
    neg = lam[lam < 0]
    most_negative = float(neg.min()) if neg.size else 0.0
    roundoff = n * np.finfo(float).eps * abs(lam_max)
    floor = max(-most_negative, roundoff)
    numerical_rank = int(np.sum(lam > floor))
    is_psd = bool(most_negative >= -10 * roundoff) and lam_max >= 0
    if not is_psd:
        warnings.warn(
            f"The matrix is not positive semi-definite: its most negative eigenvalue "
            f"{most_negative:.3e} is beyond round-off ({roundoff:.1e} = n ε λ_max). A kernel "
            "matrix must be PSD; check the kernel or the weights.",
            NotPSDWarning,
            stacklevel=2,
        )
    try:
        decay = fit_decay(lam, window, floor)
    except ValueError:
        if window is not None:
            raise
        decay = None
    cond = lam_max / lam[-1] if lam[-1] > 0 else math.inf
    cond_window = float(lam[decay.window[0] - 1] / lam[decay.window[1] - 1]) if decay else math.nan
    pos = lam[lam > 0]
    eff = float(pos.sum() ** 2 / np.dot(pos, pos)) if pos.size else 0.0
    p = pos / pos.sum() if pos.size else pos
    entropy = float(math.exp(-np.sum(p * np.log(p)))) if pos.size else 0.0
    times = slow = None
    if learning_rate is not None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
        with np.errstate(divide="ignore"):
            times = np.where(lam > floor, 1.0 / (learning_rate * np.where(lam > 0, lam, 1)), np.inf)
        if time_budget is not None:
            slow = int(np.sum(times > time_budget))
    elif time_budget is not None:
        raise ValueError("time_budget needs a learning_rate (convergence time is 1/(η λ)).")
    return Spectrum(
        lam,
        vec,
        w,
        int(neg.size),
        most_negative,
        float(floor),
        numerical_rank,
        decay,
        float(cond),
        cond_window,
        eff,
        entropy,
        learning_rate,
        times,
        time_budget,
        slow,
        is_psd,
    )


def trace_weights(pinn) -> dict[str, float]:
    """Wang–Yu–Perdikaris trace weights (arXiv 2007.14527, Algorithm 1).

    .. math::
        λ_k = \\frac{\\operatorname{Tr} K}{\\operatorname{Tr} K_{kk}}

    for each piece ``k`` (residual and every boundary piece) of a
    :class:`~ntk_theory.pinn.PINNKernel`. Returns ``{label: weight}``.
    """
    total = float(np.trace(np.asarray(pinn.K)))
    out = {}
    for k, label in enumerate(pinn.labels):
        block = np.asarray(pinn.piece(k, k))
        tr = float(np.trace(block))
        if not tr > 0:
            raise ValueError(f"Block {label!r} has non-positive trace {tr}; cannot weight it.")
        out[label] = total / tr
    return out


def compare_decay(
    kernels: Sequence[tuple[str, object]],
    weights=None,
    window: tuple[int, int] | None = None,
) -> list[dict]:
    """Decay exponents of several kernels on one domain: does an operator change the rate?

    Args:
        kernels: ``[(label, K), ...]`` with ``K`` of shape ``(n, n)`` on the same points.
        weights: quadrature weights of the points (shared).
        window: a common fit window (default: each kernel's automatic window).

    Returns:
        One dict per kernel: ``label``, ``alpha``, ``stderr``, ``window``, ``lambda_max``,
        ``numerical_rank``, ``effective_rank``. :func:`format_table` prints it.
    """
    rows = []
    for label, K in kernels:
        s = spectrum(K, weights, window=window)
        rows.append(
            {
                "label": label,
                "alpha": s.decay.alpha if s.decay else math.nan,
                "stderr": s.decay.stderr if s.decay else math.nan,
                "window": s.decay.window if s.decay else None,
                "lambda_max": float(s.eigenvalues[0]),
                "numerical_rank": s.numerical_rank,
                "effective_rank": s.effective_rank,
            }
        )
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text table of :func:`compare_decay` rows."""
    head = f"{'kernel':<28} {'alpha':>8} {'± se':>7} {'window':>11} {'λ_max':>11} {'rank':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        win = f"{r['window'][0]}..{r['window'][1]}" if r["window"] else "-"
        lines.append(
            f"{r['label']:<28} {r['alpha']:>8.3f} {r['stderr']:>7.3f} {win:>11} "
            f"{r['lambda_max']:>11.4e} {r['numerical_rank']:>5d}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class ExtrapolatedEigenvalues:
    """Richardson-extrapolated Nyström eigenvalues (see :func:`richardson_eigenvalues`).

    Attributes:
        eigenvalues: ``(count,)`` extrapolated eigenvalues.
        coarse, fine: ``(count,)`` Nyström eigenvalues with ``n`` and ``2n`` nodes (per dim).
        error: ``|fine - extrapolated|``, an estimate of the error of ``fine`` (the
            extrapolated values are more accurate still).
        rate: the assumed convergence order ``p`` (error ``∝ n^{-p}``).
    """

    eigenvalues: np.ndarray
    coarse: np.ndarray
    fine: np.ndarray
    error: np.ndarray
    rate: float


def richardson_eigenvalues(kernel, quadrature, n: int, count: int, rate: float = 2.0):
    """Nyström eigenvalues at ``n`` and ``2n`` nodes, Richardson-extrapolated.

    Kernels with a derivative jump on the diagonal (``min(x, y)``, ReLU NTKs) make Nyström
    eigenvalues converge like ``n^{-2}`` even with Gauss–Legendre nodes (measured in
    tests/test_spectra.py: the error ratio per doubling is 4.00). Then
    ``λ ≈ (2^p λ(2n) - λ(n)) / (2^p - 1)`` removes the leading term.

    Args:
        kernel: ``points -> (n, n)`` kernel matrix.
        quadrature: ``n -> Quadrature`` (e.g. ``lambda n: interval(0, 1, n)``).
        n: coarse resolution (nodes per dimension for tensor rules).
        count: number of leading eigenvalues.
        rate: convergence order ``p`` of the plain Nyström eigenvalues.

    Returns:
        :class:`ExtrapolatedEigenvalues`.
    """
    vals = []
    for m in (n, 2 * n):
        q = quadrature(m)
        vals.append(spectrum(kernel(q.points), q.weights).eigenvalues[:count])
    coarse, fine = vals
    factor = 2.0**rate
    extrap = (factor * fine - coarse) / (factor - 1.0)
    return ExtrapolatedEigenvalues(extrap, coarse, fine, np.abs(fine - extrap), rate)
