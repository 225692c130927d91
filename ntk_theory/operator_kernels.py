"""Operator-applied NTKs ``K_{T,S}(x, x') = T_x S_{x'} Θ(x, x')``.

For a fully-connected first layer, ``Θ(x, x') = F(s, q, q')`` with ``s = ⟨x,x'⟩``,
``q = |x|²``, ``q' = |x'|²``. With ``∂_{x_i} s = x'_i`` and ``∂_{x_i} q = 2x_i`` every
``∂_x^α ∂_{x'}^β Θ`` is a finite sum

.. math::
    ∂_x^α ∂_{x'}^β Θ = \\sum_{m=(a,b,c)} w^{αβ}_m(x, x')\\, ∂_s^a ∂_q^b ∂_{q'}^c F,

with polynomial weights ``w`` that sympy derives once per ``(α, β)`` (:func:`chain_rule`).
For ``T = Σ_α a_α ∂^α`` and ``S = Σ_β b_β ∂^β`` we combine them into one weight per ``m``,
lambdify it to ``jax.numpy`` and cache it per operator pair. The partials of ``F`` come from
Taylor-mode propagation of jets through the layer recursion (:mod:`ntk_theory._jets`), exact on
the diagonal (Price's theorem, :mod:`ntk_theory.activations`). Cost does not grow with ``d``.

The reference path, :func:`operator_kernel_autodiff`, differentiates neural-tangents'
``kernel_fn`` in ``x`` directly (all rows perturbed at once: ``K[i, j]`` depends only on
``x_i, x'_j``; DESIGN.md fact 5). Tests use it to check the primary path.

References: Gan, Li, Lin, Shi (arXiv 2503.11029), the operator NTK ``T_x T_{x'} K``;
Wang, Yu, Perdikaris (arXiv 2007.14527), eq. (4.5)-(4.7), the PINN blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._jets import Jet, derivative_set
from .networks import MLP, check_points
from .operators import BoundOperator, Operator, OperatorError

__all__ = ["chain_rule", "operator_kernel", "operator_kernel_autodiff"]

MultiIndex = tuple[int, ...]
#: Rows/columns per block under ``jit``: the jet arithmetic streams dozens of block-sized
#: temporaries, and 128 x 128 float64 blocks (128 KiB) stay in cache -- 1.8x faster than 512
#: at N = 2000 (benchmarks/operator_kernel.py); eager evaluation pays per op, so it uses larger
#: blocks.
DEFAULT_BLOCK = 128
EAGER_BLOCK = 512
#: Jets with more monomials than this are evaluated op by op instead of under ``jit``: the
#: unrolled Taylor arithmetic of e.g. a biharmonic pair (95 monomials) takes XLA minutes to
#: compile but runs eagerly in about a second per block.
JIT_MAX_MONOMIALS = 40


# ----------------------------------------------------------------------------------------------
# symbolic chain rule
# ----------------------------------------------------------------------------------------------
def _point_symbols(d: int) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Symbol, ...]]:
    return (
        tuple(sp.Symbol(f"x{i}", real=True) for i in range(d)),
        tuple(sp.Symbol(f"y{i}", real=True) for i in range(d)),
    )


def _differentiate(expr: dict, i: int, side: int, d: int) -> dict:
    """Apply ``∂/∂x_i`` (side 0) or ``∂/∂x'_i`` (side 1) to ``Σ_m w_m F^{(m)}``."""
    xs, ys = _point_symbols(d)
    own, other = (xs, ys) if side == 0 else (ys, xs)
    norm_axis = 1 if side == 0 else 2
    out: dict = {}

    def add(m, w):
        out[m] = out.get(m, 0) + w

    for m, w in expr.items():
        dw = sp.diff(w, own[i])
        if dw != 0:
            add(m, dw)
        add((m[0] + 1, m[1], m[2]), w * other[i])  # ∂ s = x'_i (or x_i)
        m_q = list(m)
        m_q[norm_axis] += 1
        add(tuple(m_q), 2 * w * own[i])  # ∂ |x|² = 2 x_i
    return {m: sp.expand(w) for m, w in out.items() if sp.expand(w) != 0}


