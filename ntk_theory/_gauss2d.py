"""Bivariate Gaussian expectations by a sinh-mapped trapezoidal rule, accurate at every covariance.

This is the fallback of :mod:`ntk_theory._hermite` for large variances (where the Mehler series
would need thousands of terms) and the integrator of the first layer's "inside" expectations
(x-derivatives moved inside the Gaussian integral, which stays accurate for large inputs). It
computes, per entry,

.. math::
    E\\big[z_1^m z_2^n\\, f(a z_1)\\, g(b(ρ z_1 + \\sqrt{1-ρ^2}\\, z_2))\\big]

for independent standard normals ``z₁, z₂``: a parametrization in which nothing degenerates at
``ρ = ±1`` (the diagonal ``x = x'``, DESIGN.md fact 7).

**The rule.** The outer variable is mapped by ``z₁ = s₁ sinh t``: nodes crowd around ``z₁ = 0``,
where ``f(a z₁)`` has its features (width ``~1/a``) and where the inner integral, a Gaussian
smoothing of ``g`` evaluated at ``bρz₁``, has its own (width ``~max(1, c)/(b|ρ|)``), and still
reach the Gaussian tail at ``|z₁| = 9.5``. Given ``z₁``, the inner integrand in ``z₂`` has the
Gaussian at 0 and the activation's feature at ``z* = -bρz₁/c`` of width ``~1/c``
(``c = b√(1-ρ²)``). For ``c ≤ 1`` the activation is at least as wide as the Gaussian and one map
``z₂ = sinh t`` resolves both; for ``c > 1`` the map ``z₂ = z* + sinh(t)/c`` is centred on the
sharp feature and its step :data:`INNER_STEP` is fine enough to resolve the unit Gaussian up to
the distance ``|z*| ≤ 9.5`` (beyond it the feature lies in the Gaussian's negligible tail and the
map is centred at 0 again).

The trapezoidal rule in ``t`` converges like ``exp(-2πδ/h)`` for integrands analytic in
``|Im t| < δ`` (Trefethen & Weideman 2014, SIAM Rev. 56(3), Thm. 5.1). For the maps above
``δ ≈ π/4`` near the centre (the Gaussian's growth ``e^{(Im z)²/2}`` bounds it) and ``≈ 2/D`` at
distance ``D`` from it; the steps give ``< 1e-15`` relative error, which
tests/test_activations.py measures against an extended-precision reference over variances
``1e-4 … 1e4``, correlations up to 1 and derivative orders up to 9.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["INNER_STEP", "OUTER_STEP", "expectations", "node_counts"]

#: Trapezoidal steps in the mapped variables (outer map has one centre; inner may sit far from
#: the Gaussian, see the module docstring).
OUTER_STEP = 0.075
INNER_STEP = 0.03
#: Gaussian half-range: ``e^{-9.5²/2} < 3e-20`` (with polynomial weights up to degree 8).
RANGE = 9.5
_SQRT_2PI = math.sqrt(2 * math.pi)


def _half_nodes(t_max: float, step: float) -> int:
    return math.ceil(t_max / step)


def node_counts(a_max: float, b_max: float, c_max: float) -> tuple[int, int]:
    """Outer and inner node counts for the largest ``a``, ``b`` and ``c`` of a batch."""
    s1 = min(1.0, 1.0 / max(a_max, 1e-300), 1.0 / max(b_max, 1e-300))
    n1 = 2 * _half_nodes(math.asinh(RANGE / s1), OUTER_STEP) + 1
    s2 = min(1.0, 1.0 / max(c_max, 1e-300))
    n2 = 2 * _half_nodes(math.asinh(2 * RANGE / s2), INNER_STEP) + 1
    return n1, n2


def expectations(
    stack: Callable[[jax.Array], list[jax.Array]],
    a: jax.Array,
    b: jax.Array,
    rho: jax.Array,
    terms: Sequence[tuple[int, int, int, int]],
    *,
    a_max: float,
    b_max: float,
    c_max: float,
    s: jax.Array | None = None,
) -> list[jax.Array]:
    """``E[z₁^m z₂^n φ^{(p)}(a z₁) φ^{(q)}(b(ρ z₁ + s z₂))]`` for each ``(p, q, m, n)`` in ``terms``.

    Args:
        stack: ``u ↦ [φ(u), φ'(u), ...]`` (JAX, elementwise) up to the largest order in ``terms``.
        a, b, rho: broadcastable arrays of standard deviations (``≥ 0``) and correlations.
        terms: requested ``(p, q, m, n)``.
        a_max, b_max, c_max: (static) upper bounds of ``a``, ``b`` and ``c = b√(1-ρ²)`` over the
            entries; they fix the number of nodes (:func:`node_counts`).
        s: ``√(1-ρ²)`` where the caller has it without cancellation (near ``ρ = 1`` the
            difference ``1 - ρ²`` keeps only the digits ``ρ`` had beyond its leading ones).

    Returns:
        One array (the broadcast shape of the inputs) per requested term.
    """
    if s is None:
        s = jnp.sqrt(jnp.maximum(1.0 - jnp.clip(jnp.asarray(rho), -1.0, 1.0) ** 2, 0.0))
    a, b, rho, s = jnp.broadcast_arrays(
        jnp.asarray(a, jnp.float64),
        jnp.asarray(b, jnp.float64),
        jnp.asarray(rho, jnp.float64),
        jnp.asarray(s, jnp.float64),
    )
    shape = a.shape
    a, b, rho, s = a.ravel(), b.ravel(), jnp.clip(rho.ravel(), -1.0, 1.0), s.ravel()
    c = b * s
    n1, n2 = node_counts(a_max, b_max, c_max)
    k1 = (n1 - 1) // 2
    k2 = (n2 - 1) // 2
    # Per-entry maps: each entry spreads the same number of nodes over its own t-range.
    inner_feature = jnp.maximum(c, 1.0) / jnp.maximum(b * jnp.abs(rho), 1e-300)
    s1 = jnp.minimum(jnp.minimum(1.0, 1.0 / jnp.maximum(a, 1e-300)), inner_feature)
    h1 = jnp.arcsinh(RANGE / s1) / k1  # per-entry outer step (≤ OUTER_STEP)
    sharp = c > 1.0
    s2 = jnp.where(sharp, 1.0 / jnp.maximum(c, 1e-300), 1.0)
    h2 = jnp.arcsinh(2 * RANGE / s2) / k2  # ≤ INNER_STEP
    j2 = jnp.arange(-k2, k2 + 1, dtype=jnp.float64)
    q_orders = sorted({q for _, q, _, _ in terms})
    n_powers = sorted({n for _, _, _, n in terms})

    def inner(z1):
        mean = b * rho * z1
        zstar = -mean / jnp.maximum(c, 1e-300)
        center = jnp.where(sharp & (jnp.abs(zstar) <= RANGE), zstar, 0.0)
        t = j2[None, :] * h2[:, None]
        z2 = center[:, None] + s2[:, None] * jnp.sinh(t)
        w = (h2 * s2)[:, None] * jnp.cosh(t) * jnp.exp(-0.5 * z2 * z2) / _SQRT_2PI
        g = stack(mean[:, None] + c[:, None] * z2)
        out = {}
        for q in q_orders:
            gq = g[q] * w
            for n in n_powers:
                out[(q, n)] = jnp.sum(gq if n == 0 else gq * z2**n, axis=-1)
        return out

    def body(acc, j):
        t = j * h1
        z1 = s1 * jnp.sinh(t)
        w1 = h1 * s1 * jnp.cosh(t) * jnp.exp(-0.5 * z1 * z1) / _SQRT_2PI
        fu = stack(a * z1)
        inn = inner(z1)
        new = [
            prev + w1 * (z1**m if m else 1.0) * fu[p] * inn[(q, n)]
            for (p, q, m, n), prev in zip(terms, acc, strict=True)
        ]
        return new, None

    acc0 = [jnp.zeros_like(a) for _ in terms]
    out, _ = jax.lax.scan(body, acc0, jnp.arange(-k1, k1 + 1, dtype=jnp.float64))
    return [o.reshape(shape) for o in out]


def diagonal(
    stack: Callable[[jax.Array], list[jax.Array]],
    a: jax.Array,
    terms: Sequence[tuple[int, ...]],
    *,
    a_max: float,
) -> list[jax.Array]:
    """``E[z^m φ^{(p)}(a z) φ^{(q)}(a z)]`` for ``(p, q)`` or ``(p, q, m)`` in ``terms`` (the same
    point: ``ρ = 1``), by one sinh-mapped 1-D rule."""
    a = jnp.asarray(a, jnp.float64)
    shape = a.shape
    a = a.ravel()
    s1 = jnp.minimum(1.0, 1.0 / jnp.maximum(a, 1e-300))
    k1 = _half_nodes(math.asinh(RANGE / min(1.0, 1.0 / max(a_max, 1e-300))), OUTER_STEP)
    h1 = jnp.arcsinh(RANGE / s1) / k1
    t = jnp.arange(-k1, k1 + 1, dtype=jnp.float64)[None, :] * h1[:, None]
    z = s1[:, None] * jnp.sinh(t)
    w = (h1 * s1)[:, None] * jnp.cosh(t) * jnp.exp(-0.5 * z * z) / _SQRT_2PI
    f = stack(a[:, None] * z)
    out = []
    for term in terms:
        p, q, m = (*term, 0) if len(term) == 2 else term
        out.append(jnp.sum(w * f[p] * f[q] * (z**m if m else 1.0), axis=-1).reshape(shape))
    return out


def numpy_diagonal(
    stack: Callable[[np.ndarray], list[np.ndarray]], a: np.ndarray, orders: Sequence[int]
) -> list[np.ndarray]:
    """Host version of :func:`diagonal` for ``E[φ^{(p)}(a z)²]`` (per-point scales)."""
    a = np.asarray(a, dtype=float)
    s1 = np.minimum(1.0, 1.0 / np.maximum(a, 1e-300))
    k1 = _half_nodes(math.asinh(RANGE / float(s1.min(initial=1.0))), OUTER_STEP)
    h1 = np.arcsinh(RANGE / s1) / k1
    t = np.arange(-k1, k1 + 1)[None, :] * h1[:, None]
    z = s1[:, None] * np.sinh(t)
    w = (h1 * s1)[:, None] * np.cosh(t) * np.exp(-0.5 * z * z) / _SQRT_2PI
    f = stack(a[:, None] * z)
    return [np.sum(w * f[p] ** 2, axis=-1) for p in orders]
