"""Fully-connected network specifications and their infinite-width kernels.

:class:`MLP` is a frozen description of a fully-connected network (depth, activation,
weight/bias scales, parameterization). It hands out

* the neural-tangents ``kernel_fn`` and the NNGP/NTK matrices ``Σ`` and ``Θ`` (float64);
* the finite-width ``init_fn, apply_fn`` of the same architecture (:meth:`MLP.finite`);
* jets of ``Σ`` and ``Θ`` as functions of ``(⟨x,x'⟩, |x|², |x'|²)``
  (:meth:`MLP.kernel_jets`), which :mod:`ntk_theory.operator_kernels` uses to apply
  differential operators.

The recursion (neural-tangents' ``"ntk"`` parameterization, ``z^{l+1} = σ_w/√n W φ(z^l) + σ_b b``;
Jacot et al. 2018, arXiv 1806.07572, Thm. 1; Lee et al. 2019, arXiv 1902.06720, eq. (7)):

.. math::
    Σ^1(x,x') = \\tfrac{σ_w^2}{d}\\langle x,x'\\rangle + σ_b^2, \\qquad Θ^1 = Σ^1,

    Σ^{l+1} = σ_w^2\\, E[φ(u)φ(v)] + σ_b^2, \\qquad
    Θ^{l+1} = Σ^{l+1} + σ_w^2\\, E[φ'(u)φ'(v)]\\, Θ^l,

with ``(u, v) ~ N(0, Σ^l)``. ``depth`` counts hidden layers; the readout layer is linear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ._jets import Jet
from ._nt import stax
from ._precision import as_float64, require_x64
from .activations import Activation, get_activation

__all__ = ["MLP"]

_PARAMETERIZATIONS = ("ntk", "standard")


@dataclass(frozen=True)
class MLP:
    """A fully-connected network: ``depth`` hidden layers of ``activation``, linear readout.

    .. math::
        z^{1} = \\frac{σ_w}{\\sqrt{d}} W^0 x + σ_b b^0,\\quad
        z^{l+1} = \\frac{σ_w}{\\sqrt{n}} W^l φ(z^l) + σ_b b^l,\\quad
        u_θ(x) = z^{L+1}

    Args:
        depth: number of hidden layers ``L ≥ 1``.
        activation: a name from :data:`ntk_theory.ACTIVATIONS` (``"erf"``, ``"tanh"``,
            ``"sin"``, ``"gelu"``, ``"relu"``, ``"relu2"``, ``"relu3"``, ``"relu4"``) or an
            :class:`~ntk_theory.Activation`.
        W_std: weight scale ``σ_w > 0``.
        b_std: bias scale ``σ_b ≥ 0``.
        parameterization: ``"ntk"`` (default) or ``"standard"`` (neural-tangents' conventions;
            the standard-parameterization NTK depends on the hidden width, taken from
            ``width``).
        width: hidden width used by the ``"standard"`` parameterization's infinite-width NTK
            (ignored for ``"ntk"``, whose kernels do not depend on it).

    Example:
        >>> net = MLP(depth=3, activation="erf", W_std=1.3, b_std=0.2)
        >>> K = net.ntk(x)                    # (n, n) float64
        >>> init_fn, apply_fn = net.finite(2048)
    """

    depth: int
    activation: str | Activation
    W_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"
    width: int = field(default=512)

    def __post_init__(self):
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(
                f"depth must be an integer ≥ 1 (the number of hidden layers), got {self.depth!r}."
            )
        act = get_activation(self.activation)
        object.__setattr__(self, "activation", act.name if act.name in _registry() else act)
        if not float(self.W_std) > 0:
            raise ValueError(f"W_std must be positive, got {self.W_std!r}.")
        if not float(self.b_std) >= 0:
            raise ValueError(f"b_std must be non-negative, got {self.b_std!r}.")
        object.__setattr__(self, "W_std", float(self.W_std))
        object.__setattr__(self, "b_std", float(self.b_std))
        if self.parameterization not in _PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {_PARAMETERIZATIONS}, got "
                f"{self.parameterization!r}."
            )
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width must be a positive integer, got {self.width!r}.")

    def __repr__(self) -> str:
        act = self.act.name
        extra = f", width={self.width}" if self.parameterization == "standard" else ""
        return (
            f"MLP(depth={self.depth}, activation={act!r}, W_std={self.W_std}, "
            f"b_std={self.b_std}, parameterization={self.parameterization!r}{extra})"
        )

    # -- pieces --------------------------------------------------------------------------
    @property
    def act(self) -> Activation:
        """The :class:`Activation` object."""
        return get_activation(self.activation)

    def _stax(self, width: int):
        layers = []
        for _ in range(self.depth):
            layers += [
                stax.Dense(
                    width,
                    W_std=self.W_std,
                    b_std=self.b_std,
                    parameterization=self.parameterization,
                ),
                self.act.stax_layer(),
            ]
        layers.append(
            stax.Dense(
                1, W_std=self.W_std, b_std=self.b_std, parameterization=self.parameterization
            )
        )
        return stax.serial(*layers)

    @property
    def kernel_fn(self) -> Callable:
        """neural-tangents' ``kernel_fn(x1, x2, get)`` of this network (infinite width)."""
        return _cached_stax(self)[2]

    def finite(self, width: int) -> tuple[Callable, Callable]:
        """``(init_fn, apply_fn)`` of the same network with hidden width ``width``.

        ``init_fn(key, (-1, d))`` returns ``(output_shape, params)``; ``apply_fn(params, x)``
        maps ``(n, d)`` inputs to ``(n, 1)`` outputs.
        """
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}.")
        init_fn, apply_fn, _ = self._stax(width)
        return init_fn, apply_fn

    # -- kernels -------------------------------------------------------------------------
    def ntk(self, x1, x2=None) -> jax.Array:
        """The infinite-width NTK matrix ``Θ(x1_i, x2_j)``, shape ``(n1, n2)``, float64."""
        return self._kernel(x1, x2, "ntk")

    def nngp(self, x1, x2=None) -> jax.Array:
        """The infinite-width NNGP matrix ``Σ(x1_i, x2_j)``, shape ``(n1, n2)``, float64."""
        return self._kernel(x1, x2, "nngp")

    def _kernel(self, x1, x2, get: str) -> jax.Array:
        x1, x2 = check_points(x1, x2)
        fn = _jitted_kernel(self, get)
        n1, n2 = x1.shape[0], x2.shape[0]
        if n1 * n2 <= _BLOCK**2:
            return fn(x1, x2)
        # Blocks bound memory: a quadrature activation (tanh) evaluates ~10^4 nodes per entry.
        out = np.empty((n1, n2))
        for i0 in range(0, n1, _BLOCK):
            rows = _padded(x1, i0)
            for j0 in range(0, n2, _BLOCK):
                blk = np.asarray(fn(rows, _padded(x2, j0)))
                out[i0 : i0 + _BLOCK, j0 : j0 + _BLOCK] = blk[
                    : min(_BLOCK, n1 - i0), : min(_BLOCK, n2 - j0)
                ]
        return jnp.asarray(out)

    def kernel_jets(
        self, s: Jet, q1: Jet, q2: Jet, input_dim: int, *, scan: bool = False
    ) -> tuple[Jet, Jet]:
        """Jets of ``(Σ, Θ)`` as functions of ``(s, q, q') = (⟨x,x'⟩, |x|², |x'|²)``.

        Follows neural-tangents' layer conventions exactly (``Dense`` then activation), so
        the constant terms equal :meth:`nngp` and :meth:`ntk` to round-off.

        Args:
            s: jet of the inner products, values of shape ``(n1, n2)``.
            q1, q2: jets of the squared norms, values of shapes ``(n1, 1)`` and ``(1, n2)``.
            input_dim: ``d``; neural-tangents normalizes the input covariance by it.
            scan: run hidden layers 2..L as one ``lax.scan`` body (for use under ``jit``: the
                compiled program then has two layer bodies whatever the depth, which keeps
                compile time flat; results are identical).

        Returns:
            ``(nngp, ntk)`` jets with values of shape ``(n1, n2)``.
        """
        w2, b2 = self.W_std**2, self.b_std**2
        standard = self.parameterization == "standard"
        act = self.act

        def dense(e12, e11, e22, ntk_in, fan_in):
            """Dense layer on post-activation covariances ``e``: pre-activation ``Σ`` and ``Θ``."""
            s12, s11, s22 = e12 * w2 + b2, e11 * w2 + b2, e22 * w2 + b2
            if standard:  # neural-tangents Dense, "standard": Θ = n_in Σ_in + σ_w² Θ_in + 1
                ntk = e12 * fan_in + 1.0
                if ntk_in is not None:
                    ntk = ntk + ntk_in * w2
            else:  # "ntk": Θ = Σ + σ_w² Θ_in
                ntk = s12 if ntk_in is None else s12 + ntk_in * w2
            return s12, s11, s22, ntk

        def hidden(state, fan_in):
            """Dense + activation: post-activation ``(e12, e11, e22)`` and ``Θ · E[φ'φ']``."""
            s12, s11, s22, ntk = dense(*state, fan_in)
            e12, edot = act.dual(s11, s12, s22)
            return e12, act.dual(s11, s11, s11)[0], act.dual(s22, s22, s22)[0], ntk * edot

        # Covariances entering the first Dense layer: ⟨x,x'⟩/d (neural-tangents' convention).
        state = (s * (1.0 / input_dim), q1 * (1.0 / input_dim), q2 * (1.0 / input_dim), None)
        state = hidden(state, float(input_dim))
        width = float(self.width)
        if scan and self.depth >= 3:
            state = _scan_layers(lambda st: hidden(st, width), state, self.depth - 1)
        else:
            for _ in range(self.depth - 1):
                state = hidden(state, width)
        s12, _, _, ntk = dense(*state, width)
        return s12, ntk


