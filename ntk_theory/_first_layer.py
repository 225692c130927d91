"""The first hidden layer with the input derivatives moved inside the Gaussian expectation.

For a fully-connected first layer, ``u = w̃ · x̃`` with ``w̃ ~ N(0, I_{d+1})`` and
``x̃ = (σ_w x/√d, σ_b)``, so ``∂_x^α φ(u) = c^{|α|} w^α φ^{(|α|)}(u)`` (``c = σ_w/√d``) and

.. math::
    ∂_x^α ∂_{x'}^β\\, E[φ(u) φ(v)] = c^{|α|+|β|}\\, E\\big[w^{α+β}\\, φ^{(|α|)}(u)\\, φ^{(|β|)}(v)\\big].

Computed this way, each Taylor coefficient of the layer's output is one Gaussian integral of
a product -- nothing cancels. The chain rule through the covariance entries (Price's theorem)
gives the same numbers as sums of terms that grow like ``|x|^{|α|+|β|}`` while the result decays,
and loses every digit for inputs of size 30 and more (DESIGN.md fact 9, measured for erf).

The weights are split along the plane of ``x̃, x̃'``: ``w̃ = z₁ e₁ + z₂ e₂ + ξ`` with
``u = a z₁``, ``v = b(ρ z₁ + s z₂)`` and ``ξ ~ N(0, I - e₁e₁ᵀ - e₂e₂ᵀ)`` independent of them.
Isserlis' theorem integrates the monomials of ``ξ`` exactly (:func:`weight_polynomial`), which
leaves the 2-D integrals of :mod:`ntk_theory._gauss2d`. ``s = √(1-ρ²)`` comes from the wedge
``|x̃ ∧ (x̃' - x̃)|``, which does not cancel near the diagonal. The engine puts ``e₁`` along the
longer of ``x̃, x̃'`` (per pair, :func:`longer_frame`; the roles of ``u, v`` swap).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import sympy as sp

__all__ = ["longer_frame", "norm_and_direction", "plane", "weight_polynomial"]

MultiIndex = tuple[int, ...]


@functools.cache
def _isserlis(indices: tuple[int, ...]) -> sp.Expr:
    """``E[ξ_{i₁} ⋯ ξ_{i_n}]`` for ``ξ ~ N(0, C)``, symbolic in ``C_kl`` (Isserlis 1918)."""
    if not indices:
        return sp.Integer(1)
    if len(indices) % 2:
        return sp.Integer(0)
    first, rest = indices[0], indices[1:]
    total = sp.Integer(0)
    for j, other in enumerate(rest):
        k, l = sorted((first, other))
        total += sp.Symbol(f"C_{k}_{l}") * _isserlis(rest[:j] + rest[j + 1 :])
    return sp.expand(total)


@functools.cache
def weight_polynomial(gamma: MultiIndex) -> tuple[tuple[tuple[int, int], ...], object]:
    """``E_ξ[Π_k (A_k z₁ + B_k z₂ + ξ_k)^{γ_k}] = Σ_{m,n} P_{mn}(A, B, C) z₁^m z₂^n``.

    Returns ``(monomials, fn)`` where ``fn(A, B, C)`` (arrays ``A[k], B[k]``, ``C[k][l]``)
    returns the coefficients ``P_{mn}`` in the order of ``monomials`` ``((m, n), ...)``.
    """
    d = len(gamma)
    z1, z2 = sp.symbols("z1 z2")
    A = sp.symbols(f"A_0:{d}")
    B = sp.symbols(f"B_0:{d}")
    xi = sp.symbols(f"xi_0:{d}")
    prod = sp.Integer(1)
    for k, g in enumerate(gamma):
        prod *= (A[k] * z1 + B[k] * z2 + xi[k]) ** g
    poly = sp.Poly(sp.expand(prod), *xi)
    total = sp.Integer(0)
    for monom, coeff in poly.terms():
        idx = tuple(k for k, e in enumerate(monom) for _ in range(e))
        total += coeff * _isserlis(idx)
    total = sp.Poly(sp.expand(total), z1, z2)
    monomials = tuple(sorted(total.monoms()))
    coeffs = dict(zip(total.monoms(), total.coeffs(), strict=True))
    c_syms = [sp.Symbol(f"C_{k}_{l}") for k in range(d) for l in range(k, d)]
    fn = sp.lambdify((A, B, c_syms), [coeffs[m] for m in monomials], modules="jax", cse=True)

    def evaluate(Av, Bv, Cv):
        cs = [Cv[k][l] for k in range(d) for l in range(k, d)]
        return [jnp.asarray(v) for v in fn(list(Av), list(Bv), cs)]

    return monomials, evaluate


def norm_and_direction(xt: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(|x̃|, x̃/|x̃|)`` per row of ``xt`` ``(n, D)``, without under- or overflow.

    The norm is taken of ``x̃ / max_k |x̃_k|`` (``jnp.linalg.norm`` squares the entries: a
    point at ``|x| = 1e-200`` got norm 0 and a direction of length 1e-200, which dropped the
    weight component along it). Where ``x̃ = 0`` the direction is the first axis: any unit
    vector gives the same expectations there, as ``u = |x̃| z₁ = 0``.
    """
    big = jnp.max(jnp.abs(xt), axis=-1, keepdims=True)
    nonzero = big > 0
    scaled = xt / jnp.where(nonzero, big, 1.0)
    length = jnp.linalg.norm(scaled, axis=-1, keepdims=True)
    first_axis = jax.nn.one_hot(0, xt.shape[-1], dtype=xt.dtype)
    direction = jnp.where(nonzero, scaled / jnp.where(nonzero, length, 1.0), first_axis)
    return (big * length)[..., 0], direction


