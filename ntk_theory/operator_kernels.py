"""Operator-applied NTKs ``K_{T,S}(x, x') = T_x S_{x'} Θ(x, x')``.

For ``T = Σ_α a_α(x) ∂^α`` and ``S = Σ_β b_β(x') ∂^β``

.. math::
    K_{T,S}(x, x') = \\sum_{α,β} a_α(x)\\, b_β(x')\\, ∂_x^α ∂_{x'}^β Θ(x, x'),

and the engine (:mod:`ntk_theory._engine`) propagates truncated Taylor polynomials in
``(dx, dx')`` -- with the support of exactly the multi-indices ``T`` and ``S`` need -- through the
layer recursion, so the partials are read off as Taylor coefficients: no symbolic chain rule, no
polynomial weights that cancel at large inputs. Derivatives of each layer's Gaussian
expectations come from Price's theorem (:mod:`ntk_theory.activations`), exact on the diagonal.

The reference path, :func:`operator_kernel_autodiff`, differentiates neural-tangents'
``kernel_fn`` in ``x`` directly (all rows perturbed at once: ``K[i, j]`` depends only on
``x_i, x'_j``; DESIGN.md fact 5); its activation layers evaluate every entry on its own, so it
shares neither the jets nor the Mehler tables with the primary path.

References: Gan, Li, Lin, Shi (arXiv 2503.11029), the operator NTK ``T_x T_{x'} K``;
Wang, Yu, Perdikaris (arXiv 2007.14527), eq. (4.5)-(4.7), the PINN blocks.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _engine, _jets
from .networks import MLP, check_points
from .operators import BoundOperator, Operator, OperatorError

__all__ = ["operator_kernel", "operator_kernel_autodiff"]

MultiIndex = tuple[int, ...]
#: Rows/columns per block under ``jit``: the jet arithmetic streams dozens of block-sized
#: temporaries, and 128 x 128 float64 blocks (128 KiB) stay in cache -- 1.8x faster than 512
#: at N = 2000 (benchmarks/operator_kernel.py); eager evaluation pays per op, so it uses larger
#: blocks.
DEFAULT_BLOCK = 128
EAGER_BLOCK = 512
#: Jets with more monomials than this are evaluated op by op instead of under ``jit``: the
#: unrolled Taylor arithmetic of large supports (a 3-D Laplacian pair has 49 monomials, a 2-D
#: biharmonic pair 196) takes XLA minutes to compile but runs eagerly in seconds per block.
JIT_MAX_MONOMIALS = 36


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


def _prepare(net: MLP, T, x1, S, x2, compose: bool = True):
    """Validate points and operators (S defaults to T) and evaluate their coefficients.

    With ``compose`` and a network with an output transform ``u = g + D N``, the operators are
    replaced by ``T∘D`` and ``S∘D`` (they then act on ``N``, whose kernel the engine computes).
    """
    S = T if S is None else S
    x1, x2 = check_points(x1, x2)
    T_op, T_fields = _unbind(T, x1.shape[0], "T")
    S_op, S_fields = _unbind(S, x2.shape[0], "S")
    _check_dims(T_op, x1, "T")
    _check_dims(S_op, x2, "S")
    net.check_dim(x1.shape[1])
    if compose and net.output_transform is not None:
        same = S_op is T_op
        T_op = net.output_transform.compose(T_op)
        S_op = T_op if same else net.output_transform.compose(S_op)
    outputs = getattr(net, "outputs", 1)
    for op, name in ((T_op, "T"), (S_op, "S")):
        if len(op.functions) > 1 and len(op.functions) != outputs:
            raise OperatorError(
                f"{name} acts on {len(op.functions)} unknowns {op.functions} but the network has "
                f"{outputs} output(s); use a network with outputs={len(op.functions)}."
            )
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
    if block_size is not None and (
        isinstance(block_size, bool)
        or not isinstance(block_size, (int, np.integer))
        or block_size < 1
    ):
        raise ValueError(
            f"block_size must be a positive integer (rows/columns per block), got {block_size!r}."
        )
    symmetric = S is None and x2 is None
    x1, x2, T_op, S_op, a_vals, b_vals = _prepare(net, T, x1, S, x2)
    terms_t, terms_s = T_op.keys, S_op.keys
    support = kernel_support(terms_t, terms_s)
    jit = len(support) <= JIT_MAX_MONOMIALS
    if block_size is None:
        block_size = DEFAULT_BLOCK if jit else EAGER_BLOCK
    K = _engine.kernel_blocks(
        net,
        np.asarray(x1),
        np.asarray(x2),
        terms_t,
        terms_s,
        [np.asarray(a_vals[key]) for key in terms_t],
        [np.asarray(b_vals[key]) for key in terms_s],
        support,
        get=get,
        symmetric=symmetric,
        block_size=int(block_size),
        jit=jit,
        order=max(T_op.order, S_op.order),
    )
    return jnp.asarray(K)


def kernel_support(terms_t, terms_s) -> frozenset:
    """Jet support of ``T_x S_x' Θ``: the union over unknowns ``f`` of
    ``closure(α of T_f) × closure(β of S_f)`` (outputs are independent at infinite width)."""
    out: set = set()
    for f in {k[0] for k in terms_t} & {k[0] for k in terms_s}:
        alphas = [a for g, a in terms_t if g == f]
        betas = [b for g, b in terms_s if g == f]
        out |= _jets.support(alphas, betas)
    if not out:
        raise OperatorError(
            "T and S act on different unknowns, so T_x S_x' Θ vanishes identically "
            "(the outputs of an infinitely wide network are independent)."
        )
    return frozenset(out)


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
    x1, x2, T_op, S_op, a_vals, b_vals = _prepare(net, T, x1, S, x2, compose=False)
    kernel_fn = net.kernel_fn

    def base(a, b):
        return kernel_fn(a, b, get)

    out = jnp.zeros((x1.shape[0], x2.shape[0]))
    for (fa, alpha), _ in T_op.terms:
        for (fb, beta), _ in S_op.terms:
            if fa != fb:
                continue
            f = base
            for arg, (idx, x) in ((0, (alpha, x1)), (1, (beta, x2))):
                for i, k in enumerate(idx):
                    e = jnp.zeros_like(x).at[:, i].set(1.0)
                    for _ in range(k):
                        f = _directional(f, arg, e)
            K = jax.jit(f)(x1, x2)
            out = out + a_vals[(fa, alpha)][:, None] * b_vals[(fb, beta)][None, :] * K
    return out
