"""Input embeddings ``γ: R^d → R^F`` in front of an :class:`~ntk_theory.MLP`'s first Dense layer.

A network on embedded inputs, ``u(x) = N(γ(x))``, has the kernels of ``N`` with the first-layer
covariance replaced by

.. math::
    Σ^1(x, x') = σ_w^2\\, \\frac{⟨γ(x), γ(x')⟩}{F} + σ_b^2,

(neural-tangents' normalization: the first Dense layer sees ``F`` inputs). Every operator kernel
needs the mixed partials ``∂_x^α ∂_{x'}^β`` of this inner product, and for the embeddings here
they are known in closed form, so the engine (:mod:`ntk_theory._engine`) starts its jet
recursion from them instead of from ``⟨x, x'⟩/d``:

* :class:`FourierFeatures` -- ``γ(x) = [cos 2πBx, sin 2πBx]`` with a fixed frequency matrix
  ``B`` (``m × d``), ``F = 2m``:

  .. math::
      \\frac{⟨γ(x), γ(x')⟩}{2m} = \\frac{1}{2m}\\sum_{k=1}^m \\cos 2π b_k·(x - x'),\\qquad
      ∂_x^α ∂_{x'}^β \\cos 2π b·(x - x') = (2π)^{|α|+|β|} (-1)^{|β|} b^{α+β}
      \\cos\\!\\big(2π b·(x - x') + (|α|+|β|)\\tfrac{π}{2}\\big);

  :meth:`FourierFeatures.gaussian` draws ``B ~ N(0, scale²)`` (Tancik et al., arXiv 2006.10739;
  Wang, Wang, Perdikaris, arXiv 2012.10047), and :meth:`FourierFeatures.infinite` is its
  ``m → ∞`` limit, ``E_b cos 2π b·δ = exp(-2π² scale² |δ|²)`` (Bochner), a Gaussian kernel of
  ``δ = x - x'`` whose partials are Hermite polynomials;
* :class:`PeriodicEmbedding` -- ``x_i ↦ (cos 2πx_i/P_i, sin 2πx_i/P_i)`` for periodic coordinates
  and ``x_i`` itself for the others (Dong & Ni, J. Comput. Phys. 435, 2021): the network is
  exactly ``P_i``-periodic in ``x_i``, and so is every kernel.

The finite network of the same :class:`MLP` applies ``γ`` before its first Dense layer
(:meth:`MLP.finite`), so its empirical NTK converges to these kernels as the width grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._jets import Jet, factorial, split

__all__ = ["Embedding", "FourierFeatures", "PeriodicEmbedding"]


class Embedding:
    """Base class of input embeddings (see the module docstring).

    Subclasses give ``out_dim(dim)`` (the first Dense layer's fan-in ``F``), ``features(x)``
    (``(n, d) → (n, F)``, for finite networks), ``variance(x)`` (``⟨γ(x), γ(x)⟩/F`` per point)
    and ``jets(x1, x2, support)`` (the Taylor jets of ``⟨γ(x+dx), γ(x'+dx')⟩/F`` and of its two
    diagonal versions, as the engine's input state).
    """

    #: ``True`` if the finite-width network of this embedding exists (``features`` works).
    finite = True

    def out_dim(self, dim: int) -> int:
        raise NotImplementedError

    def features(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError

    def variance(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def jets(self, x1, x2, support) -> tuple[Jet, Jet, Jet]:
        raise NotImplementedError

    def check_dim(self, dim: int) -> None:
        """Raise a ``ValueError`` if points of dimension ``dim`` do not fit the embedding."""


# ----------------------------------------------------------------------------------------------
# sums of cosines of frequency·difference plus raw coordinates: both finite embeddings
# ----------------------------------------------------------------------------------------------
def _cosine_sum_jet(B: np.ndarray, x1, x2, support, scale: float) -> dict:
    """Normalized Taylor coefficients of ``scale · Σ_k cos 2π b_k·(x + dx - x' - dx')``.

    Written with ``cos(a - a') = cos a cos a' + sin a sin a'`` (``a = 2π b·x``), each coefficient
    is one ``(n₁, m) × (m, n₂)`` product: no ``(n₁, n₂, m)`` array.
    """
    Bj = jnp.asarray(B)
    a1, a2 = 2 * math.pi * (x1 @ Bj.T), 2 * math.pi * (x2 @ Bj.T)  # (n₁, m), (n₂, m)
    c1, s1, c2, s2 = jnp.cos(a1), jnp.sin(a1), jnp.cos(a2), jnp.sin(a2)
    cos_diff = (c1, s1, c2, s2, 1.0)  # cos(a - a') = c1 c2ᵀ + s1 s2ᵀ
    sin_diff = (s1, c1, c2, s2, -1.0)  # sin(a - a') = s1 c2ᵀ - c1 s2ᵀ
    out = {}
    for m in support:
        alpha, beta = split(m)
        k = sum(m)
        w = np.prod(B ** np.asarray([a + b for a, b in zip(alpha, beta, strict=True)]), axis=1)
        w = w * (2 * math.pi) ** k * (-1.0) ** sum(beta) * scale / factorial(m)
        if not np.any(w):
            continue
        # cos(θ + kπ/2) = cos θ, -sin θ, -cos θ, sin θ for k mod 4 = 0, 1, 2, 3
        pa, pb, qa, qb, sign = cos_diff if k % 2 == 0 else sin_diff
        phase = (1.0, -1.0, -1.0, 1.0)[k % 4]
        wj = jnp.asarray(w * phase)[None, :]
        out[m] = (pa * wj) @ qa.T + sign * ((pb * wj) @ qb.T)
    return out


def _linear_jets(x1, x2, coords: Sequence[int], support, scale: float):
    """Jets of ``scale · Σ_{i ∈ coords} (x_i + dx_i)(x'_i + dx'_i)`` and the two diagonal ones."""
    d = x1.shape[1]
    zero = (0,) * (2 * d)

    def unit(i, side):
        m = [0] * (2 * d)
        m[i + side * d] = 1
        return tuple(m)

    def coordinate(x, i, side):
        col = x[:, i : i + 1] if side == 0 else x[:, i][None, :]
        coeffs = {zero: col}
        if unit(i, side) in support:
            coeffs[unit(i, side)] = jnp.ones_like(col)
        return Jet(coeffs, support)

    e12 = e11 = e22 = Jet.constant(0.0, support)
    for i in coords:
        X, Y = coordinate(x1, i, 0), coordinate(x2, i, 1)
        e12, e11, e22 = e12 + X * Y, e11 + X * X, e22 + Y * Y
    return e12 * scale, e11 * scale, e22 * scale


def _check_matrix(B, name: str) -> np.ndarray:
    try:
        B = np.array(B, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an (m, d) array of numbers, got {B!r}.") from None
    if B.ndim != 2 or B.shape[0] == 0 or B.shape[1] == 0:
        raise ValueError(
            f"{name} must be an (m, d) array: m frequencies for d coordinates, got shape {B.shape}."
        )
    if not np.all(np.isfinite(B)):
        raise ValueError(f"{name} contains NaN or infinite frequencies.")
    B.setflags(write=False)
    return B


class FourierFeatures(Embedding):
    """Fourier features ``γ(x) = [cos 2πBx, sin 2πBx]``, ``B`` fixed (``m × d``).

    .. math::
        Σ^1(x, x') = \\frac{σ_w^2}{2m}\\sum_{k=1}^{m} \\cos 2π b_k·(x - x') + σ_b^2

    Args:
        B: ``(m, d)`` frequency matrix (rows ``b_k``; cycles per unit length).

    Use :meth:`gaussian` for random frequencies and :meth:`infinite` for their ``m → ∞`` limit.

    Example:
        >>> emb = FourierFeatures.gaussian(m=64, scale=5.0, dim=1, seed=0)
        >>> net = MLP(2, "tanh", embedding=emb)
        >>> K = operator_kernel(net, derivative(("x",), "x", 2), x)

    References:
        Tancik et al., arXiv 2006.10739 (Fourier features, their NTK for regression);
        Wang, Wang, Perdikaris, arXiv 2012.10047 (Fourier-feature PINNs).
    """

    def __init__(self, B, *, scale: float | None = None):
        if B is None:  # the m → ∞ limit (FourierFeatures.infinite)
            if scale is None:
                raise ValueError(
                    "FourierFeatures needs a frequency matrix B (m × d); for the m → ∞ limit use "
                    "FourierFeatures.infinite(scale)."
                )
            self.B = None
        else:
            self.B = _check_matrix(B, "B")
        self.scale = None if scale is None else float(scale)

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def gaussian(cls, m: int, scale: float, dim: int, seed: int = 0) -> FourierFeatures:
        """Frequencies ``B_{kj} ~ N(0, scale²)``, ``m`` of them for ``dim`` coordinates."""
        for name, v in (("m", m), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        scale = _check_scale(scale)
        B = scale * np.random.default_rng(seed).standard_normal((int(m), int(dim)))
        return cls(B, scale=scale)

    @classmethod
    def infinite(cls, scale: float) -> FourierFeatures:
        """The ``m → ∞`` limit of :meth:`gaussian`: ``⟨γ(x), γ(x')⟩/2m → ½ exp(-2π² scale² |x - x'|²)``.

        Analytic kernels only: there is no finite network with infinitely many features
        (use :meth:`gaussian` for the finite-width counterpart).
        """
        return cls(None, scale=_check_scale(scale))

    @property
    def m(self) -> int | None:
        """Number of frequencies (``None`` for the infinite limit)."""
        return None if self.B is None else self.B.shape[0]

    @property
    def finite(self) -> bool:  # type: ignore[override]
        return self.B is not None

    # -- the embedding ---------------------------------------------------------------------
    def check_dim(self, dim: int) -> None:
        if self.B is not None and self.B.shape[1] != dim:
            raise ValueError(
                f"FourierFeatures has frequencies for d = {self.B.shape[1]} coordinates (B is "
                f"{self.B.shape[0]} × {self.B.shape[1]}) but the points have dimension {dim}; "
                f"draw B with dim={dim}."
            )

    def out_dim(self, dim: int) -> int:
        self.check_dim(dim)
        if self.B is None:
            raise ValueError(
                "FourierFeatures.infinite has infinitely many features: its kernels exist in the "
                "NTK parameterization only, and it has no finite network; use "
                "FourierFeatures.gaussian(m, scale, dim) for a finite one."
            )
        return 2 * self.B.shape[0]

    def features(self, x: jax.Array) -> jax.Array:
        if self.B is None:
            self.out_dim(x.shape[-1])  # raises
        a = 2 * math.pi * (x @ jnp.asarray(self.B).T)
        return jnp.concatenate([jnp.cos(a), jnp.sin(a)], axis=-1)

    def variance(self, x: np.ndarray) -> np.ndarray:
        self.check_dim(np.shape(x)[1])
        return np.full(np.shape(x)[0], 0.5)  # (cos² + sin²)/2 at every frequency

    def jets(self, x1, x2, support):
        n1, n2 = x1.shape[0], x2.shape[0]
        half1, half2 = jnp.full((n1, 1), 0.5), jnp.full((1, n2), 0.5)
        e11, e22 = Jet.constant(half1, support), Jet.constant(half2, support)
        if self.B is None:
            return _gaussian_jet(x1, x2, support, 2 * (math.pi * self.scale) ** 2), e11, e22
        coeffs = _cosine_sum_jet(self.B, x1, x2, support, 1.0 / (2 * self.B.shape[0]))
        return Jet(coeffs, support), e11, e22

    # -- identity (an MLP is hashable: it keys compiled programs) ---------------------------
    def _key(self):
        return ("FourierFeatures", None if self.B is None else self.B.tobytes(), self.scale)

    def __eq__(self, other) -> bool:
        return isinstance(other, FourierFeatures) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self.B is None:
            return f"FourierFeatures.infinite(scale={self.scale:g})"
        s = "" if self.scale is None else f", scale={self.scale:g}"
        return f"FourierFeatures(m={self.B.shape[0]}, d={self.B.shape[1]}{s})"


def _check_scale(scale) -> float:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a positive number, got {scale!r}.") from None
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}.")
    return s


def _gaussian_jet(x1, x2, support, c: float) -> Jet:
    """Jet of ``½ exp(-c |x + dx - x' - dx'|²) = ½ Π_i g(δ_i + dx_i - dx'_i)``, ``g(t) = e^{-ct²}``.

    ``g^{(n)}(t) = (-√c)^n H_n(√c t) e^{-ct²}`` (physicists' Hermite polynomials, by their
    three-term recurrence), so ``∂^α_x ∂^β_{x'}`` of the product is
    ``Π_i (-1)^{β_i} g^{(α_i+β_i)}(δ_i)``.
    """
    d = x1.shape[1]
    top = max(a + b for m in support for a, b in zip(*split(m), strict=True))
    rc = math.sqrt(c)
    derivs = []  # derivs[i][n] = g^{(n)}(δ_i), (n₁, n₂)
    for i in range(d):
        t = x1[:, i : i + 1] - x2[:, i][None, :]
        y = rc * t
        g = jnp.exp(-c * t * t)
        H = [jnp.ones_like(y), 2 * y]
        for n in range(1, top):
            H.append(2 * y * H[n] - 2 * n * H[n - 1])
        derivs.append([(-rc) ** n * H[n] * g for n in range(top + 1)])
    out = {}
    for m in support:
        alpha, beta = split(m)
        value = 0.5 / factorial(m)
        for i in range(d):
            value = value * ((-1.0) ** beta[i] * derivs[i][alpha[i] + beta[i]])
        out[m] = value
    return Jet(out, support)


class PeriodicEmbedding(Embedding):
    """Exact periodicity: ``x_i ↦ (cos 2πx_i/P_i, sin 2πx_i/P_i)`` for periodic coordinates.

    .. math::
        \\frac{⟨γ(x), γ(x')⟩}{F} = \\frac{1}{F}\\Big(\\sum_{i \\text{ periodic}}
        \\cos\\frac{2π(x_i - x'_i)}{P_i} + \\sum_{i \\text{ not}} x_i x'_i\\Big),
        \\qquad F = 2\\,\\#\\text{periodic} + \\#\\text{not}

    Args:
        periods: one entry per coordinate, the period ``P_i > 0``, or ``None`` for a coordinate
            that is passed through (e.g. time).

    Example:
        >>> emb = PeriodicEmbedding((None, 2.0))       # (t, x), 2-periodic in x
        >>> net = MLP(2, "tanh", embedding=emb)

    References:
        Dong & Ni, "A method for representing periodic functions and enforcing exactly periodic
        boundary conditions with deep neural networks", J. Comput. Phys. 435 (2021) 110242.
    """

    def __init__(self, periods: Sequence[float | None]):
        if isinstance(periods, (int, float)):
            periods = (periods,)
        try:
            periods = tuple(periods)
        except TypeError:
            raise ValueError(
                f"periods must be a sequence with one period (or None) per coordinate, got "
                f"{periods!r}."
            ) from None
        if not periods:
            raise ValueError("periods must name at least one coordinate.")
        out = []
        for i, p in enumerate(periods):
            if p is None:
                out.append(None)
                continue
            try:
                v = float(p)
            except (TypeError, ValueError):
                raise ValueError(f"periods[{i}] must be a number or None, got {p!r}.") from None
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"periods[{i}] must be positive and finite, got {p!r}.")
            out.append(v)
        if all(p is None for p in out):
            raise ValueError("periods are all None: no coordinate is periodic.")
        self.periods = tuple(out)
        self._periodic = [i for i, p in enumerate(out) if p is not None]
        self._linear = [i for i, p in enumerate(out) if p is None]
        B = np.zeros((len(self._periodic), len(out)))
        for k, i in enumerate(self._periodic):
            B[k, i] = 1.0 / out[i]
        B.setflags(write=False)
        self._B = B

    def check_dim(self, dim: int) -> None:
        if dim != len(self.periods):
            raise ValueError(
                f"PeriodicEmbedding has {len(self.periods)} period(s) {self.periods} (one per "
                f"coordinate, None for a non-periodic one) but the points have dimension {dim}."
            )

    def out_dim(self, dim: int) -> int:
        self.check_dim(dim)
        return 2 * len(self._periodic) + len(self._linear)

    def features(self, x: jax.Array) -> jax.Array:
        self.check_dim(x.shape[-1])
        a = 2 * math.pi * (x @ jnp.asarray(self._B).T)
        return jnp.concatenate([jnp.cos(a), jnp.sin(a), x[..., self._linear]], axis=-1)

    def variance(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        self.check_dim(x.shape[1])
        lin = np.sum(x[:, self._linear] ** 2, axis=1)
        return (len(self._periodic) + lin) / self.out_dim(x.shape[1])

    def jets(self, x1, x2, support):
        F = self.out_dim(x1.shape[1])
        n1, n2 = x1.shape[0], x2.shape[0]
        cos = Jet(_cosine_sum_jet(self._B, x1, x2, support, 1.0 / F), support)
        l12, l11, l22 = _linear_jets(x1, x2, self._linear, support, 1.0 / F)
        p = len(self._periodic) / F
        e11 = l11 + jnp.full((n1, 1), p)
        e22 = l22 + jnp.full((1, n2), p)
        return cos + l12, e11, e22

    def _key(self):
        return ("PeriodicEmbedding", self.periods)

    def __eq__(self, other) -> bool:
        return isinstance(other, PeriodicEmbedding) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"PeriodicEmbedding({self.periods})"
