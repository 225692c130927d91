"""Fully-connected network specifications and their infinite-width kernels.

:class:`MLP` is a frozen description of a fully-connected network (depth, activation,
weight/bias scales, parameterization). It hands out

* the NNGP/NTK matrices ``Σ`` and ``Θ`` (float64), computed by :mod:`ntk_theory._engine` --
  the same routine that gives every operator kernel;
* neural-tangents' ``kernel_fn`` of the same architecture (:attr:`MLP.kernel_fn`), an
  independent reference path whose activation layers evaluate every entry on its own;
* the finite-width ``init_fn, apply_fn`` of the same network (:meth:`MLP.finite`).

The recursion (neural-tangents' ``"ntk"`` parameterization, ``z^{l+1} = σ_w/√n W φ(z^l) + σ_b b``;
Jacot et al. 2018, arXiv 1806.07572, Thm. 1; Lee et al. 2019, arXiv 1902.06720, eq. (7)):

.. math::
    Σ^1(x,x') = \\tfrac{σ_w^2}{d}\\langle x,x'\\rangle + σ_b^2, \\qquad Θ^1 = Σ^1,

    Σ^{l+1} = σ_w^2\\, E[φ(u)φ(v)] + σ_b^2, \\qquad
    Θ^{l+1} = Σ^{l+1} + σ_w^2\\, E[φ'(u)φ'(v)]\\, Θ^l,

with ``(u, v) ~ N(0, Σ^l)``. ``depth`` counts hidden layers; the readout layer is linear.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import _engine
from ._nt import stax
from ._precision import as_float64, require_x64
from .activations import Activation, get_activation
from .constraints import OutputTransform
from .embeddings import Embedding

__all__ = ["MLP"]

_PARAMETERIZATIONS = ("ntk", "standard")


def _finite_scale(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise ValueError(
            f"{name} must be finite, got {value!r} (an infinite scale gives NaN kernels)."
        )
    return v


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
            ``"sin"``, ``"gelu"``, ``"relu"``, ``"relu2"``, ``"relu3"``, ``"relu4"``,
            ``"sigmoid"``, ``"silu"``, ``"softplus"``) or an :class:`~ntk_theory.Activation`.
        W_std: weight scale ``σ_w > 0``.
        b_std: bias scale ``σ_b ≥ 0``.
        parameterization: ``"ntk"`` (default) or ``"standard"`` (neural-tangents' conventions;
            the standard-parameterization NTK depends on the hidden width, taken from
            ``width``).
        width: hidden width used by the ``"standard"`` parameterization's infinite-width NTK
            (ignored for ``"ntk"``, whose kernels do not depend on it).
        embedding: an input embedding ``γ`` in front of the first Dense layer
            (:class:`~ntk_theory.FourierFeatures`, :class:`~ntk_theory.PeriodicEmbedding`);
            ``None``: raw coordinates.
        outputs: number of outputs ``m``; at infinite width they are independent, the kernel is
            ``Θ ⊗ I_m``, and an operator over several unknowns (``functions=("u", "v", "p")``)
            acts on them in order.
        output_transform: a hard constraint ``u = g + D N`` (:class:`~ntk_theory.OutputTransform`);
            kernels become ``D(x) D(x') Θ`` and operators ``T∘D``.

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
    embedding: Embedding | None = None
    outputs: int = 1
    output_transform: OutputTransform | None = None

    def __post_init__(self):
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(
                f"depth must be an integer ≥ 1 (the number of hidden layers), got {self.depth!r}."
            )
        act = get_activation(self.activation)
        object.__setattr__(self, "activation", act.name if act.name in _registry() else act)
        w, b = _finite_scale("W_std", self.W_std), _finite_scale("b_std", self.b_std)
        if not w > 0:
            raise ValueError(f"W_std must be positive, got {self.W_std!r}.")
        if not b >= 0:
            raise ValueError(f"b_std must be non-negative, got {self.b_std!r}.")
        object.__setattr__(self, "W_std", w)
        object.__setattr__(self, "b_std", b)
        if self.parameterization not in _PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {_PARAMETERIZATIONS}, got "
                f"{self.parameterization!r}."
            )
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width must be a positive integer, got {self.width!r}.")
        if self.embedding is not None and not isinstance(self.embedding, Embedding):
            raise ValueError(
                f"embedding must be an Embedding (FourierFeatures, PeriodicEmbedding) or None, got "
                f"{type(self.embedding).__name__}."
            )
        if (
            self.embedding is not None
            and not self.embedding.finite
            and self.parameterization == "standard"
        ):
            raise ValueError(
                f"{self.embedding!r} has infinitely many features; the standard parameterization's "
                "NTK grows with the fan-in. Use parameterization='ntk' or a finite embedding."
            )
        if isinstance(self.outputs, bool) or not isinstance(self.outputs, int) or self.outputs < 1:
            raise ValueError(f"outputs must be a positive integer, got {self.outputs!r}.")
        if self.output_transform is not None:
            if not isinstance(self.output_transform, OutputTransform):
                raise ValueError(
                    f"output_transform must be an OutputTransform, got "
                    f"{type(self.output_transform).__name__}."
                )
            if self.outputs != 1:
                raise ValueError(
                    "output_transform applies to a network with one output; this one has "
                    f"outputs={self.outputs}."
                )

    def __repr__(self) -> str:
        act = self.act.name
        extra = f", width={self.width}" if self.parameterization == "standard" else ""
        if self.embedding is not None:
            extra += f", embedding={self.embedding!r}"
        if self.outputs != 1:
            extra += f", outputs={self.outputs}"
        if self.output_transform is not None:
            extra += f", output_transform={self.output_transform!r}"
        return (
            f"MLP(depth={self.depth}, activation={act!r}, W_std={self.W_std}, "
            f"b_std={self.b_std}, parameterization={self.parameterization!r}{extra})"
        )

    # -- pieces --------------------------------------------------------------------------
    @property
    def act(self) -> Activation:
        """The :class:`Activation` object."""
        return get_activation(self.activation)

    @property
    def plain(self) -> bool:
        """No embedding, one output, no output transform (the layer-wise empirical path)."""
        return self.embedding is None and self.outputs == 1 and self.output_transform is None

    @property
    def kernel_network(self) -> MLP:
        """The network whose kernel the engine computes: without the output count and the output
        transform, which act outside it (``Θ ⊗ I_m``; ``T∘D``). Networks that differ only there
        share compiled kernel programs."""
        if self.outputs == 1 and self.output_transform is None:
            return self
        return dataclasses.replace(self, outputs=1, output_transform=None)

    def check_dim(self, dim: int) -> None:
        """Raise a ``ValueError`` if points of dimension ``dim`` do not fit the network."""
        if self.embedding is not None:
            self.embedding.check_dim(dim)
        if self.output_transform is not None:
            self.output_transform.check_dim(dim)

    def fan_in(self, dim: int) -> int:
        """Width of the first Dense layer's input (the coordinates, or the embedding's features)."""
        if self.embedding is None:
            return dim
        if not self.embedding.finite:  # only the NTK parameterization, which never reads it
            self.embedding.check_dim(dim)
            return math.inf
        return self.embedding.out_dim(dim)

    def input_variance(self, x) -> np.ndarray:
        """``⟨γ(x), γ(x)⟩/F`` per point: the input covariance the first Dense layer sees."""
        if self.embedding is not None:
            return self.embedding.variance(x)
        return _engine.input_variance(x)

    def input_jets(self, x1, x2, support):
        """Jets of the input covariance ``⟨γ(x+dx), γ(x'+dx')⟩/F`` and its diagonal versions,
        plus the geometry of ``det Σ¹`` for raw coordinates (``None`` with an embedding)."""
        if self.embedding is not None:
            return (*self.embedding.jets(x1, x2, support), None)
        return _engine._input_jets(x1, x2, support)

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
                self.outputs,
                W_std=self.W_std,
                b_std=self.b_std,
                parameterization=self.parameterization,
            )
        )
        return stax.serial(*layers)

    @property
    def kernel_fn(self) -> Callable:
        """neural-tangents' ``kernel_fn(x1, x2, get)`` of this network (infinite width).

        A reference path: its activation layers compute every entry on its own (closed forms,
        or the 2-D quadrature of :mod:`ntk_theory._gauss2d` for numeric activations), with
        Price's theorem as their derivative. With an embedding it is applied to ``γ(x)``
        (neural-tangents forms ``⟨γ(x), γ(x')⟩/F`` itself); with an output transform it is
        ``D(x) D(x')`` times that. Use :meth:`ntk` for speed.
        """
        base = _cached_stax(self)[2]
        if self.embedding is None and self.output_transform is None:
            return base
        emb, ot = self.embedding, self.output_transform
        if emb is not None and not emb.finite:
            raise ValueError(
                f"{emb!r} has no features to give neural-tangents (infinitely many); its kernels "
                "come from MLP.ntk / operator_kernel only."
            )

        def kernel_fn(x1, x2=None, get="ntk"):
            x2 = x1 if x2 is None else x2
            h1, h2 = (x1, x2) if emb is None else (emb.features(x1), emb.features(x2))
            K = base(h1, h2, get)
            if ot is not None:
                K = ot.D_values(x1)[:, None] * ot.D_values(x2)[None, :] * K
            return K

        return kernel_fn

    def finite(self, width: int) -> tuple[Callable, Callable]:
        """``(init_fn, apply_fn)`` of the same network with hidden width ``width``.

        ``init_fn(key, (-1, d))`` returns ``(output_shape, params)``; ``apply_fn(params, x)``
        maps ``(n, d)`` inputs to ``(n, outputs)`` outputs. The parameters are neural-tangents'
        layer list; an embedding is applied before the first Dense layer (which then has
        ``F`` inputs) and an output transform after the last.
        """
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}.")
        init_fn, apply_fn, _ = self._stax(width)
        emb, ot = self.embedding, self.output_transform
        if emb is None and ot is None:
            return init_fn, apply_fn
        if emb is not None and not emb.finite:
            emb.out_dim(1)  # raises: an infinite embedding has no finite network

        def init(key, input_shape):
            self.check_dim(int(input_shape[-1]))
            shape = (*input_shape[:-1], self.fan_in(int(input_shape[-1])))
            return init_fn(key, shape)

        def apply(params, x, **kwargs):
            out = apply_fn(params, x if emb is None else emb.features(x), **kwargs)
            if ot is not None:
                out = ot.g_values(x)[:, None] + ot.D_values(x)[:, None] * out
            return out

        return init, apply

    # -- kernels -------------------------------------------------------------------------
    def ntk(self, x1, x2=None) -> jax.Array:
        """The infinite-width NTK matrix ``Θ(x1_i, x2_j)``, shape ``(n1, n2)``, float64."""
        return self._kernel(x1, x2, "ntk")

    def nngp(self, x1, x2=None) -> jax.Array:
        """The infinite-width NNGP matrix ``Σ(x1_i, x2_j)``, shape ``(n1, n2)``, float64."""
        return self._kernel(x1, x2, "nngp")

    def _kernel(self, x1, x2, get: str) -> jax.Array:
        symmetric = x2 is None
        x1, x2 = check_points(x1, x2)
        x1, x2 = np.asarray(x1), np.asarray(x2)
        d = x1.shape[1]
        self.check_dim(d)
        zero = (0,) * d
        support = frozenset({zero + zero})
        ones1, ones2 = np.ones(x1.shape[0]), np.ones(x2.shape[0])
        K = _engine.kernel_blocks(
            self,
            x1,
            x2,
            ((0, zero),),
            ((0, zero),),
            [ones1],
            [ones2],
            support,
            get=get,
            symmetric=symmetric,
            block_size=_BLOCK,
            jit=True,
            order=0,
        )
        if self.output_transform is not None:
            D1, D2 = self.output_transform.D_values(x1), self.output_transform.D_values(x2)
            K = D1[:, None] * K * D2[None, :]
        return jnp.asarray(K)


#: Rows/columns per block of :meth:`MLP.ntk` (one compiled block shape for large inputs).
_BLOCK = 256


def _registry():
    from .activations import ACTIVATIONS

    return ACTIVATIONS


_STAX_CACHE: dict[MLP, tuple] = {}


def _cached_stax(net: MLP):
    if net not in _STAX_CACHE:
        _STAX_CACHE[net] = net._stax(net.width)
    return _STAX_CACHE[net]


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
