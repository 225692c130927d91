"""Users' own networks: a uniform ``apply(static, params, x)`` view of any JAX model, and the
analytic :class:`~ntk_theory.MLP` a model corresponds to.

Three kinds of model are accepted wherever a finite network is (``empirical_ntk``,
:class:`~ntk_theory.NTKTracker`):

* a function ``f(params, x)`` of **one point** ``x: (d,)`` returning a scalar, or a vector with
  one entry per output;
* a Flax NNX module (called on a batch of one point, ``model(x[None])[0]``), split by
  ``nnx.split`` into its graph definition and its ``nnx.Param`` state;
* an Equinox module (called on one point, ``model(x)``), split by ``eqx.partition`` into
  inexact arrays and the rest.

Flax and Equinox are optional (``pip install ntk-theory[flax]`` / ``[equinox]``); they are
imported only when such a model is passed.

**Matching theory.** A user's network in the standard parameterization,
``z^{l+1} = W^l φ(z^l) + b^l`` with ``W^l_{ij} ~ N(0, σ_w²/fan_in)`` and ``b^l ~ N(0, σ_b²)``,
is neural-tangents' ``parameterization="standard"`` MLP with those ``σ_w, σ_b`` (Lee et al.
2019, arXiv 1902.06720, eq. (1); Sohl-Dickstein et al. 2020, arXiv 2001.07301). The common
initializers give (:func:`init_scales`)

=================  =========================  ===========
initializer        ``Var W``                  ``σ_w``
=================  =========================  ===========
``lecun_normal``   ``1/fan_in``               ``1``
``lecun_uniform``  ``1/fan_in``               ``1``
``he_normal``      ``2/fan_in``               ``√2``
``he_uniform``     ``2/fan_in``               ``√2``
``glorot_*``       ``2/(fan_in + fan_out)``   ``1`` only if ``fan_in = fan_out``
``equinox``        ``1/(3 fan_in)``           ``1/√3``
=================  =========================  ===========

(Flax's ``nnx.Linear`` default is ``lecun_normal`` with zero biases; Equinox's ``Linear`` draws
weights and biases uniformly in ``±1/√fan_in``, so its bias scale differs per layer and has no
single ``σ_b``.) :func:`analytic_counterpart` reads the layers of a model, checks that its
forward pass *is* that MLP (so a skip connection or another structure is refused, never
silently mismatched), and returns the :class:`~ntk_theory.MLP`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .networks import MLP

__all__ = ["ModelError", "analytic_counterpart", "init_scales"]


class ModelError(ValueError):
    """A model, its parameters or its outputs do not fit what was asked."""


# ----------------------------------------------------------------------------------------------
# the uniform view: apply(static, params, x) with x one point
# ----------------------------------------------------------------------------------------------
def _select(y, output):
    """One output: the chosen entry, or the only one (a ``(1,)`` output is a scalar)."""
    y = jnp.asarray(y)
    if output is not None:
        return jnp.reshape(y, (-1,))[output]
    return jnp.reshape(y, ()) if y.size == 1 else y


def _apply_function(static, params, aux, x):
    f, output = static
    return _select(f(params, x), output)


def _apply_nnx(static, params, aux, x):
    from flax import nnx

    graphdef, output = static
    y = nnx.merge(graphdef, params, *aux)(x[None])
    return _select(jnp.reshape(y, y.shape[1:]), output)


def _apply_eqx(static, params, aux, x):
    import equinox as eqx

    skeleton, output = static
    return _select(eqx.combine(params, skeleton)(x), output)


@dataclass(frozen=True)
class Wrapped:
    """``apply(static, params, aux, x)`` for one point ``x``.

    ``static`` is hashable (it keys compiled code); ``aux`` holds non-parameter state (NNX
    variables other than ``nnx.Param``), passed along but not differentiated.
    """

    apply: Callable
    static: Any
    params: Any
    kind: str
    aux: Any = None


def _is_nnx(model) -> bool:
    return any(c.__module__.startswith("flax.nnx") for c in type(model).__mro__)


def _is_eqx(model) -> bool:
    return any(c.__module__.startswith("equinox") for c in type(model).__mro__)


def wrap(model, params=None, output: int | None = None) -> Wrapped:
    """The uniform view of a user model (see module docstring); ``params`` replace the model's
    own (an ``nnx.State`` of ``nnx.Param``, an Equinox parameter tree, or any pytree for a
    function)."""
    if output is not None and (
        isinstance(output, bool) or not isinstance(output, (int, np.integer)) or output < 0
    ):
        raise ModelError(f"output must be a non-negative integer index, got {output!r}.")
    if _is_nnx(model):
        from flax import nnx

        graphdef, own, *rest = nnx.split(model, nnx.Param, ...)
        params = own if params is None else params
        _same_structure(own, params, "the model's nnx.Param state (nnx.state(model, nnx.Param))")
        return Wrapped(_apply_nnx, (graphdef, output), params, "flax.nnx", tuple(rest))
    if _is_eqx(model):
        import equinox as eqx

        own, skeleton = eqx.partition(model, eqx.is_inexact_array)
        params = own if params is None else params
        _same_structure(own, params, "eqx.partition(model, eqx.is_inexact_array)[0]")
        return Wrapped(_apply_eqx, (skeleton, output), params, "equinox")
    if callable(model) and not isinstance(model, MLP):
        if params is None:
            raise ModelError(
                "A function model f(params, x) needs params=: the parameters to differentiate."
            )
        return Wrapped(_apply_function, (model, output), params, "function")
    raise ModelError(
        f"model must be an MLP, a function f(params, x) of one point, a Flax NNX module or an "
        f"Equinox module; got {type(model).__name__}."
    )


def _same_structure(own, given, what: str) -> None:
    s1, s2 = jax.tree_util.tree_structure(own), jax.tree_util.tree_structure(given)
    if s1 != s2:
        raise ModelError(f"params do not fit the model: expected the structure of {what}.")
    for a, b in zip(jax.tree_util.tree_leaves(own), jax.tree_util.tree_leaves(given), strict=True):
        if np.shape(a) != np.shape(b):
            raise ModelError(
                f"params do not fit the model: a leaf of shape {np.shape(b)} where the model has "
                f"{np.shape(a)}."
            )


def check_params(params) -> None:
    """Leaves must be finite float arrays (a NaN weight gives a NaN kernel, never silently)."""
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ModelError("params have no array leaves: nothing to differentiate.")
    for leaf in leaves:
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(f"params must be floating-point arrays, got dtype {arr.dtype}.")
        if not np.all(np.isfinite(arr)):
            raise ModelError("params contain NaN or infinite values.")


def as_float64(params):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), params)


# ----------------------------------------------------------------------------------------------
# matching theory
# ----------------------------------------------------------------------------------------------
_INIT_VARIANCE = {
    "lecun_normal": 1.0,
    "lecun_uniform": 1.0,
    "he_normal": 2.0,
    "he_uniform": 2.0,
    "kaiming_normal": 2.0,
    "kaiming_uniform": 2.0,
    "equinox": 1.0 / 3.0,
    "torch_default": 1.0 / 3.0,
}


def init_scales(init: str, fan_in: int, fan_out: int) -> float:
    """``σ_w`` of a weight initializer in the standard parameterization, ``Var W = σ_w²/fan_in``.

    .. math::
        σ_w^2 = \\mathrm{fan\\_in}\\cdot \\mathrm{Var}(W_{ij})

    Args:
        init: ``"lecun_normal"``, ``"lecun_uniform"``, ``"he_normal"``, ``"he_uniform"``,
            ``"glorot_normal"``, ``"glorot_uniform"`` or ``"equinox"`` (= ``"torch_default"``).
        fan_in, fan_out: the layer's input and output sizes.

    Returns:
        ``σ_w``.

    Raises:
        ModelError: Glorot with ``fan_in ≠ fan_out`` (its variance is not ``σ_w²/fan_in``
            with one ``σ_w`` for every layer), or an unknown name.

    Example:
        >>> init_scales("he_normal", 64, 64)
        1.4142135623730951
    """
    if init in ("glorot_normal", "glorot_uniform", "xavier_normal", "xavier_uniform"):
        if fan_in != fan_out:
            raise ModelError(
                f"{init} has Var W = 2/(fan_in + fan_out) = 2/({fan_in} + {fan_out}), not "
                f"σ_w²/fan_in: the analytic MLP needs one σ_w for all layers. Initialize with "
                f"lecun_normal or he_normal to compare with theory."
            )
        return 1.0
    if init not in _INIT_VARIANCE:
        known = sorted((*_INIT_VARIANCE, "glorot_normal", "glorot_uniform"))
        raise ModelError(f"Unknown initializer {init!r}; known: {', '.join(known)}.")
    return math.sqrt(_INIT_VARIANCE[init])


def _linear_layers(model) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(W (in, out), b)`` of every linear layer, in call order of construction."""
    if _is_nnx(model):
        from flax import nnx

        layers = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Linear)]
        return [
            (np.asarray(m.kernel[...]), None if m.bias is None else np.asarray(m.bias[...]))
            for m in layers
        ]
    if _is_eqx(model):
        import equinox as eqx

        leaves = jax.tree_util.tree_leaves(model, is_leaf=lambda m: isinstance(m, eqx.nn.Linear))
        return [
            (np.asarray(m.weight).T, None if m.bias is None else np.asarray(m.bias))
            for m in leaves
            if isinstance(m, eqx.nn.Linear)
        ]
    raise ModelError(
        f"analytic_counterpart reads Flax NNX and Equinox models; got {type(model).__name__}. "
        f"For a function f(params, x), build the MLP yourself (see init_scales)."
    )


