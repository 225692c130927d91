"""The PINN block kernel: residual and boundary pieces of a physics-informed loss.

For the loss (DESIGN.md; Wang, Yu, Perdikaris, arXiv 2007.14527, eq. (4.3)-(4.7))

.. math::
    L(θ) = \\frac{w_r}{2N_r}\\sum_i |T u(x_i) - f(x_i)|^2
         + \\sum_k \\frac{w_k}{2N_k}\\sum_j |B_k u(y^k_j) - g_k(y^k_j)|^2

gradient flow moves the stacked errors ``e = (r, b_1, ..., b_K)`` by
``de/dt = -K Λ e`` with ``K = [[K_TT, K_TB], [K_BT, K_BB]]`` (``K_{PQ} = P_x Q_{x'} Θ``) and
``Λ = diag(w_r/N_r, w_1/N_1, ...)``. :func:`pinn_kernel` returns the blocks, ``K``, ``Λ`` and
the symmetric ``Λ^{1/2} K Λ^{1/2}`` whose eigenvalues are the rates of the dynamics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .networks import MLP, check_points
from .operator_kernels import operator_kernel
from .operators import BoundOperator, Operator

__all__ = ["PINNKernel", "pinn_kernel"]


@dataclass(frozen=True)
class PINNKernel:
    """Blocks and assembled matrices of a PINN's NTK (shapes with ``N = N_r + Σ_k N_k``).

    Attributes:
        blocks: ``"rr"`` ``(N_r, N_r)``, ``"rb"`` ``(N_r, N_b)``, ``"br"`` (its transpose),
            ``"bb"`` ``(N_b, N_b)``; the boundary pieces are stacked in the given order.
        K: the full ``(N, N)`` kernel ``[[K_rr, K_rb], [K_br, K_bb]]``.
        weights: ``(N,)`` diagonal of ``Λ`` (``w_r/N_r`` on residual rows, ``w_k/N_k`` on piece k).
        sizes: ``(N_r, N_1, ..., N_K)``.
        labels: ``("residual", "boundary 0", ...)`` or the names given.
    """

    blocks: dict[str, jax.Array]
    K: jax.Array
    weights: jax.Array
    sizes: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def dynamics_matrix(self) -> jax.Array:
        """``K Λ``: ``de/dt = -K Λ e`` under gradient flow (not symmetric)."""
        return self.K * self.weights[None, :]

    @property
    def symmetric(self) -> jax.Array:
        """``Λ^{1/2} K Λ^{1/2}``: symmetric, same eigenvalues as ``K Λ``."""
        s = jnp.sqrt(self.weights)
        return s[:, None] * self.K * s[None, :]

    def piece(self, i: int, j: int) -> jax.Array:
        """Block between pieces ``i`` and ``j`` (0 = residual, k = boundary piece k)."""
        off = np.concatenate([[0], np.cumsum(self.sizes)])
        return self.K[off[i] : off[i + 1], off[j] : off[j + 1]]


def pinn_kernel(
    net: MLP,
    residual: Operator,
    boundary: Operator | BoundOperator | Sequence[Operator | BoundOperator],
    x_residual,
    x_boundary,
    weights: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
) -> PINNKernel:
    """The infinite-width NTK of a physics-informed loss, block by block.

    Args:
        net: the network.
        residual: the PDE operator ``T`` (linear, or linearized with ``about=``).
        boundary: one boundary operator or a list of them (e.g. initial condition, boundary
            condition, initial velocity), Dirichlet = :func:`~ntk_theory.operators.identity`.
        x_residual: ``(N_r, d)`` collocation points.
        x_boundary: ``(N_b, d)`` points, or a list with one array per boundary operator.
        weights: ``(w_r, w_1, ..., w_K)`` loss weights; default all 1.
        labels: names of the boundary pieces (default ``"boundary k"``).

    Returns:
        :class:`PINNKernel`.

    Example:
        >>> T = Operator.parse("u_xx", ("x",)); B = identity(("x",))
        >>> P = pinn_kernel(MLP(1, "tanh", 1.0, 1.0), T, B, xr, xb)
        >>> P.blocks["rr"].shape, P.K.shape
    """
    ops = list(boundary) if isinstance(boundary, (list, tuple)) else [boundary]
    xs = list(x_boundary) if isinstance(x_boundary, (list, tuple)) else [x_boundary]
    if len(ops) != len(xs):
        raise ValueError(
            f"{len(ops)} boundary operator(s) but {len(xs)} boundary point set(s); pass one "
            "(n_k, d) array per boundary operator."
        )
    x_residual, _ = check_points(x_residual, None, "x_residual")
    xs = [check_points(x, None, f"x_boundary[{k}]")[0] for k, x in enumerate(xs)]
    n_pieces = 1 + len(ops)
    weights = (1.0,) * n_pieces if weights is None else tuple(float(w) for w in weights)
    if len(weights) != n_pieces or any(not w > 0 for w in weights):
        raise ValueError(
            f"weights must be {n_pieces} positive numbers (w_r, then one per boundary piece), "
            f"got {weights}."
        )
    names = tuple(labels) if labels is not None else tuple(f"boundary {k}" for k in range(len(ops)))
    all_ops = [residual, *ops]
    all_x = [x_residual, *xs]
    rows = []
    for i in range(n_pieces):
        row = []
        for j in range(n_pieces):
            if j < i:
                row.append(rows[j][i].T)
            elif i == j:
                row.append(operator_kernel(net, all_ops[i], all_x[i]))
            else:
                row.append(operator_kernel(net, all_ops[i], all_x[i], all_ops[j], all_x[j]))
        rows.append(row)
    K = jnp.block(rows)
    sizes = tuple(int(x.shape[0]) for x in all_x)
    lam = jnp.concatenate([jnp.full((n,), w / n) for n, w in zip(sizes, weights, strict=True)])
    n_r = sizes[0]
    blocks = {"rr": K[:n_r, :n_r], "rb": K[:n_r, n_r:], "br": K[n_r:, :n_r], "bb": K[n_r:, n_r:]}
    return PINNKernel(blocks, K, lam, sizes, ("residual", *names))
