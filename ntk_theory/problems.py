"""A catalogue of PDE problems (:class:`~ntk_theory.pinn.PINNProblem`) used by the figures,
notebooks, tests and the command line.

* :func:`poisson_1d` -- ``u'' = f`` on [0, 1], Dirichlet, ``u = sin(kπx)`` (Wang, Yu, Perdikaris
  2022, §5 and §7.2, arXiv 2007.14527);
* :func:`poisson_2d` -- ``-Δu = f`` on [0, 1]², Dirichlet, ``u = sin(πx) sin(πy)``;
* :func:`wave_1d` -- ``u_tt - c² u_xx = 0`` on (0, 1)², three boundary pieces (initial value,
  initial velocity, walls; Wang, Yu, Perdikaris §7.3);
* :func:`stokes_cavity` -- 2-D Stokes flow in the lid-driven cavity: a system of three equations
  in ``(u, v, p)`` (two momentum equations, continuity) with Dirichlet velocity on the walls.
"""

from __future__ import annotations

import math

import numpy as np

from .domains import box_boundary
from .operators import Operator, derivative, identity, laplacian
from .pinn import PINNProblem

__all__ = ["poisson_1d", "poisson_2d", "stokes_cavity", "wave_1d"]


def _check_count(name: str, n, minimum: int = 2) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {n!r}.")
    return int(n)


def poisson_1d(n_residual: int = 64, frequency: float = 1.0) -> PINNProblem:
    """``u'' = f`` on [0, 1], ``u(0) = u(1) = 0``, exact ``u = sin(k π x)`` (``k`` = ``frequency``).

    ``n_residual`` equispaced collocation points including the endpoints (as in WYP §5).
    """
    n = _check_count("n_residual", n_residual)
    xr = np.linspace(0.0, 1.0, n)[:, None]
    k = float(frequency) * math.pi
    f = -(k**2) * np.sin(k * xr[:, 0])
    xb = np.array([[0.0], [1.0]])
    g = np.sin(k * xb[:, 0])
    return PINNProblem(
        derivative(("x",), "x", 2),
        (identity(("x",)),),
        xr,
        f,
        (xb,),
        (g,),
        exact=lambda x: np.sin(k * np.asarray(x)[:, 0]),
        name=f"1-D Poisson, u = sin({frequency:g}πx)",
        labels=("u(0), u(1)",),
    )


def poisson_2d(n_per_dim: int = 12, n_boundary: int = 12) -> PINNProblem:
    """``-Δu = f`` on [0, 1]², ``u = 0`` on the boundary, exact ``u = sin(πx) sin(πy)``."""
    n = _check_count("n_per_dim", n_per_dim, 1)
    nb = _check_count("n_boundary", n_boundary, 1)
    t = np.linspace(0.0, 1.0, n + 2)[1:-1]
    xr = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    f = 2 * math.pi**2 * np.sin(math.pi * xr[:, 0]) * np.sin(math.pi * xr[:, 1])
    xb = box_boundary((0.0, 0.0), (1.0, 1.0), nb, rule="uniform").points
    return PINNProblem(
        -1 * laplacian(("x", "y")),
        (identity(("x", "y")),),
        xr,
        f,
        (xb,),
        (np.zeros(len(xb)),),
        exact=lambda x: (
            np.sin(math.pi * np.asarray(x)[:, 0]) * np.sin(math.pi * np.asarray(x)[:, 1])
        ),
        name="2-D Poisson, u = sin(πx) sin(πy)",
        labels=("walls",),
    )