def _scan_layers(body: Callable, state: tuple[Jet, ...], length: int) -> tuple[Jet, ...]:
    """``body`` applied ``length`` times as one ``lax.scan`` (hidden layers 2..L).

    A scan carry keeps its keys and shapes: every coefficient is broadcast to its jet's shape
    after the first layer and a step's output is padded to that layout (missing keys are
    zero). If a layer's output does not fit the layout, the layers are unrolled instead.
    """
    support = state[0].support
    layout = [
        (sorted(j.coeffs), jnp.broadcast_shapes(*(jnp.shape(c) for c in j.coeffs.values())))
        for j in state
    ]

    def pack(jets) -> list[dict]:
        out = []
        for jet, (keys, shape) in zip(jets, layout, strict=True):
            if set(jet.coeffs) - set(keys) or any(
                jnp.broadcast_shapes(jnp.shape(c), shape) != shape for c in jet.coeffs.values()
            ):
                raise _LayoutChanged
            zero = jnp.zeros((), jnp.float64)
            out.append({m: jnp.broadcast_to(jet.coeffs.get(m, zero), shape) for m in keys})
        return out

    def step(carry, _):
        return pack(body(tuple(Jet(c, support) for c in carry))), None

    try:
        carry, _ = jax.lax.scan(step, pack(state), None, length=length)
    except _LayoutChanged:
        for _ in range(length):
            state = body(state)
        return state
    return tuple(Jet(c, support) for c in carry)


