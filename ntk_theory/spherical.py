"""Mercer spectra of dot-product kernels on the sphere ``S^{d-1}`` (Funk–Hecke).

For inputs on the unit sphere a fully-connected network's kernel depends on ``t = ⟨x, x'⟩``
only: ``Θ(x, x') = κ(t)``. Its Mercer decomposition (w.r.t. the normalized surface measure)
has the spherical harmonics of degree ``k`` as eigenfunctions with eigenvalue (Funk–Hecke;
Müller 1966, *Spherical Harmonics*, Thm. 6; Bietti & Bach, arXiv 2009.14397, eq. (6))

.. math::
    μ_k = \\frac{|S^{d-2}|}{|S^{d-1}|} \\int_{-1}^{1} κ(t)\\, P_k^{(d)}(t)\\, (1-t^2)^{(d-3)/2}\\, dt,

of multiplicity ``N(d, k) = (2k + d - 2)/k · C(k + d - 3, d - 2)``, with ``P_k^{(d)}`` the
Gegenbauer polynomial normalized to ``P_k^{(d)}(1) = 1``. The weight ``(1-t²)^{(d-3)/2}`` is
a Jacobi weight, so Gauss–Jacobi quadrature integrates ``κ P_k`` exactly when ``κ`` is a
polynomial of degree ``≤ 2n - 1 - k``. Operators that are polynomials ``p`` of the
Laplace–Beltrami operator act on degree ``k`` by ``p(k(k+d-2))`` (for ``T = p(-Δ_S)``), so the
spectrum of ``T_x T_{x'} κ`` is ``p(k(k+d-2))² μ_k`` exactly.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special

from .networks import MLP
from .spectra import DecayFit, fit_decay

__all__ = ["SphereSpectrum", "gegenbauer", "multiplicity", "sphere_spectrum"]


def multiplicity(dim: int, k: int) -> int:
    """Dimension ``N(d, k)`` of degree-``k`` spherical harmonics on ``S^{d-1}``."""
    if k == 0:
        return 1
    if dim == 2:
        return 2
    return (2 * k + dim - 2) * math.comb(k + dim - 3, dim - 2) // k


def gegenbauer_all(dim: int, max_degree: int, t) -> np.ndarray:
    """``P_k^{(d)}(t)`` for ``k = 0..max_degree`` at once, ``(max_degree+1, len(t))``.

    Three-term recurrence of the Gegenbauer polynomials ``C_k^λ`` (``λ = (d-2)/2``; DLMF 18.9.1)
    normalized by ``C_k^λ(1)``: ``(k+2λ) P_{k+1} = 2(k+λ) t P_k - k P_{k-1}`` (Chebyshev for
    ``d = 2``). ``O(K n)`` work instead of evaluating each degree separately.
    """
    t = np.asarray(t, dtype=float)
    lam = (dim - 2) / 2
    out = np.empty((max_degree + 1, t.size))
    out[0] = 1.0
    if max_degree >= 1:
        out[1] = t
    for k in range(1, max_degree):
        if dim == 2:
            out[k + 1] = 2 * t * out[k] - out[k - 1]
        else:
            out[k + 1] = (2 * (k + lam) * t * out[k] - k * out[k - 1]) / (k + 2 * lam)
    return out


def gegenbauer(dim: int, k: int, t) -> np.ndarray:
    """``P_k^{(d)}(t)``, normalized so ``P_k^{(d)}(1) = 1`` (Legendre for d = 3, Chebyshev for d = 2)."""
    t = np.asarray(t, dtype=float)
    if dim == 2:
        return scipy.special.eval_chebyt(k, t)
    lam = (dim - 2) / 2
    return scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)


@dataclass(frozen=True)
class SphereSpectrum:
    """Funk–Hecke spectrum of a dot-product kernel on ``S^{dim-1}``.

    Attributes:
        dim: ambient dimension ``d`` (the sphere is ``S^{d-1}``).
        degrees: ``(K+1,)`` degrees ``0..max_degree``.
        eigenvalues: ``(K+1,)`` Mercer eigenvalues ``μ_k`` (including the operator factor).
        multiplicities: ``(K+1,)`` ``N(d, k)``.
        floor: quadrature round-off level ``≈ 1e-15 · Σ_k N(d,k)|μ_k|``; ``μ_k`` below it are noise.
        nodes: Gauss–Jacobi nodes used.
        degree_decay: fit ``μ_k ≈ C k^{-β}`` over degrees (``alpha`` holds ``β``), or ``None``.
        sorted_decay: fit of the eigenvalues sorted with multiplicity, ``λ_i ≈ C i^{-α}``
            (theory: ``α = β/(d-1)``), or ``None``.
    """

    dim: int
    degrees: np.ndarray
    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    floor: float
    nodes: int
    degree_decay: DecayFit | None
    sorted_decay: DecayFit | None

    def sorted_eigenvalues(self, count: int | None = None) -> np.ndarray:
        """Eigenvalues repeated by multiplicity, descending (first ``count``)."""
        vals = np.repeat(self.eigenvalues, self.multiplicities)
        vals = np.sort(vals)[::-1]
        return vals if count is None else vals[:count]

    @property
    def trace(self) -> float:
        """``Σ_k N(d,k) μ_k`` (equals ``κ(1)`` when all degrees are included)."""
        return float(np.dot(self.multiplicities, self.eigenvalues))


@functools.lru_cache(maxsize=8)
def _jacobi_rule(nodes: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Jacobi nodes and weights (scipy's Golub–Welsch: O(n²); 21 s at n = 20,400)."""
    t, w = scipy.special.roots_jacobi(nodes, a, a)
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