def analytic_counterpart(
    model, activation: str, *, init: str = "lecun_normal", points=None, rtol: float = 1e-10
) -> MLP:
    """The infinite-width :class:`~ntk_theory.MLP` of a user's fully-connected model.

    Reads the model's linear layers, builds ``MLP(depth, activation, σ_w, σ_b,
    parameterization="standard", width=n)`` with ``σ_w`` from :func:`init_scales` and ``σ_b = 0``
    (zero-initialized biases, the Flax default), and checks that the finite network of that
    ``MLP`` with the model's weights reproduces the model's outputs at ``points`` -- so a skip
    connection, a different activation or a layer the reading missed is an error, not a silently
    different kernel.

    Args:
        model: a Flax NNX or Equinox model of one scalar output.
        activation: the activation's name in :data:`ntk_theory.ACTIVATIONS`.
        init: the weight initializer the model was created with (see :func:`init_scales`).
        points: ``(n, d)`` points for the forward check (default: 8 random points in [-1, 1]^d).
        rtol: relative tolerance of the forward check.

    Returns:
        The matching :class:`~ntk_theory.MLP` (standard parameterization).

    Raises:
        ModelError: no analytic counterpart here (unequal hidden widths, non-zero biases,
            several outputs, a forward pass that is not the MLP's), with the reason.

    Example:
        >>> net = analytic_counterpart(nnx_model, "tanh")   # MLP(2, tanh, 1.0, 0.0, standard)
    """
    layers = _linear_layers(model)
    if len(layers) < 2:
        raise ModelError(f"Found {len(layers)} linear layer(s); an MLP has at least two.")
    d = layers[0][0].shape[0]
    widths = {W.shape[1] for W, _ in layers[:-1]}
    if len(widths) != 1:
        raise ModelError(
            f"Hidden widths differ ({sorted(widths)}); the analytic MLP has one width."
        )
    if layers[-1][0].shape[1] != 1:
        raise ModelError(
            f"The last layer has {layers[-1][0].shape[1]} outputs; the analytic MLP has one."
        )
    for k, (_, b) in enumerate(layers):
        if b is not None and np.any(b != 0):
            raise ModelError(
                f"Layer {k} has non-zero biases at initialization; their scale differs per layer "
                f"(e.g. Equinox's ±1/√fan_in), so no single b_std matches. Zero the biases at "
                f"initialization (Flax's default) to compare with theory."
            )
    (width,) = widths
    W_std = init_scales(init, width, width)
    net = MLP(len(layers) - 1, activation, W_std, 0.0, parameterization="standard", width=width)
    params = []  # neural-tangents' layer list: Dense (W, b) with b of shape (1, out), then ()
    for W, b in layers:
        bias = np.zeros(W.shape[1]) if b is None else b
        params += [(jnp.asarray(W, jnp.float64), jnp.asarray(bias, jnp.float64).reshape(1, -1)), ()]
    params = params[:-1]
    _, apply_fn = net.finite(width)
    x = (
        np.random.default_rng(0).uniform(-1, 1, (8, d))
        if points is None
        else np.asarray(points, float)
    )
    ours = np.asarray(apply_fn(params, jnp.asarray(x))).reshape(-1)
    w = wrap(model)
    theirs = np.array([float(w.apply(w.static, w.params, w.aux, jnp.asarray(p))) for p in x])
    err = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    if not err <= rtol:
        raise ModelError(
            f"The model's outputs differ from MLP({len(layers) - 1}, {activation!r}) with its "
            f"weights by {err:.1e} (relative): it is not a plain fully-connected network with "
            f"that activation (a skip connection, normalization or another activation?), so it "
            f"has no analytic counterpart here."
        )
    return net
