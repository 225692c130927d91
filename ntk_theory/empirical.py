"""Empirical (finite-width) NTKs, plain and operator-applied, of our MLP and of any JAX model.

Our plain :class:`MLP` takes the layer-wise contraction below; any other model (``f(params, x)``,
Flax NNX, Equinox; :mod:`ntk_theory.models`), and an ``MLP`` with an embedding, several outputs or
an output transform (its finite network, :meth:`MLP.finite`), takes chunked Jacobian-Jacobian
products (:func:`empirical_ntk`).

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

from .models import ModelError, as_float64, check_params, wrap
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
    model,
    x1,
    x2=None,
    *,
    T: Operator | BoundOperator | None = None,
    S: Operator | BoundOperator | None = None,
    params=None,
    width: int | None = None,
    seed: int = 0,
    output: int | None = None,
    batch: int = 32,
    memory_gb: float = 1.0,
) -> jax.Array:
    """Empirical NTK ``⟨∂_θ (T u_θ)(x), ∂_θ (S u_θ)(x')⟩`` of a finite network, any JAX model.

    .. math::
        K(x, x') = \\sum_p \\frac{∂(T u_θ)(x)}{∂θ_p}\\, \\frac{∂(S u_θ)(x')}{∂θ_p}

    Our :class:`MLP` takes its layer-wise path (module docstring): memory
    ``O(N · layers · channels · width)``. Every other model (a function ``f(params, x)`` of one
    point, a Flax NNX or an Equinox module; :mod:`ntk_theory.models`) takes chunked
    Jacobian-Jacobian products: rows of ``J = ∂(T u_θ)(x_i)/∂θ`` are formed ``b`` points at a
    time and contracted block by block, never the full ``N × P`` Jacobian. With ``P`` parameters
    the peak memory is about

    .. math::
        8\\,\\mathrm{bytes} \\times \\big(2 b P + N_1 N_2\\big)\\,(\\times\\ \\text{the autodiff work space of } b
        \\text{ points}), \\qquad b = \\min(\\mathtt{batch},\\ \\lfloor \\mathtt{memory\\_gb}\\cdot 2^{30} / (16 P)\\rfloor),

    plus ``8 N_2 P`` bytes when all of ``x2``'s rows fit in ``memory_gb`` (they are then kept
    instead of recomputed for every block row).

    Args:
        model: our :class:`MLP` (with ``width`` or ``params``), a function ``f(params, x)`` of one
            point ``x: (d,)`` (with ``params``), or a Flax NNX / Equinox module (its own
            parameters unless ``params`` replace them).
        x1: ``(n1, d)`` points; ``x2``: ``(n2, d)`` points (default ``x1``).
        T: operator applied to the network output at ``x1`` (default: identity). An operator
            over several unknowns (``functions=("u", "v", ...)``) acts on a model's outputs in
            that order.
        S: operator at ``x2`` (default: ``T``), for PINN cross blocks.
        params: parameters (e.g. after training). For an ``MLP``: neural-tangents' layer list of
            ``model.finite(width)``; default: initialize with ``seed``.
        width: hidden width of an ``MLP`` (required unless ``params`` are given; must match them).
        seed: initialization seed of an ``MLP`` (neural-tangents' ``init_fn``).
        output: for a model with several outputs and a one-unknown operator, which output is
            ``u``.
        batch: points per vectorized batch (an upper bound for the chunk ``b``).
        memory_gb: budget for the Jacobian chunks of a generic model.

    Returns:
        ``(n1, n2)`` float64 array.

    Raises:
        ModelError: params that do not fit the model or are not finite, a model whose output is
            not one number per point (without ``output=``), an unknown model type.

    Example:
        >>> K = empirical_ntk(MLP(2, "erf"), x, T=derivative(("x",), "x", 2), width=4096)
        >>> K = empirical_ntk(lambda p, x: jnp.tanh(x @ p["w"]) @ p["v"], x, params=p)
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(
            f"batch must be a positive integer (points per vectorized batch), got {batch!r}."
        )
    if not (isinstance(memory_gb, (int, float)) and memory_gb > 0 and math.isfinite(memory_gb)):
        raise ValueError(f"memory_gb must be a positive number, got {memory_gb!r}.")
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
    c1 = np.stack(list(T_op.coefficient_values(x1, T_fields).values()), axis=1)
    c2 = (
        c1
        if same and S_op is T_op
        else np.stack(list(S_op.coefficient_values(x2, S_fields).values()), axis=1)
    )
    if isinstance(model, MLP) and not model.plain:
        model, params = _as_function(model, params, width, d, seed)
        width = None
    if not isinstance(model, MLP):
        if width is not None:
            raise ModelError(
                "width= applies to an MLP only; a user model's width is in its parameters."
            )
        w = wrap(model, params, output)
        check_params(w.params)
        theta = as_float64(w.params)
        for op in (T_op, S_op):
            _check_outputs(w, theta, op, x1[0], output)
        return _generic_ntk(
            w, theta, T_op, c1, x1, S_op, c2, x2, same and S_op is T_op, batch, memory_gb
        )
    if output is not None:
        raise ModelError("output= selects an output of a multi-output model; an MLP has one.")
    params = _mlp_params(model, params, width, d, seed)
    model.act.check_operator_orders(T_op.order, S_op.order)
    A1, G1 = _batched_features(model, params, T_op, c1, x1, batch)
    if same and S_op is T_op:
        A2, G2 = A1, G1
    else:
        A2, G2 = _batched_features(model, params, S_op, c2, x2, batch)
    if model.parameterization == "standard":
        scales = [(1.0, 1.0) for _ in A1]
    else:
        scales = [(model.W_std**2 / W.shape[0], model.b_std**2) for W, _ in _dense_params(params)]
    return _contract(A1, G1, A2, G2, scales)


# ----------------------------------------------------------------------------------------------
# generic models: chunked Jacobian-Jacobian products
# ----------------------------------------------------------------------------------------------
def _check_outputs(w, theta, op: Operator, x0, output) -> None:
    """One evaluation at ``x0``: the model returns what the operator needs."""
    y = jax.eval_shape(lambda t, p: w.apply(w.static, t, w.aux, p), theta, jnp.asarray(x0))
    size = math.prod(y.shape)
    m = len(op.functions)
    if m == 1 and y.shape != ():
        if output is None:
            raise ModelError(
                f"The model returns {size} outputs per point; pass output=k to choose u, or an "
                f"operator over {size} unknowns (Operator.parse(..., functions=(...)))."
            )
    if m > 1 and (y.shape != (m,) or output is not None):
        raise ModelError(
            f"The operator acts on {m} unknowns {op.functions}; the model must return a vector of "
            f"{m} outputs per point (got shape {y.shape}) and output= must not be set."
        )


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jacobian_rows(apply, static, op: Operator, theta, aux, x, c):
    """Rows ``∂(T u_θ)(x_i)/∂θ`` of a chunk of points, as a pytree of ``(b, *leaf)`` arrays."""

    def F(t, xi, ci):
        return apply_at(op, lambda p: apply(static, t, aux, p), xi, ci)

    return jax.vmap(jax.grad(F), (None, 0, 0))(theta, x, c)


@jax.jit
def _gram(J1, J2):
    """``Σ_leaves J1 J2ᵀ`` of two chunks of Jacobian rows."""
    return sum(
        jnp.einsum("ip,jp->ij", a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))
        for a, b in zip(jax.tree_util.tree_leaves(J1), jax.tree_util.tree_leaves(J2), strict=True)
    )