@functools.cache
def chain_rule(alpha: MultiIndex, beta: MultiIndex) -> dict[tuple[int, int, int], sp.Expr]:
    """Weights ``w^{αβ}_m(x, y)`` with ``∂_x^α ∂_y^β F(⟨x,y⟩, |x|², |y|²) = Σ_m w_m ∂^m F``.

    Points are the sympy symbols ``x0, x1, ...`` and ``y0, y1, ...``.

    Example:
        >>> chain_rule((1,), (0,))   # ∂_x F = y F_s + 2x F_q
        {(1, 0, 0): y0, (0, 1, 0): 2*x0}
    """
    d = len(alpha)
    if len(beta) != d:
        raise ValueError("alpha and beta must have the same length (the input dimension).")
    expr: dict = {(0, 0, 0): sp.Integer(1)}
    for i, k in enumerate(alpha):
        for _ in range(k):
            expr = _differentiate(expr, i, 0, d)
    for i, k in enumerate(beta):
        for _ in range(k):
            expr = _differentiate(expr, i, 1, d)
    return expr


def _coefficient_symbols(op: Operator, side: str) -> dict[MultiIndex, sp.Symbol]:
    return {alpha: sp.Symbol(f"{side}_{'_'.join(map(str, alpha))}") for alpha, _ in op.terms}


@functools.cache
def _combined_weights(T: Operator, S: Operator) -> tuple[list, Callable]:
    """One lambdified function returning ``[W_m]`` for all ``m``, per operator pair.

    ``W_m(x, y, a, b) = Σ_{α,β} a_α b_β w^{αβ}_m(x, y)`` where ``a_α, b_β`` stand for the
    coefficient values of ``T`` at ``x`` and of ``S`` at ``y``.
    """
    d = T.dim
    xs, ys = _point_symbols(d)
    a_syms, b_syms = _coefficient_symbols(T, "a"), _coefficient_symbols(S, "b")
    weights: dict = {}
    for alpha, _ in T.terms:
        for beta, _ in S.terms:
            for m, w in chain_rule(alpha, beta).items():
                weights[m] = weights.get(m, 0) + a_syms[alpha] * b_syms[beta] * w
    keys = sorted(m for m, w in weights.items() if sp.expand(w) != 0)
    exprs = [sp.expand(weights[m]) for m in keys]
    args = [*xs, *ys, *a_syms.values(), *b_syms.values()]
    fn = sp.lambdify(args, exprs, modules="jax", cse=True)
    return keys, fn


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def _unbind(op, n: int, name: str) -> tuple[Operator, dict]:
    if isinstance(op, BoundOperator):
        if op.n_points != n:
            raise OperatorError(
                f"{name} is bound to field values for {op.n_points} points but is applied to {n}."
            )
        return op.operator, op.field_values()
    if not isinstance(op, Operator):
        raise TypeError(f"{name} must be an Operator (or op.bind(...)), got {type(op).__name__}.")
    if op.fields:
        raise OperatorError(
            f"{name} has per-point fields {op.fields}; pass {name}.bind("
            + ", ".join(f"{f}=..." for f in op.fields)
            + ") with one value per point."
        )
    return op, {}


def _check_dims(op: Operator, x: jax.Array, name: str) -> None:
    if op.dim != x.shape[1]:
        raise OperatorError(
            f"{name} acts on coordinates {op.coords} (d = {op.dim}) but the points have "
            f"dimension {x.shape[1]}; pass (n, {op.dim}) points or fix the operator's coords."
        )