def _profile(net: MLP, dim: int, get: str) -> Callable[[np.ndarray], np.ndarray]:
    """``κ(t) = K(e_1, t e_1 + √(1-t²) e_2)`` for the network's kernel."""

    def kappa(t):
        t = np.asarray(t, dtype=float)
        x1 = np.zeros((1, dim))
        x1[0, 0] = 1.0
        x2 = np.zeros((t.size, dim))
        x2[:, 0] = t
        x2[:, 1] = np.sqrt(np.clip(1.0 - t**2, 0.0, None))
        K = net.ntk(x1, x2) if get == "ntk" else net.nngp(x1, x2)
        return np.asarray(K)[0]

    return kappa


def _operator_factor(operator, dim: int, degrees: np.ndarray) -> np.ndarray:
    if operator is None:
        return np.ones(degrees.size)
    ell = degrees * (degrees + dim - 2.0)  # eigenvalue of -Δ_S on degree k
    if callable(operator):
        vals = np.asarray([float(operator(e)) for e in ell])
    else:
        coeffs = np.asarray(operator, dtype=float)
        vals = np.polynomial.polynomial.polyval(ell, coeffs)
    return vals**2


def sphere_spectrum(
    net: MLP | None,
    dim: int,
    max_degree: int,
    operator: Callable[[float], float] | Sequence[float] | None = None,
    *,
    kernel: Callable[[np.ndarray], np.ndarray] | None = None,
    get: str = "ntk",
    nodes: int | None = None,
    degree_window: tuple[int, int] | None = None,
) -> SphereSpectrum:
    """Mercer eigenvalues of ``Θ`` (or of ``T_x T_{x'} Θ``) on ``S^{dim-1}`` by Funk–Hecke.

    Args:
        net: the network (or ``None`` with ``kernel=``).
        dim: ambient dimension ``d ≥ 2`` of the inputs ``x ∈ S^{d-1} ⊂ R^d``.
        max_degree: highest degree ``K``.
        operator: ``T = p(-Δ_S)``: a callable ``p(ℓ)`` or polynomial coefficients
            ``[c0, c1, ...]`` of ``p(ℓ) = Σ c_j ℓ^j``; ``μ_k`` is multiplied by
            ``p(k(k+d-2))²``. Example: ``[c, 1]`` is ``-Δ_S + c``.
        kernel: a profile ``κ(t)`` to use instead of the network's kernel.
        get: ``"ntk"`` or ``"nngp"``.
        nodes: Gauss–Jacobi nodes (default ``4 K + 400``). For analytic ``κ`` the error is at
            round-off; for ReLU kernels (``κ`` has ``(1-t)^{s+1/2}`` endpoint terms) it decays
            algebraically -- tests/test_sphere.py checks convergence by doubling ``nodes``.
        degree_window: degrees ``(first, last)`` for the degree-decay fit; default: from degree
            2 to the last degree above 100 × the floor.

    Returns:
        :class:`SphereSpectrum`.

    Example:
        >>> s = sphere_spectrum(MLP(2, "relu", b_std=0.5), dim=3, max_degree=200)
        >>> s.degree_decay.alpha          # ≈ 3 = d (Bietti & Bach 2021)
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an integer ≥ 2 (inputs on S^(dim-1) ⊂ R^dim), got {dim!r}.")
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 1:
        raise ValueError(f"max_degree must be a positive integer, got {max_degree!r}.")
    if (net is None) == (kernel is None):
        raise ValueError("Pass exactly one of `net` and `kernel=`.")
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}.")
    from .operators import BoundOperator, Operator

    if isinstance(operator, (Operator, BoundOperator)):
        raise TypeError(
            "sphere_spectrum's operator is a polynomial p of -Δ_S acting on each degree: pass its "
            "coefficients, e.g. operator=[0, 1] for -Δ_S or [c, 1] for -Δ_S + c, or a callable "
            "p(ℓ) of ℓ = k(k+d-2). (An Operator such as laplace_beltrami(...) is applied to "
            "kernels by operator_kernel; its Funk–Hecke spectrum is operator=[0, 1].)"
        )
    if nodes is not None and (
        isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 2
    ):
        raise ValueError(f"nodes must be an integer ≥ 2, got {nodes!r}.")
    nodes = int(nodes or 4 * max_degree + 400)
    if nodes < max_degree + 32:
        warnings.warn(
            f"{nodes} Gauss–Jacobi nodes cannot resolve degree {max_degree} (μ_k of the highest "
            f"degrees are then quadrature error); use nodes ≥ 4·max_degree + 400 = "
            f"{4 * max_degree + 400} (the default).",
            stacklevel=2,
        )
    a = (dim - 3) / 2
    from ._progress import warn_slow

    warn_slow(
        f"sphere_spectrum: {nodes} Gauss–Jacobi nodes for degree {max_degree}", 5e-8 * nodes**2
    )
    t, w = _jacobi_rule(nodes, a)
    kappa = kernel if kernel is not None else _profile(net, dim, get)
    kt = np.asarray(kappa(t), dtype=float)
    if not np.all(np.isfinite(kt)):
        raise ValueError("The kernel profile κ(t) is not finite on [-1, 1].")
    ratio = math.gamma(dim / 2) / (math.sqrt(math.pi) * math.gamma((dim - 1) / 2))
    degrees = np.arange(max_degree + 1)
    mu = ratio * (gegenbauer_all(dim, max_degree, t) @ (w * kt))
    mu = mu * _operator_factor(operator, dim, degrees)
    mult = np.array([multiplicity(dim, int(k)) for k in degrees])
    floor = 1e-15 * float(np.dot(mult, np.abs(mu))) * max(1.0, math.sqrt(nodes) / 10)
    if np.any(mu < -100 * floor):
        k_bad = int(np.argmax(mu < -100 * floor))
        warnings.warn(
            f"μ_{k_bad} = {mu[k_bad]:.3e} is negative beyond round-off: a dot-product kernel's "
            "Mercer eigenvalues are ≥ 0, so the quadrature is not resolving the kernel profile "
            "(raise nodes=).",
            stacklevel=2,
        )
    degree_decay = _degree_fit(degrees, mu, floor, degree_window)
    sorted_decay = None
    vals = np.sort(np.repeat(mu, mult))[::-1]
    try:
        sorted_decay = fit_decay(vals, None, floor)
    except ValueError:
        pass
    return SphereSpectrum(dim, degrees, mu, mult, floor, nodes, degree_decay, sorted_decay)


def _degree_fit(degrees, mu, floor, window) -> DecayFit | None:
    """Fit ``μ_k ≈ C k^{-β}`` over degrees with ``μ_k`` above 100 × floor (zeros of one parity
    -- e.g. the bias-free two-layer ReLU kernel -- are skipped)."""
    if window is None:
        ok = np.nonzero(mu > 100 * floor)[0]
        ok = ok[ok >= 2]
        if ok.size < 5:
            return None
        first, last = int(ok[0]), int(ok[-1])
    else:
        first, last = int(window[0]), int(window[1])
        if not 1 <= first < last <= degrees[-1]:
            raise ValueError(f"degree_window {window} is outside 1..{degrees[-1]}.")
    k = np.arange(first, last + 1)
    sel = k[mu[k] > 100 * floor]
    if sel.size < 5:
        return None
    x, y = np.log(sel.astype(float)), np.log(mu[sel])
    xm = x - x.mean()
    slope = float(np.dot(xm, y - y.mean()) / np.dot(xm, xm))
    resid = y - y.mean() - slope * xm
    stderr = math.sqrt(float(np.dot(resid, resid)) / max(sel.size - 2, 1) / float(np.dot(xm, xm)))
    ss = float(np.dot(y - y.mean(), y - y.mean()))
    r2 = 1 - float(np.dot(resid, resid)) / ss if ss > 0 else 1.0
    return DecayFit(
        -slope, stderr, float(y.mean() - slope * x.mean()), (int(sel[0]), int(sel[-1])), r2
    )