def _generic_ntk(w, theta, T_op, c1, x1, S_op, c2, x2, symmetric, batch, memory_gb):
    P = sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(theta))
    budget = memory_gb * 2**30
    b = int(max(1, min(batch, budget // (16 * P), max(len(x1), len(x2)))))

    def chunks(x, c):
        n = len(x)
        idx = np.minimum(np.arange(-(-n // b) * b), n - 1)  # whole chunks: one compiled shape
        xs, cs = np.asarray(x)[idx], np.asarray(c)[idx]
        return [(s, min(s + b, n), xs[s : s + b], cs[s : s + b]) for s in range(0, len(idx), b)]

    rows, cols = chunks(x1, c1), chunks(x2, c2)
    keep = 8.0 * len(x2) * P <= budget
    cache: dict[int, object] = {}

    def col(j):
        if j in cache:
            return cache[j]
        _, _, xs, cs = cols[j]
        J = _jacobian_rows(w.apply, w.static, S_op, theta, w.aux, xs, cs)
        if keep:
            cache[j] = J
        return J

    K = np.empty((len(x1), len(x2)))
    for i, (r0, r1, xs, cs) in enumerate(rows):
        J1 = col(i) if symmetric else _jacobian_rows(w.apply, w.static, T_op, theta, w.aux, xs, cs)
        for j, (s0, s1, _, _) in enumerate(cols):
            if symmetric and j < i:
                continue
            blk = np.asarray(_gram(J1, J1 if (symmetric and i == j) else col(j)))
            K[r0:r1, s0:s1] = blk[: r1 - r0, : s1 - s0]
            if symmetric and j > i:
                K[s0:s1, r0:r1] = blk[: r1 - r0, : s1 - s0].T
        if symmetric:
            cache.pop(i, None)  # row i is finished: its chunk is not needed again
    return jnp.asarray(K)


def _mlp_params(net: MLP, params, width: int | None, d: int, seed: int):
    """The parameters of an MLP's finite network: ``params`` checked against ``net`` (and
    ``width``), or a fresh initialization with ``seed``."""
    if width is None and params is None:
        raise ValueError("Pass width= (to initialize the network) or params= (trained parameters).")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(f"width must be a positive integer, got {width!r}.")
    net.check_dim(d)
    if params is None:
        return init_params(net, width, d, seed)
    _check_params(net, params, d, width)
    return params


def _as_function(net: MLP, params, width: int | None, d: int, seed: int):
    """An MLP with an embedding, several outputs or an output transform as the function
    ``f(params, x)`` of one point (its finite network, :meth:`MLP.finite`) and its parameters:
    such networks take the generic path."""
    return _mlp_function(net), _mlp_params(net, params, width, d, seed)


@functools.cache
def _mlp_function(net: MLP) -> Callable:
    """``f(params, x)`` of one point for ``net``'s finite network; one object per network, so
    compiled Jacobian programs are shared across seeds and widths of the same shapes
    (neural-tangents' Dense apply reads the width from the parameters)."""
    _, apply_fn = net.finite(1)
    outputs = net.outputs

    def f(p, x):
        out = apply_fn(p, x[None, :])[0]
        return out[0] if outputs == 1 else out

    return f


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
    fan_in = model.fan_in(d)
    if shapes[0][0] != fan_in:
        what = (
            f"the points have {d}" if model.embedding is None else f"the embedding gives {fan_in}"
        )
        raise ValueError(f"params expect inputs of dimension {shapes[0][0]}, {what}.")
    if shapes[-1][1] != model.outputs:
        raise ValueError(
            f"params have {shapes[-1][1]} output(s), the network {model.outputs}; params must come "
            "from model.finite(width) of this network."
        )
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