def two_product(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(p, e)`` with ``p = fl(a b)`` and ``p + e = a b`` exactly (Dekker 1971, Veltkamp split).

    XLA exposes no fused multiply-add; the split into 26-bit halves makes every partial product
    exact. Valid for ``|a|, |b| < 1e300`` (the split multiplies by ``2²⁷ + 1``).
    """
    ah, al = _veltkamp(a)
    bh, bl = _veltkamp(b)
    p = a * b
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _veltkamp(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    t = 134217729.0 * a  # 2**27 + 1
    hi = t - (t - a)
    return hi, a - hi


def plane(xt1: jax.Array, xt2: jax.Array):
    """Geometry of every pair of augmented inputs ``x̃ = (σ_w x/√d, σ_b)``.

    The part of ``x̃'`` orthogonal to ``x̃`` is formed from the wedge ``W = x̃ ∧ δ`` of
    ``δ = x̃' - x̃`` (whose bias entry is exactly 0), ``perp = (x̃ · W)/|x̃|²``, with each
    ``x̃_j δ_k - x̃_k δ_j`` from exact products (:func:`two_product`). Projecting ``δ`` instead,
    ``δ - (δ·e₁)e₁``, cancels in the components along ``x̃``: for 1-D inputs ``x, x' = 1000, 1003``
    (σ_w = 1.4, σ_b = 0.3) the weight component ``e₂ₓ ≈ -σ_b/|x̃|`` lost 9 digits, and it carries
    a quarter of ``∂_x∂_x' E[φφ]`` there (the ``z₁²`` part is ``O(1/|x̃|²)``): operator kernels
    were 1e-10 … 1e-9 off, now ≤ 1.2e-15 (tests/test_reference.py, mpmath closed forms).

    Args:
        xt1: ``(n₁, D)``; xt2: ``(n₂, D)`` (``D = d + 1``).

    Returns:
        ``(a, b, rho, s, e1, e2)``: norms ``(n₁, 1)``, ``(1, n₂)``; correlations and
        ``s = √(1-ρ²)`` ``(n₁, n₂)``; unit vectors ``e1 = x̃/|x̃|`` ``(n₁, 1, D)`` and ``e2``
        ``(n₁, n₂, D)``, the unit vector of the plane orthogonal to ``e1`` with ``x̃'·e2 ≥ 0``.
        Where the pair is parallel, ``e2`` is any unit vector orthogonal to ``e1`` (the
        expectations do not depend on it there).
    """
    a, e1 = norm_and_direction(xt1)
    b, _ = norm_and_direction(xt2)
    a, b, e1 = a[:, None], b[None, :], e1[:, None, :]
    proj = jnp.sum(e1 * xt2[None, :, :], axis=-1)  # x̃'·e1 = b ρ
    delta = xt2[None, :, :] - xt1[:, None, :]
    xj = jnp.broadcast_to(xt1[:, None, :, None], (*delta.shape, delta.shape[-1]))
    p1, r1 = two_product(xj, delta[..., None, :])  # x̃_j δ_k
    p2, r2 = two_product(jnp.swapaxes(xj, -1, -2), delta[..., :, None])  # x̃_k δ_j
    wedge = (p1 - p2) + (r1 - r2)
    safe_a = jnp.where(a > 0, a, 1.0)[..., None]
    perp = jnp.sum(e1[..., :, None] * wedge, axis=-2) / safe_a  # (x̃·W)/|x̃|²
    # x̃ = 0 (e1 is the fallback axis): δ = x̃' exactly, and projecting it out cancels nothing
    perp = jnp.where(
        (a > 0)[..., None], perp, delta - jnp.sum(delta * e1, axis=-1, keepdims=True) * e1
    )
    c, along = norm_and_direction(perp)  # c = b s
    safe_b = jnp.where(b > 0, b, 1.0)
    # from the frame itself (also where x̃ = 0 and e1 is the fallback axis): v = b(ρ z₁ + s z₂)
    rho = jnp.where(b > 0, proj / safe_b, 0.0)
    s = jnp.where(b > 0, c / safe_b, 1.0)
    rho = jnp.clip(rho, -1.0, 1.0)
    # fallback direction orthogonal to e1 where the pair is parallel: the axis least aligned
    D = xt1.shape[-1]
    axis = jnp.argmin(jnp.abs(e1), axis=-1)
    fallback = jax.nn.one_hot(axis, D)
    fallback = fallback - jnp.sum(fallback * e1, axis=-1, keepdims=True) * e1
    fallback = fallback / jnp.linalg.norm(fallback, axis=-1, keepdims=True)
    e2 = jnp.where((c > 0)[..., None], along, fallback)
    return a, b, rho, s, e1, e2


def longer_frame(xt1: jax.Array, xt2: jax.Array):
    """:func:`plane` of every pair with ``e₁`` along the longer of ``x̃, x̃'``.

    The longer input's activation is the sharper one, and ``z₁`` then resolves it. Along the
    shorter one the weight monomials of a far pair cancel: for ``x, x' = -2.1, 1003``
    (``σ_w = 1.4, σ_b = 0.3``) the terms of ``E[w⁸ φ⁽⁴⁾(u)φ⁽⁴⁾(v)]`` are 1e10 times their sum
    (``w ⊥ x̃'`` on the support of ``φ⁽⁴⁾(v)``), and tanh's ``∂⁴_x∂⁴_x' Θ`` was 4 % off (3.5e-10
    of its row/column scale; 4e-7 at ``-0.3, 1000``); along the longer one it is 7e-13 off.

    Args:
        xt1: ``(n₁, D)``; xt2: ``(n₂, D)`` augmented inputs.

    Returns:
        ``(swap, outer, inner, rho, s, e1, e2)``: ``swap`` ``(n₁, n₂)`` is true where the frame
        is that of ``x̃'`` (``|x̃'| > |x̃|``); ``outer = max(|x̃|, |x̃'|)`` and
        ``inner = min(|x̃|, |x̃'|)``; ``rho, s`` as in :func:`plane`; ``e1, e2`` ``(n₁, n₂, D)``
        the frame, ``e1`` along the longer input.
    """
    a, b, rho, s, e1, e2 = plane(xt1, xt2)
    _, _, rho_t, s_t, f1, f2 = plane(xt2, xt1)
    swap = b > a
    return (
        swap,
        jnp.maximum(a, b),
        jnp.minimum(a, b),
        jnp.where(swap, rho_t.T, rho),
        jnp.where(swap, s_t.T, s),
        jnp.where(swap[..., None], jnp.swapaxes(f1, 0, 1), e1),
        jnp.where(swap[..., None], jnp.swapaxes(f2, 0, 1), e2),
    )


def multi_indices_below(gamma: MultiIndex) -> list[MultiIndex]:
    return list(itertools.product(*(range(g + 1) for g in gamma)))


def binomial(alpha: Sequence[int], gamma: Sequence[int]) -> int:
    return math.prod(math.comb(a, g) for a, g in zip(alpha, gamma, strict=True))