class _LayoutChanged(Exception):
    """A hidden layer changed the jets' keys or shapes, so the layers cannot share a scan body."""


#: Rows/columns per block of :meth:`MLP.ntk` for large inputs (one compiled block shape).
_BLOCK = 256


def _padded(x: jax.Array, start: int) -> jax.Array:
    idx = jnp.minimum(jnp.arange(start, start + _BLOCK), x.shape[0] - 1)
    return x[idx]


def _registry():
    from .activations import ACTIVATIONS

    return ACTIVATIONS


_STAX_CACHE: dict[MLP, tuple] = {}
_JIT_CACHE: dict[tuple[MLP, str], Callable] = {}


def _cached_stax(net: MLP):
    if net not in _STAX_CACHE:
        _STAX_CACHE[net] = net._stax(net.width)
    return _STAX_CACHE[net]


def _jitted_kernel(net: MLP, get: str) -> Callable:
    key = (net, get)
    if key not in _JIT_CACHE:
        kernel_fn = net.kernel_fn
        _JIT_CACHE[key] = jax.jit(lambda a, b: kernel_fn(a, b, get))
    return _JIT_CACHE[key]


def check_points(x1, x2=None, name1: str = "x1", name2: str = "x2"):
    """Validate and convert point sets: 2-D, finite, float64, matching dimensions."""
    require_x64()
    x1 = _as_points(x1, name1)
    if x2 is None:
        return x1, x1
    x2 = _as_points(x2, name2)
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"{name1} has points of dimension {x1.shape[1]} but {name2} of dimension "
            f"{x2.shape[1]}; both must be (n, d) arrays of the same d."
        )
    return x1, x2


def _as_points(x, name: str) -> jax.Array:
    x = as_float64(x, name)
    if x.ndim == 1:
        raise ValueError(
            f"`{name}` must be an (n, d) array of n points in R^d, got shape {x.shape}; for 1-D "
            f"inputs pass x[:, None]."
        )
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` must be a non-empty (n, d) array, got shape {x.shape}.")
    finite = np.isfinite(np.asarray(x)).all(axis=1)  # on the host: no compilation per shape
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(f"`{name}` contains {bad} point(s) with NaN or infinite coordinates.")
    return x
