"""Domains with quadrature: points *and* weights, so kernels become integral operators.

Every constructor returns a :class:`Quadrature` ``(points, weights)`` approximating
``∫ f dμ ≈ Σ_i w_i f(x_i)`` for the domain's measure:

* :func:`interval` and :func:`box` -- Lebesgue measure; Gauss–Legendre (tensor) rules, or
  uniform random / Sobol samples with weights ``vol/N``;
* :func:`sphere` -- the *normalized* surface measure on ``S^{d-1}`` (total mass 1, the measure
  of the Funk–Hecke formula in :mod:`ntk_theory.spherical`); uniform samples, weights ``1/N``;
* :func:`box_boundary` / :func:`interval_boundary` -- surface measure on the faces (counting
  measure at interval endpoints), with outward unit normals for Neumann/Robin operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Quadrature", "box", "box_boundary", "interval", "interval_boundary", "sphere"]


@dataclass(frozen=True)
class Quadrature:
    """Quadrature nodes and weights on a domain.

    Attributes:
        points: ``(n, d)`` nodes.
        weights: ``(n,)`` positive weights (sum = measure of the domain).
        normals: ``(n, d)`` outward unit normals on boundaries, else ``None``.
        name: a short description (``"[0, 1] Gauss–Legendre n=64"``).
    """

    points: np.ndarray
    weights: np.ndarray
    normals: np.ndarray | None = None
    name: str = ""

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    def integrate(self, values) -> float:
        """``Σ_i w_i f(x_i)`` for values ``f(x_i)`` of shape ``(n,)``."""
        return float(np.dot(self.weights, np.asarray(values)))


def _check_n(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}.")
    return int(n)


def interval(
    a: float = 0.0, b: float = 1.0, n: int = 64, rule: str = "gauss", seed: int = 0
) -> Quadrature:
    """``n`` nodes on ``[a, b]``: ``rule`` = ``"gauss"`` (Gauss–Legendre), ``"uniform"``
    (equispaced midpoints, weights ``(b-a)/n``) or ``"random"`` (uniform samples)."""
    return box((a,), (b,), n, rule=rule, seed=seed)


def box(
    lower: Sequence[float],
    upper: Sequence[float],
    n: int,
    rule: str = "gauss",
    seed: int = 0,
) -> Quadrature:
    """Quadrature on the box ``Π [lower_i, upper_i]``.

    Args:
        lower, upper: corners (length ``d``).
        n: nodes per dimension for ``"gauss"``/``"uniform"`` (``n^d`` in total); total number
            of samples for ``"random"``/``"sobol"`` (Sobol wants a power of 2).
        rule: ``"gauss"`` (tensor Gauss–Legendre), ``"uniform"`` (tensor midpoint grid),
            ``"random"`` (i.i.d. uniform, weights ``vol/n``), ``"sobol"`` (scrambled Sobol).
        seed: for the random rules.
    """
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if lo.shape != hi.shape or lo.ndim != 1 or not np.all(hi > lo):
        raise ValueError(f"Need lower < upper componentwise, got {lower} and {upper}.")
    n = _check_n(n)
    d = lo.size
    vol = float(np.prod(hi - lo))
    if rule in ("gauss", "uniform"):
        if rule == "gauss":
            t, w = np.polynomial.legendre.leggauss(n)
            t, w = (t + 1) / 2, w / 2
        else:
            t, w = (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
        grids = np.meshgrid(*([t] * d), indexing="ij")
        pts = np.stack([g.ravel() for g in grids], axis=1)
        wts = np.prod(np.stack(np.meshgrid(*([w] * d), indexing="ij")).reshape(d, -1), axis=0)
        pts = lo + pts * (hi - lo)
        return Quadrature(pts, wts * vol, None, f"box {rule} {n}^{d}")
    if rule == "random":
        pts = np.random.default_rng(seed).uniform(size=(n, d))
    elif rule == "sobol":
        from scipy.stats import qmc  # imported here: scipy.stats adds 1.5 s to every import

        pts = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    else:
        raise ValueError(f"Unknown rule {rule!r}; use 'gauss', 'uniform', 'random' or 'sobol'.")
    return Quadrature(lo + pts * (hi - lo), np.full(n, vol / n), None, f"box {rule} n={n}")


def sphere(dim: int, n: int, seed: int = 0) -> Quadrature:
    """``n`` uniform samples on ``S^{dim-1} ⊂ R^dim`` with weights ``1/n`` (probability measure)."""
    dim, n = _check_n(dim, "dim"), _check_n(n)
    if dim < 2:
        raise ValueError("The sphere S^{d-1} needs dim ≥ 2.")
    z = np.random.default_rng(seed).standard_normal((n, dim))
    pts = z / np.linalg.norm(z, axis=1, keepdims=True)
    return Quadrature(pts, np.full(n, 1.0 / n), pts.copy(), f"S^{dim - 1} uniform n={n}")


def box_boundary(
    lower: Sequence[float], upper: Sequence[float], n: int, rule: str = "gauss"
) -> Quadrature:
    """Quadrature on the faces of a box (``d ≥ 2``): a rule with ``n`` nodes per dimension on
    each face, surface-measure weights and outward normals. Corners are not duplicated
    (face nodes are interior for Gauss–Legendre and midpoint rules)."""
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    d = lo.size
    if d < 2:
        return interval_boundary(float(lo[0]), float(hi[0]))
    pts, wts, nrm = [], [], []
    for axis in range(d):
        others = [i for i in range(d) if i != axis]
        face = box(lo[others], hi[others], n, rule=rule)
        for side, value in ((-1.0, lo[axis]), (1.0, hi[axis])):
            p = np.empty((face.n, d))
            p[:, others] = face.points
            p[:, axis] = value
            normal = np.zeros((face.n, d))
            normal[:, axis] = side
            pts.append(p)
            wts.append(face.weights)
            nrm.append(normal)
    return Quadrature(
        np.concatenate(pts), np.concatenate(wts), np.concatenate(nrm), f"box faces {rule} n={n}"
    )


def interval_boundary(a: float = 0.0, b: float = 1.0) -> Quadrature:
    """The endpoints ``{a, b}`` with counting measure and outward normals ``∓1``."""
    if not b > a:
        raise ValueError(f"Need a < b, got {a}, {b}.")
    return Quadrature(
        np.array([[a], [b]]), np.ones(2), np.array([[-1.0], [1.0]]), f"endpoints {{{a}, {b}}}"
    )