@functools.cache
def _block_fn(net: MLP, T: Operator, S: Operator, get: str) -> Callable:
    """Jitted ``(x1, x2, a, b) -> T_x S_x' K`` on one block, ``K`` = ntk or nngp."""
    keys, weight_fn = _combined_weights(T, S)
    support = derivative_set(T.order, S.order)
    d = T.dim
    jit = len(support) <= JIT_MAX_MONOMIALS

    def block(x1, x2, a_vals, b_vals):
        s = Jet.variable(x1 @ x2.T, 0, support)
        q1 = Jet.variable(jnp.sum(x1 * x1, axis=1)[:, None], 1, support)
        q2 = Jet.variable(jnp.sum(x2 * x2, axis=1)[None, :], 2, support)
        nngp, ntk = net.kernel_jets(s, q1, q2, d, scan=jit)
        jet = ntk if get == "ntk" else nngp
        args = [x1[:, i : i + 1] for i in range(d)] + [x2[:, i][None, :] for i in range(d)]
        args += [v[:, None] for v in a_vals] + [v[None, :] for v in b_vals]
        weights = weight_fn(*args)
        out = jnp.zeros((x1.shape[0], x2.shape[0]))
        for m, w in zip(keys, weights, strict=True):
            out = out + w * jet.derivative(m)
        return out

    return jax.jit(block) if jit else block


def _prepare(net: MLP, T, x1, S, x2):
    """Validate points and operators (S defaults to T) and evaluate their coefficients."""
    S = T if S is None else S
    x1, x2 = check_points(x1, x2)
    T_op, T_fields = _unbind(T, x1.shape[0], "T")
    S_op, S_fields = _unbind(S, x2.shape[0], "S")
    _check_dims(T_op, x1, "T")
    _check_dims(S_op, x2, "S")
    net.act.check_operator_orders(T_op.order, S_op.order)
    a_vals = T_op.coefficient_values(x1, T_fields)
    b_vals = S_op.coefficient_values(x2, S_fields)
    return x1, x2, T_op, S_op, a_vals, b_vals


def operator_kernel(
    net: MLP,
    T: Operator | BoundOperator,
    x1,
    S: Operator | BoundOperator | None = None,
    x2=None,
    *,
    get: str = "ntk",
    block_size: int | None = None,
) -> jax.Array:
    """The infinite-width operator NTK ``T_x S_{x'} Θ(x, x')`` as an ``(n1, n2)`` matrix.

    .. math::
        K_{T,S}(x, x') = \\sum_{α,β} a_α(x)\\, b_β(x')\\, ∂_x^α ∂_{x'}^β Θ(x, x')

    Args:
        net: the network (its first layer must be fully connected, as every :class:`MLP`'s).
        T: operator acting on the first argument (bind fields such as normals first).
        x1: points, shape ``(n1, d)``.
        S: operator acting on the second argument; defaults to ``T``.
        x2: points, shape ``(n2, d)``; defaults to ``x1``.
        get: ``"ntk"`` (default) or ``"nngp"`` (then ``T_x S_{x'} Σ``: the covariance of
            ``T u`` under the Gaussian-process prior).
        block_size: rows/columns per block (default 128 for compiled operator pairs, 512 for
            the eager high-order ones); bounds memory for large ``n`` (N = 10,000 stays within
            a few GB). Blocks are computed one at a time and written to the result.

    Returns:
        ``(n1, n2)`` float64 array. When ``S = T`` and ``x2`` is ``x1`` it is exactly
        symmetric (only the upper block triangle is computed).

    Raises:
        SmoothnessError: the operators' orders exceed what the activation supports.
        OperatorError: coordinates that do not match the points, unbound fields.

    Example:
        >>> net = MLP(3, "erf")
        >>> K = operator_kernel(net, laplacian(("x", "y")), x)   # Δ_x Δ_x' Θ

    References:
        Gan, Li, Lin, Shi, arXiv 2503.11029 (the operator NTK ``T_x T_{x'} K``).
    """
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}.")
    symmetric = S is None and x2 is None
    x1, x2, T_op, S_op, a_vals, b_vals = _prepare(net, T, x1, S, x2)
    a_all = [a_vals[alpha] for alpha, _ in T_op.terms]
    b_all = [b_vals[beta] for beta, _ in S_op.terms]
    fn = _block_fn(net, T_op, S_op, get)
    if block_size is None:
        jitted = len(derivative_set(T_op.order, S_op.order)) <= JIT_MAX_MONOMIALS
        block_size = DEFAULT_BLOCK if jitted else EAGER_BLOCK
    n1, n2 = x1.shape[0], x2.shape[0]
    if n1 <= block_size and n2 <= block_size:
        K = fn(x1, x2, a_all, b_all)
        return 0.5 * (K + K.T) if symmetric else K
    # Every block is padded to (block_size, block_size) so one compiled shape serves all.
    rows = [_pad_block(x1, a_all, i0, block_size) for i0 in range(0, n1, block_size)]
    cols = (
        rows
        if symmetric
        else [_pad_block(x2, b_all, j0, block_size) for j0 in range(0, n2, block_size)]
    )
    out = np.empty((n1, n2))
    for bi, (i0, i1, xb1, ab) in enumerate(rows):
        for bj in range(bi if symmetric else 0, len(cols)):
            j0, j1, xb2, bb = cols[bj]
            blk = np.asarray(fn(xb1, xb2, ab, bb))[: i1 - i0, : j1 - j0]
            if symmetric and bi == bj:
                blk = 0.5 * (blk + blk.T)
            out[i0:i1, j0:j1] = blk
            if symmetric and bi != bj:
                out[j0:j1, i0:i1] = blk.T
    return jnp.asarray(out)


