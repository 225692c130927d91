"""Empirical (finite-width) NTKs, plain and operator-applied, by layer-wise contraction.

For a finite network ``u_θ`` and a linear operator ``T``, the empirical operator NTK is
``K(x, x') = ⟨∂_θ (T u_θ)(x), ∂_θ (S u_θ)(x')⟩``. Materializing the Jacobian costs
``N × P`` memory (13 GB for 100 points of a width-4096 network; DESIGN.md fact 6). We never
form it. A Dense layer ``z = c_W h W + c_b b`` enters ``F = (T u_θ)(x_0)`` only through the
x-derivatives ``∂^γ z(x_0)`` (``|γ| ≤ order T``), so

.. math::
    \\frac{∂F}{∂W} = c_W \\sum_γ ∂^γ h(x_0) ⊗ g_γ, \\qquad
    g_γ = \\frac{∂F}{∂(∂^γ z)(x_0)}, \\qquad \\frac{∂F}{∂b} = c_b\\, g_0,

and the NTK contracts layer by layer:

.. math::
    K(x_i, x_j) = \\sum_l c_W^2 \\sum_{γ,γ'} ⟨∂^γ h_i, ∂^{γ'} h_j⟩⟨g_{γ,i}, g_{γ',j}⟩
                 + c_b^2 ⟨g_{0,i}, g_{0,j}⟩.

The ``g_γ`` come from one reverse pass: we add ``Σ_γ ε_γ (x - x_0)^γ / γ!`` to each layer's
pre-activation (which shifts ``∂^γ z(x_0)`` by ``ε_γ`` and nothing else) and differentiate
``F`` with respect to the ``ε``'s at zero. Memory is ``O(N · layers · channels · width)``.

The network, its parameter layout and its initialization are neural-tangents'
(:meth:`MLP.finite`), so the analytic kernel of the same :class:`MLP` is the width → ∞ limit.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .networks import MLP, check_points
from .operator_kernels import _check_dims, _unbind
from .operators import BoundOperator, Operator, apply_at, identity, partial_derivative

__all__ = ["empirical_ntk", "init_params"]


def init_params(net: MLP, width: int, dim: int, seed: int = 0):
    """neural-tangents parameters of ``net.finite(width)`` for inputs of dimension ``dim``."""
    init_fn, _ = net.finite(width)
    _, params = init_fn(jax.random.PRNGKey(seed), (-1, dim))
    return params


def _dense_params(params) -> list[tuple[jax.Array, jax.Array]]:
    return [p for p in params if isinstance(p, (tuple, list)) and len(p) == 2]


def _channels(order: int, d: int) -> list[tuple[int, ...]]:
    return [g for g in itertools.product(range(order + 1), repeat=d) if sum(g) <= order]


def _monomial(x, x0, gamma) -> jax.Array:
    out = jnp.ones(())
    for i, k in enumerate(gamma):
        if k:
            out = out * (x[i] - x0[i]) ** k / math.factorial(k)
    return out


def _features(net: MLP, params, op: Operator, coeffs: dict, x: jax.Array):
    """Per point: ``(A, G)`` lists over layers; ``A[l]: (C, n_in)``, ``G[l]: (C, n_out)``."""
    dense = _dense_params(params)
    act = net.act.fn
    standard = net.parameterization == "standard"
    chans = _channels(op.order, x.shape[0])

    def scales(W):
        if standard:
            return 1.0, 1.0
        return net.W_std / math.sqrt(W.shape[0]), net.b_std

    def layer_inputs(p):
        """Inputs h_{l-1}(p) of every Dense layer."""
        hs, h = [], p
        for l, (W, b) in enumerate(dense):
            hs.append(h)
            cw, cb = scales(W)
            z = cw * (h @ W) + cb * b.reshape(-1)
            h = act(z) if l < len(dense) - 1 else z
        return hs

    def u(p, x0, eps):
        h = p
        for l, (W, b) in enumerate(dense):
            cw, cb = scales(W)
            z = cw * (h @ W) + cb * b.reshape(-1)
            z = z + sum(eps[l][c] * _monomial(p, x0, g) for c, g in enumerate(chans))
            h = act(z) if l < len(dense) - 1 else z
        return h[0]

    def F(eps, x0, cvals):
        return apply_at(op, lambda p: u(p, x0, eps), x0, cvals)

    eps0 = [jnp.zeros((len(chans), W.shape[1])) for W, _ in dense]
    G = jax.grad(F)(eps0, x, coeffs)
    A = []
    for l in range(len(dense)):
        rows = [partial_derivative(lambda p, l=l: layer_inputs(p)[l], x, g) for g in chans]
        A.append(jnp.stack(rows))
    cw = [scales(W) for W, _ in dense]
    return A, G, cw


@functools.cache
def _features_fn(net: MLP, op: Operator) -> Callable:
    """Jitted, vmapped :func:`_features` per ``(net, operator)``; parameters are an argument,
    so training loops that recompute the kernel do not re-trace or re-compile."""
    return jax.jit(
        jax.vmap(lambda params, xi, ci: _features(net, params, op, ci, xi)[:2], (None, 0, 0))
    )


def _batched_features(net, params, op, coeff_values, x, batch: int):
    fn = _features_fn(net, op)
    n = x.shape[0]
    batch = min(batch, n)
    # Pad to whole batches (repeating the last point) so every call has one compiled shape.
    idx = np.minimum(np.arange(-(-n // batch) * batch), n - 1)  # on the host: no compilation
    x, coeff_values = np.asarray(x)[idx], np.asarray(coeff_values)[idx]
    A_parts, G_parts = [], []
    for start in range(0, x.shape[0], batch):
        sl = slice(start, start + batch)
        A, G = fn(params, x[sl], coeff_values[sl])
        A_parts.append(A)
        G_parts.append(G)
    A = [jnp.concatenate([a[l] for a in A_parts])[:n] for l in range(len(A_parts[0]))]
    G = [jnp.concatenate([g[l] for g in G_parts])[:n] for l in range(len(G_parts[0]))]
    return A, G


def empirical_ntk(
    model: MLP,
    x1,
    x2=None,
    *,
    T: Operator | BoundOperator | None = None,
    S: Operator | BoundOperator | None = None,
    params=None,
    width: int | None = None,
    seed: int = 0,
    batch: int = 32,
) -> jax.Array:
    """Empirical NTK ``⟨∂_θ (T u_θ)(x), ∂_θ (S u_θ)(x')⟩`` of a finite network.

    .. math::
        K(x, x') = \\sum_p \\frac{∂(T u_θ)(x)}{∂θ_p}\\, \\frac{∂(S u_θ)(x')}{∂θ_p}

    Args:
        model: the network specification (same architecture as the analytic kernel).
        x1: ``(n1, d)`` points; ``x2``: ``(n2, d)`` points (default ``x1``).
        T: operator applied to the network output at ``x1`` (default: identity).
        S: operator at ``x2`` (default: ``T``), for PINN cross blocks.
        params: parameters to use (e.g. after training); default: initialize ``model.finite(width)``
            with ``seed``.
        width: hidden width ``≥ 1`` (required unless ``params`` are given; then it must match).
        seed: initialization seed (neural-tangents' ``init_fn``), used without ``params``.
        batch: points per vectorized batch (bounds memory).

    Returns:
        ``(n1, n2)`` float64 array.

    Example:
        >>> K = empirical_ntk(MLP(2, "erf"), x, T=derivative(("x",), "x", 2), width=4096)
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(
            f"batch must be a positive integer (points per vectorized batch), got {batch!r}."
        )
    if width is None and params is None:
        raise ValueError("Pass width= (to initialize the network) or params= (trained parameters).")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(f"width must be a positive integer, got {width!r}.")
    same = x2 is None
    x1, x2 = check_points(x1, x2)
    d = x1.shape[1]
    coords = tuple(f"x{i}" for i in range(d))
    T = identity(coords) if T is None else T
    S = T if S is None else S
    T_op, T_fields = _unbind(T, x1.shape[0], "T")
    S_op, S_fields = _unbind(S, x2.shape[0], "S")
    _check_dims(T_op, x1, "T")
    _check_dims(S_op, x2, "S")
    model.act.check_operator_orders(T_op.order, S_op.order)
    if params is None:
        params = init_params(model, width, d, seed)
    else:
        _check_params(model, params, d, width)
    c1 = np.stack(list(T_op.coefficient_values(x1, T_fields).values()), axis=1)
    A1, G1 = _batched_features(model, params, T_op, c1, x1, batch)
    if same and S_op is T_op:
        A2, G2 = A1, G1
    else:
        c2 = np.stack(list(S_op.coefficient_values(x2, S_fields).values()), axis=1)
        A2, G2 = _batched_features(model, params, S_op, c2, x2, batch)
    if model.parameterization == "standard":
        scales = [(1.0, 1.0) for _ in A1]
    else:
        scales = [(model.W_std**2 / W.shape[0], model.b_std**2) for W, _ in _dense_params(params)]
    return _contract(A1, G1, A2, G2, scales)


def _check_params(model: MLP, params, d: int, width: int | None) -> None:
    """``params`` must be the layer list of ``model.finite(width)`` for inputs of dimension ``d``."""
    dense = _dense_params(params) if isinstance(params, (list, tuple)) else []
    expected = model.depth + 1
    if len(dense) != expected:
        raise ValueError(
            f"params do not fit {model}: expected neural-tangents' layer list with {expected} Dense "
            f"(W, b) pairs (from model.finite(width) / init_params), got {type(params).__name__}"
            f"{'' if not isinstance(params, (list, tuple)) else f' with {len(dense)} Dense pairs'}."
        )
    shapes = [np.shape(W) for W, _ in dense]
    if shapes[0][0] != d:
        raise ValueError(f"params expect inputs of dimension {shapes[0][0]}, the points have {d}.")
    w = shapes[0][1]
    if width is not None and w != width:
        raise ValueError(f"width={width} but params have hidden width {w}; drop width= or fix it.")
    for W, b in dense:
        if not (np.all(np.isfinite(np.asarray(W))) and np.all(np.isfinite(np.asarray(b)))):
            raise ValueError("params contain NaN or infinite values.")


@jax.jit
def _contract(A1, G1, A2, G2, scales):
    """``Σ_l cw²_l ⟨A1_l A2_l⟩⟨G1_l G2_l⟩ + cb²_l ⟨G1_l G2_l⟩``: the layer-wise NTK sum, compiled
    once per shape (eagerly it is a dozen small compilations per call)."""
    K = 0.0
    for a1, g1, a2, g2, (cw2, cb2) in zip(A1, G1, A2, G2, scales, strict=True):
        gram_a = jnp.einsum("icn,jdn->ijcd", a1, a2)
        gram_g = jnp.einsum("icn,jdn->ijcd", g1, g2)
        K = K + cw2 * jnp.sum(gram_a * gram_g, axis=(2, 3)) + cb2 * gram_g[:, :, 0, 0]
    return K
