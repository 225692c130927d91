"""The PINN block kernel and the PINN problem: residual and boundary pieces of a physics-informed loss.

For the loss (DESIGN.md; Wang, Yu, Perdikaris, arXiv 2007.14527, eq. (4.3)-(4.7))

.. math::
    L(θ) = \\sum_{e} \\frac{w_e}{2N_e}\\sum_i |T_e u(x_i) - f_e(x_i)|^2
         + \\sum_k \\frac{w_k}{2N_k}\\sum_j |B_k u(y^k_j) - g_k(y^k_j)|^2

(one residual piece per equation ``e`` of a system, one piece per boundary operator ``B_k``),
gradient flow moves the stacked errors ``e = (r_1, ..., b_1, ...)`` by ``de/dt = -K Λ e`` with
``K_{PQ} = P_x Q_{x'} Θ`` over all pairs of pieces and ``Λ = diag(w_p/N_p)`` (loss weights over
piece sizes). :func:`pinn_kernel` returns the blocks, ``K``, ``Λ`` and the symmetric
``Λ^{1/2} K Λ^{1/2}`` whose eigenvalues are the rates of the dynamics.

Names: *loss weights* are the per-piece ``w_p``; ``lam`` is the diagonal of ``Λ``; *weights*
without qualifier mean quadrature weights elsewhere in the package (:mod:`ntk_theory.spectra`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .networks import MLP, check_points
from .operator_kernels import _unbind, operator_kernel
from .operators import BoundOperator, Operator

__all__ = ["PINNKernel", "PINNProblem", "pinn_kernel"]


@dataclass(frozen=True)
class PINNKernel:
    """Blocks and assembled matrices of a PINN's NTK (shapes with ``N = Σ_p N_p``).

    Attributes:
        blocks: ``"rr"`` (residual pieces × residual pieces), ``"rb"``, ``"br"`` (its
            transpose) and ``"bb"``; pieces are stacked in the order of ``labels``.
        K: the full ``(N, N)`` kernel.
        lam: ``(N,)`` diagonal of ``Λ``: ``w_p/N_p`` on the rows of piece ``p``.
        sizes: ``(N_1, ..., N_P)`` piece sizes (residual pieces first).
        labels: one name per piece.
        n_residual: how many of the pieces are residual pieces.
        loss_weights: ``(w_1, ..., w_P)``.
    """

    blocks: dict[str, jax.Array]
    K: jax.Array
    lam: jax.Array
    sizes: tuple[int, ...]
    labels: tuple[str, ...]
    n_residual: int = 1
    loss_weights: tuple[float, ...] = ()

    @property
    def dynamics_matrix(self) -> jax.Array:
        """``K Λ``: ``de/dt = -K Λ e`` under gradient flow (not symmetric)."""
        return self.K * self.lam[None, :]

    @property
    def symmetric(self) -> jax.Array:
        """``Λ^{1/2} K Λ^{1/2}``: symmetric, same eigenvalues as ``K Λ``."""
        s = jnp.sqrt(self.lam)
        return s[:, None] * self.K * s[None, :]

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)])

    def piece(self, i: int, j: int) -> jax.Array:
        """Block between pieces ``i`` and ``j`` (in the order of :attr:`labels`)."""
        off = self.offsets
        return self.K[off[i] : off[i + 1], off[j] : off[j + 1]]


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def block_matrix(net: MLP, pieces, get: str = "ntk") -> jax.Array:
    """``[P_x Q_{x'} k]`` over all pairs of pieces ``(P, x_P)``, ``k`` the NTK or NNGP
    (``get``); diagonal blocks exactly symmetric, lower blocks the transposes of upper ones."""
    rows = []
    for i, (Pi, xi) in enumerate(pieces):
        row = []
        for j, (Pj, xj) in enumerate(pieces):
            if j < i:
                row.append(rows[j][i].T)
            elif i == j:
                row.append(operator_kernel(net, Pi, xi, get=get))
            elif not _shared_unknowns(Pi, Pj):
                # independent outputs at infinite width (Θ ⊗ I): an exact zero block
                row.append(jnp.zeros((np.shape(xi)[0], np.shape(xj)[0])))
            else:
                row.append(operator_kernel(net, Pi, xi, Pj, xj, get=get))
        rows.append(row)
    return jnp.block(rows)


def _shared_unknowns(P, Q) -> bool:
    """Whether two pieces' operators act on a common unknown (else their block vanishes)."""
    P = P.operator if isinstance(P, BoundOperator) else P
    Q = Q.operator if isinstance(Q, BoundOperator) else Q
    return bool({P.functions[f] for f, _ in P.keys} & {Q.functions[f] for f, _ in Q.keys})


def pinn_kernel(
    net: MLP,
    residual: Operator | Sequence[Operator],
    boundary: Operator | BoundOperator | Sequence[Operator | BoundOperator],
    x_residual,
    x_boundary,
    loss_weights: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
) -> PINNKernel:
    """The infinite-width NTK of a physics-informed loss, block by block.

    .. math::
        K = \\begin{pmatrix} K_{TT} & K_{TB} \\\\ K_{BT} & K_{BB} \\end{pmatrix}, \\quad
        K_{PQ}(x, x') = P_x Q_{x'} Θ(x, x')

    Args:
        net: the network.
        residual: the PDE operator ``T`` (linear, or linearized with ``about=``), or one per
            equation of a system (all on the points ``x_residual``).
        boundary: one boundary operator or a list of them (e.g. initial condition, boundary
            condition, initial velocity), Dirichlet = :func:`~ntk_theory.operators.identity`.
        x_residual: ``(N_r, d)`` collocation points.
        x_boundary: ``(N_b, d)`` points, or a list with one array per boundary operator.
        loss_weights: one loss weight per piece (residual equations, then boundary pieces);
            default all 1.
        labels: names of the boundary pieces (default ``"boundary k"``).

    Returns:
        :class:`PINNKernel`.

    Example:
        >>> T = Operator.parse("u_xx", ("x",)); B = identity(("x",))
        >>> P = pinn_kernel(MLP(1, "tanh", 1.0, 1.0), T, B, xr, xb)
        >>> P.blocks["rr"].shape, P.K.shape

    References:
        Wang, Yu, Perdikaris (arXiv 2007.14527), eq. (4.5)-(4.7).
    """
    residuals = _as_list(residual)
    ops = _as_list(boundary)
    xs = list(x_boundary) if isinstance(x_boundary, (list, tuple)) else [x_boundary]
    if len(ops) != len(xs):
        raise ValueError(
            f"{len(ops)} boundary operator(s) but {len(xs)} boundary point set(s); pass one "
            "(n_k, d) array per boundary operator."
        )
    x_residual, _ = check_points(x_residual, None, "x_residual")
    xs = [check_points(x, None, f"x_boundary[{k}]")[0] for k, x in enumerate(xs)]
    n_pieces = len(residuals) + len(ops)
    loss_weights = (
        (1.0,) * n_pieces if loss_weights is None else tuple(float(w) for w in loss_weights)
    )
    if len(loss_weights) != n_pieces or any(not (w > 0 and math.isfinite(w)) for w in loss_weights):
        raise ValueError(
            f"loss_weights must be {n_pieces} positive finite numbers (one per residual equation, "
            f"then one per boundary piece), got {loss_weights}."
        )
    if labels is None:
        names = tuple(f"boundary {k}" for k in range(len(ops)))
    else:
        names = tuple(str(v) for v in labels)
        if len(names) != len(ops):
            raise ValueError(f"labels must name the {len(ops)} boundary piece(s), got {names}.")
    res_names = (
        ("residual",)
        if len(residuals) == 1
        else tuple(f"residual {k}" for k in range(len(residuals)))
    )
    if net.output_transform is not None:
        _refuse_enforced(net, ops, xs, names, x_residual)
    all_ops = [*residuals, *ops]
    all_x = [x_residual] * len(residuals) + xs
    K = block_matrix(net, list(zip(all_ops, all_x, strict=True)), "ntk")
    sizes = tuple(int(x.shape[0]) for x in all_x)
    lam = jnp.concatenate([jnp.full((n,), w / n) for n, w in zip(sizes, loss_weights, strict=True)])
    n_r = sum(sizes[: len(residuals)])
    blocks = {"rr": K[:n_r, :n_r], "rb": K[:n_r, n_r:], "br": K[n_r:, :n_r], "bb": K[n_r:, n_r:]}
    return PINNKernel(blocks, K, lam, sizes, (*res_names, *names), len(residuals), loss_weights)


def _refuse_enforced(net: MLP, ops, xs, names, x_residual) -> None:
    """A boundary piece whose ``B∘D`` vanishes at its points has identically zero kernel rows
    (the network satisfies it exactly): refuse it instead of returning zero blocks."""
    ot = net.output_transform
    scale = max(1.0, float(np.max(np.abs(ot.D_values(np.asarray(x_residual))))))
    for op, x, name in zip(ops, xs, names, strict=True):
        unbound, fields = _unbind(op, np.shape(x)[0], name)
        composed = ot.compose(unbound)
        values = composed.coefficient_values(np.asarray(x), fields)
        if all(np.max(np.abs(v)) <= 1e-12 * scale for v in values.values()):
            raise ValueError(
                f"The boundary piece {name!r} is enforced exactly by the network's output transform "
                f"(u = g + D N with D = {ot.D}): B∘D vanishes at its points, so its kernel rows are "
                "identically zero and its loss term is constant. Drop it from the loss (pass the "
                "remaining boundary pieces, or boundary=[] and x_boundary=[])."
            )


@dataclass(frozen=True)
class PINNProblem:
    """A linear PDE problem ``T_e u = f_e`` in the domain, ``B_k u = g_k`` on boundary pieces.

    Attributes:
        residual: ``T`` (or one operator per equation of a system).
        boundary: ``(B_1, ...)``.
        x_residual: ``(N_r, d)``; ``f``: ``(N_r,)`` right-hand side (one array per equation).
        x_boundary: ``((N_1, d), ...)``; ``g``: ``((N_1,), ...)`` boundary data.
        loss_weights: one per piece (equations, then boundary pieces); default all 1.
        exact: optional exact solution ``u(x)`` on ``(n, d)`` points, for errors.
        name: label.
        labels: names of the boundary pieces.

    ``lam`` (the diagonal of ``Λ``) and the piece sizes are built once, at construction.
    """

    residual: Operator | tuple[Operator, ...]
    boundary: tuple[Operator, ...]
    x_residual: np.ndarray
    f: np.ndarray | tuple[np.ndarray, ...]
    x_boundary: tuple[np.ndarray, ...]
    g: tuple[np.ndarray, ...]
    loss_weights: tuple[float, ...] | None = None
    exact: Callable | None = field(default=None, compare=False)
    name: str = ""
    labels: tuple[str, ...] | None = None
    lam: np.ndarray = field(init=False, repr=False, compare=False)
    sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        residuals = tuple(_as_list(self.residual))
        f = (
            tuple(np.asarray(v, dtype=float) for v in _as_list(self.f))
            if isinstance(self.f, (list, tuple))
            else (np.asarray(self.f, dtype=float),)
        )
        boundary = tuple(_as_list(self.boundary))
        xb = tuple(np.asarray(x, dtype=float) for x in _as_list(self.x_boundary))
        g = tuple(np.asarray(v, dtype=float) for v in _as_list(self.g))
        xr = np.asarray(self.x_residual, dtype=float)
        if len(f) != len(residuals):
            raise ValueError(
                f"{len(residuals)} residual equation(s) but {len(f)} right-hand side(s) f."
            )
        if not len(boundary) == len(xb) == len(g):
            raise ValueError(
                f"boundary operators, point sets and data must match: {len(boundary)}, {len(xb)}, {len(g)}."
            )
        for k, (fe, x) in enumerate(zip(f, [xr] * len(f), strict=True)):
            if fe.shape != (x.shape[0],):
                raise ValueError(f"f[{k}] must have shape ({x.shape[0]},), got {fe.shape}.")
        for k, (gk, x) in enumerate(zip(g, xb, strict=True)):
            if gk.shape != (x.shape[0],):
                raise ValueError(f"g[{k}] must have shape ({x.shape[0]},), got {gk.shape}.")
        sizes = (xr.shape[0],) * len(residuals) + tuple(x.shape[0] for x in xb)
        w = self.loss_weights or (1.0,) * len(sizes)
        if len(w) != len(sizes) or any(not (float(v) > 0 and math.isfinite(float(v))) for v in w):
            raise ValueError(f"loss_weights must be {len(sizes)} positive finite numbers, got {w}.")
        set_ = object.__setattr__
        set_(self, "residual", residuals[0] if len(residuals) == 1 else residuals)
        set_(self, "f", f[0] if len(f) == 1 else f)
        set_(self, "boundary", boundary)
        set_(self, "x_boundary", xb)
        set_(self, "g", g)
        set_(self, "x_residual", xr)
        set_(self, "loss_weights", tuple(float(v) for v in w))
        set_(self, "sizes", sizes)
        set_(
            self,
            "lam",
            np.concatenate([np.full(n, wk / n) for n, wk in zip(sizes, w, strict=True)]),
        )

    @property
    def residuals(self) -> tuple[Operator, ...]:
        return tuple(_as_list(self.residual))

    @property
    def targets(self) -> tuple[np.ndarray, ...]:
        """Right-hand sides of every piece, in piece order."""
        return (*_as_list(self.f), *self.g)

    @property
    def pieces(self) -> list[tuple[Operator, np.ndarray, np.ndarray]]:
        """``(operator, points, target)`` of every piece (equations first)."""
        out = [
            (T, self.x_residual, f) for T, f in zip(self.residuals, _as_list(self.f), strict=True)
        ]
        out += list(zip(self.boundary, self.x_boundary, self.g, strict=True))
        return out

    def kernel(self, net: MLP) -> PINNKernel:
        """The infinite-width PINN kernel of this problem."""
        return pinn_kernel(
            net,
            list(self.residuals),
            list(self.boundary),
            self.x_residual,
            list(self.x_boundary),
            self.loss_weights,
            self.labels,
        )

    def empirical_kernel(self, model, width: int | None = None, params=None) -> PINNKernel:
        """The finite-width PINN kernel ``J Jᵀ`` of a network at ``params``, as a
        :class:`PINNKernel` (rows/columns ordered like :meth:`kernel`'s).

        ``model`` is anything :func:`~ntk_theory.empirical_ntk` takes: our :class:`MLP` (with
        ``width`` and/or ``params``), a function ``f(params, x)``, a Flax NNX or Equinox module.
        """
        from .empirical import empirical_ntk

        ops = [op for op, _, _ in self.pieces]
        xs = [jnp.asarray(x) for _, x, _ in self.pieces]
        rows = [
            [
                empirical_ntk(model, xs[i], xs[j], T=ops[i], S=ops[j], params=params, width=width)
                for j in range(len(ops))
            ]
            for i in range(len(ops))
        ]
        K = jnp.asarray(np.asarray(jnp.block(rows)))
        n_r = sum(self.sizes[: len(self.residuals)])
        blocks = {
            "rr": K[:n_r, :n_r],
            "rb": K[:n_r, n_r:],
            "br": K[n_r:, :n_r],
            "bb": K[n_r:, n_r:],
        }
        res_names = (
            ("residual",)
            if len(self.residuals) == 1
            else tuple(f"residual {k}" for k in range(len(self.residuals)))
        )
        labels = self.labels or tuple(f"boundary {k}" for k in range(len(self.boundary)))
        return PINNKernel(
            blocks,
            K,
            jnp.asarray(self.lam),
            self.sizes,
            (*res_names, *labels),
            len(self.residuals),
            self.loss_weights,
        )