def wave_1d(n_per_dim: int = 11, speed: float = 2.0, loss_weights=None) -> PINNProblem:
    """``u_tt - c² u_xx = 0`` on (0, 1)² in ``(t, x)`` with ``u(x, 0) = sin(πx) + ½ sin(4πx)``,
    ``u_t(x, 0) = 0`` and ``u(0, t) = u(1, t) = 0`` (Wang, Yu, Perdikaris §7.3; ``c = 2``).

    Exact solution ``u = sin(πx) cos(cπt) + ½ sin(4πx) cos(4cπt)``. Residual points: a midpoint
    grid of ``n_per_dim²``; ``2 n_per_dim`` points on each boundary line.
    """
    m = _check_count("n_per_dim", n_per_dim, 1)
    c = float(speed)
    coords = ("t", "x")
    g_ = (np.arange(m) + 0.5) / m
    xr = np.stack(np.meshgrid(g_, g_, indexing="ij"), -1).reshape(-1, 2)
    line = np.linspace(0.0, 1.0, 2 * m)
    x_init = np.stack([np.zeros_like(line), line], 1)
    x_side = np.concatenate(
        [np.stack([line, np.zeros_like(line)], 1), np.stack([line, np.ones_like(line)], 1)]
    )
    residual = Operator.parse("u_tt - c2*u_xx", coords, params={"c2": c * c})

    def exact(p):
        p = np.asarray(p)
        t, x = p[:, 0], p[:, 1]
        return np.sin(np.pi * x) * np.cos(c * np.pi * t) + 0.5 * np.sin(4 * np.pi * x) * np.cos(
            4 * c * np.pi * t
        )

    return PINNProblem(
        residual,
        (identity(coords), derivative(coords, "t"), identity(coords)),
        xr,
        np.zeros(len(xr)),
        (x_init, x_init, x_side),
        (exact(x_init), np.zeros(len(x_init)), np.zeros(len(x_side))),
        loss_weights=loss_weights,
        exact=exact,
        name=f"wave equation u_tt - {c * c:g} u_xx = 0",
        labels=("u(x, 0)", "u_t(x, 0)", "u(0, t), u(1, t)"),
    )


def stokes_cavity(n_per_dim: int = 8, n_boundary: int = 8, viscosity: float = 1.0) -> PINNProblem:
    """Stokes flow in the lid-driven cavity [0, 1]², unknowns ``(u, v, p)``.

    .. math::
        -ν Δu + p_x = 0, \\quad -ν Δv + p_y = 0, \\quad u_x + v_y = 0 \\ \\text{in } (0, 1)^2,
        \\qquad u = 1 \\text{ on the lid } y = 1,\\ u = 0 \\text{ on the other walls},\\ v = 0.

    Three residual pieces (one per equation, on an ``n_per_dim²`` interior grid) and two boundary
    pieces (``u`` and ``v`` on the ``4 n_boundary`` wall points). The pressure has no boundary
    condition (it is fixed up to a constant). Train or analyze it with ``MLP(..., outputs=3)``.
    No closed-form solution: ``exact`` is ``None``.
    """
    n = _check_count("n_per_dim", n_per_dim, 1)
    nb = _check_count("n_boundary", n_boundary, 1)
    nu = float(viscosity)
    if not (nu > 0 and math.isfinite(nu)):
        raise ValueError(f"viscosity must be positive and finite, got {viscosity!r}.")
    coords, functions = ("x", "y"), ("u", "v", "p")
    t = np.linspace(0.0, 1.0, n + 2)[1:-1]
    xr = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    xb = box_boundary((0.0, 0.0), (1.0, 1.0), nb, rule="uniform").points
    lid = (xb[:, 1] == 1.0) & (xb[:, 0] > 0.0) & (xb[:, 0] < 1.0)

    def op(text: str, **params) -> Operator:
        return Operator.parse(text, coords, params=params or None, functions=functions)

    equations = (
        op("-nu*(u_xx + u_yy) + p_x", nu=nu),
        op("-nu*(v_xx + v_yy) + p_y", nu=nu),
        op("u_x + v_y"),
    )
    zeros = np.zeros(len(xr))
    return PINNProblem(
        equations,
        (op("u"), op("v")),
        xr,
        (zeros, zeros, zeros),
        (xb, xb),
        (lid.astype(float), np.zeros(len(xb))),
        name=f"Stokes lid-driven cavity, ν = {nu:g}",
        labels=("u on the walls", "v on the walls"),
    )