def _pad_block(x, coeffs, start: int, size: int):
    """Rows ``start:start+size`` of the points and coefficient values, padded by repetition."""
    stop = min(start + size, x.shape[0])
    idx = np.minimum(np.arange(start, start + size), stop - 1)  # host indices: no compilation
    return start, stop, np.asarray(x)[idx], [np.asarray(c)[idx] for c in coeffs]


# ----------------------------------------------------------------------------------------------
# reference path: autodiff through neural-tangents' kernel_fn
# ----------------------------------------------------------------------------------------------
def _directional(f: Callable, arg: int, direction: jax.Array) -> Callable:
    def g(x1, x2):
        primals = (x1, x2)
        tangents = (direction, jnp.zeros_like(x2)) if arg == 0 else (jnp.zeros_like(x1), direction)
        return jax.jvp(f, primals, tangents)[1]

    return g


def operator_kernel_autodiff(
    net: MLP,
    T: Operator | BoundOperator,
    x1,
    S: Operator | BoundOperator | None = None,
    x2=None,
    *,
    get: str = "ntk",
) -> jax.Array:
    """Reference ``T_x S_{x'} Θ`` by nested forward-mode autodiff through ``net.kernel_fn``.

    Every row of ``x1`` is perturbed along one coordinate at once (``K[i, j]`` depends only on
    ``x1_i`` and ``x2_j``), so one nested JVP gives ``∂_x^α ∂_{x'}^β K`` for the whole matrix.
    Slow to compile for high orders; used to check :func:`operator_kernel` and as a fallback.
    """
    x1, x2, T_op, S_op, a_vals, b_vals = _prepare(net, T, x1, S, x2)
    kernel_fn = net.kernel_fn

    def base(a, b):
        return kernel_fn(a, b, get)

    out = jnp.zeros((x1.shape[0], x2.shape[0]))
    for alpha, _ in T_op.terms:
        for beta, _ in S_op.terms:
            f = base
            for arg, (idx, x) in ((0, (alpha, x1)), (1, (beta, x2))):
                for i, k in enumerate(idx):
                    e = jnp.zeros_like(x).at[:, i].set(1.0)
                    for _ in range(k):
                        f = _directional(f, arg, e)
            K = jax.jit(f)(x1, x2)
            out = out + a_vals[alpha][:, None] * b_vals[beta][None, :] * K
    return out
