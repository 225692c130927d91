"""Mehler (Hermite) expansion of bivariate Gaussian expectations, with per-point coefficients.

For ``u = a z₁`` and ``v = b z₂`` with standard normals of correlation ``ρ``, Mehler's formula
(Mehler 1866; e.g. Kibble 1945, or O'Donnell, *Analysis of Boolean Functions*, §11.2) gives

.. math::
    E[f(u)\\, g(v)] = \\sum_{k \\ge 0} ρ^k\\, c_k(f, a)\\, c_k(g, b), \\qquad
    c_k(f, a) = E[f(a z)\\, h_k(z)],

with ``h_k = He_k / √k!`` the orthonormal (probabilists') Hermite polynomials. The coefficients
depend on one point only, so a whole ``(n₁, n₂)`` block costs one Horner sum in ``ρ`` per entry,
``K`` multiply-adds -- no quadrature per pair of points. This is what makes activations without
a closed form (tanh, sigmoid, SiLU, softplus, any analytic sympy expression) fast.

**Why K is not small.** ``E[f(u)g(v)]`` is C^∞ but *not analytic* at ``ρ = 1`` when ``f`` has
poles (tanh at ``±iπ/2``): the coefficients decay like ``exp(-τ√(2k)/a)`` (``τ`` the poles'
distance from the real axis), so at ``ρ = 1`` -- the diagonal ``x = x'`` -- the series converges
sub-geometrically. We therefore choose ``K`` per derivative order from the coefficients' *tail
energy*: with ``t_f(K) = Σ_{k ≥ K} c_k² / E[f(az)²]``, Cauchy–Schwarz bounds the truncation error
of every entry, diagonal included, by

.. math::
    |E - \\text{Mehler}_K| \\le \\sqrt{t_f(K)\\, t_g(K)}\\; \\sqrt{E[f(u)^2] E[g(v)^2]},

so ``t ≤ tol`` on both sides makes the error at most ``tol`` relative to the Cauchy–Schwarz scale of
the entry. The coefficients come from a trapezoidal rule in ``z`` (spectrally accurate for
integrands analytic in a strip; Trefethen & Weideman 2014, Thm. 5.1) with the Hermite *functions*
``ψ_k = h_k √φ`` from their stable three-term recurrence (``|ψ_k| ≤ 1``, no overflow).

Odd or even activations (tanh, erf, sin) have coefficients of one parity only per derivative
order; the sum then runs over every other ``k`` (Horner in ``ρ²``), which halves the work.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "HermiteCoefficients",
    "hermite_coefficients",
    "mehler_sums",
    "pair_terms",
    "tail_curves",
    "terms_needed",
]

#: Relative tail energy allowed per side (the entry error is at most this, relative to its
#: Cauchy–Schwarz scale). 1e-14 keeps operator kernels at ~1e-13 after the chain rule.
TAIL_TOLERANCE = 1e-14
#: The tail for a first layer whose Price pairs an operator kernel's chain rule composes: it
#: multiplies their errors by up to ~1e4 (tanh, ``u_xx``, first-layer variance ~2), and 1e-14
#: left 2e-11 ... 4e-11 in ``∂²_x∂²_x'Θ`` at ``|x| ≈ 1`` (``W_std = 1.3``); 1e-18 leaves 7e-12.
OPERATOR_TOLERANCE = 1e-18
#: Largest number of terms; beyond it the engine switches to per-entry quadrature.
MAX_TERMS = 1536
#: Terms are rounded up to a multiple of this (fewer distinct compiled shapes).
TERM_QUANTUM = 32
#: Rows per tile of a Mehler sum: 64 keeps the accumulators of ~24 Price pairs (64 x 128
#: doubles each) in cache; 8-12 % faster than whole 128-row blocks (tanh Δ_xΔ_x'Θ, depth 3).
ROW_TILE = 64


def _grid(a_max: float, terms: int, order: int, strip: float) -> tuple[np.ndarray, float]:
    """Trapezoidal nodes in ``z`` resolving ``φ^{(order)}(a z) ψ_k(z)`` for ``k < terms``.

    Error model of the trapezoidal rule for an integrand analytic in ``|Im z| < d``:
    ``~ M e^{-2πd/h}`` with ``M`` the integrand's size on the strip: ``ψ_k`` grows like
    ``e^{√(2k+1) d}``, ``√φ`` like ``e^{d²/4}``, and ``φ^{(p)}`` near a pole at distance ``0.4τ``
    like ``p!/(0.4τ)^{p+1}``. We take ``d = 0.6 τ / a`` and ask for ``e^{-39}`` (1e-17).
    """
    d = 0.6 * strip / max(a_max, 1e-12) if math.isfinite(strip) else 3.0
    d = min(d, 3.0)
    log_m = math.lgamma(order + 1) + (order + 1) * max(
        0.0, math.log(1.0 / (0.4 * min(strip, 10.0)))
    )
    h = 2 * math.pi * d / (39.0 + math.sqrt(2 * terms + 1) * d + d * d / 4 + log_m)
    h = min(h, 0.25)
    half = math.sqrt(4 * terms + 2) + 9.0  # ψ_k has its turning point at √(4k+2)
    n = math.ceil(half / h)
    return np.arange(-n, n + 1) * h, h


def max_scale(strip: float, tol: float = TAIL_TOLERANCE) -> float:
    """Twice the largest ``a`` for which :data:`MAX_TERMS` terms can reach the tail ``tol``.

    The coefficients decay no faster than ``exp(-τ√(2k)/a)`` (``τ = strip``, the poles'
    distance from the real axis; Hille 1940), so the tail energy after ``K`` terms is at least
    ``~exp(-2τ√(2K)/a)``: ``t ≤ tol`` needs ``a ≤ 2τ√(2K)/ln(1/tol)``. The factor 2 leaves the
    prefactors to the probe (measured: tanh needs > MAX_TERMS from ``a = 4``, the bound gives 5.4;
    softplus still converges at ``a = 8``, the bound gives 10.8). Entire activations: no bound.
    """
    if not math.isfinite(strip):
        return math.inf
    return 2.0 * 2.0 * strip * math.sqrt(2 * MAX_TERMS) / math.log(1.0 / tol)


@functools.lru_cache(maxsize=16)
def _hermite_weights(n: int, h: float, terms: int) -> np.ndarray:
    """``W[j, k] = h · √φ(z_j) · ψ_k(z_j)`` on ``z_j = j h``, ``|j| ≤ n``: ``c_k = Σ_j f(z_j) W[j, k]``."""
    z = np.arange(-n, n + 1) * h
    root = np.exp(-z * z / 4) / (2 * math.pi) ** 0.25  # √φ(z) = ψ_0(z)
    out = np.empty((z.size, terms))
    prev, cur = np.zeros_like(z), root.copy()
    for k in range(terms):
        out[:, k] = cur
        prev, cur = cur, (z * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
    out *= (h * root)[:, None]
    return _flush(out)


def _flush(x: np.ndarray) -> np.ndarray:
    """``x`` with subnormal entries set to zero, in place.

    Their contributions are below 1e-308 of any coefficient, and BLAS on subnormal operands
    runs ~4x slower (the Hermite functions' Gaussian tails and ``φ^{(p)}`` at large arguments
    reach them).
    """
    x[np.abs(x) < np.finfo(float).tiny] = 0.0
    return x


@dataclass(frozen=True)
class HermiteCoefficients:
    """Per-point Mehler coefficients of ``φ^{(p)}(a z)`` for the derivative orders needed.

    Attributes:
        orders: derivative orders ``p``, ascending.
        coefficients: ``(len(orders), n, K)`` array, ``c_k(φ^{(p)}, a_i)`` (``compact``:
            ``(len(orders), n, ⌈K/2⌉)``, column ``j`` holding ``k = parity_p + 2j``).
        energy: ``(len(orders), n)`` array, ``E[φ^{(p)}(a_i z)²]`` (the Cauchy–Schwarz scales).
        terms: ``(len(orders),)`` number of terms ``K_p`` with tail energy ≤ the tolerance.
        parity: ``(len(orders),)`` 0 or 1 if only even or odd ``k`` are non-zero, else -1.
        tail: ``(len(orders),)`` the largest relative tail energy at ``K_p`` over the points.
        compact: whether only each order's non-zero parity class is stored.
    """

    orders: tuple[int, ...]
    coefficients: np.ndarray
    energy: np.ndarray
    terms: tuple[int, ...]
    parity: tuple[int, ...]
    tail: tuple[float, ...]
    compact: bool = False

    def index(self, p: int) -> int:
        return self.orders.index(p)


def _tail_fraction(c: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """``t(K) = Σ_{k ≥ K} c_k² / E`` for every ``K`` (last axis), from the computed coefficients."""
    sq = c * c
    tail = np.cumsum(sq[..., ::-1], axis=-1)[..., ::-1]
    return tail / np.maximum(energy[..., None], np.finfo(float).tiny)


def tail_curves(
    stack: Callable[[np.ndarray], list[np.ndarray]],
    a_max: float,
    orders: Sequence[int],
    strip: float,
    tol: float = TAIL_TOLERANCE,
) -> dict[int, np.ndarray] | None:
    """Relative tail energies ``t_p(K)`` at the largest standard deviation ``a_max``, per order,
    on a probe long enough that every order reaches ``tol`` (``None``: more than
    :data:`MAX_TERMS` terms would be needed).

    Beyond :func:`max_scale` the answer is ``None`` without probing: the probes' grids grow like
    ``a_max`` (their step resolves the poles at distance ``τ/a``), and at ``|x| = 300`` they held
    11 GB for a tail that cannot converge anyway.
    """
    if a_max > max_scale(strip, tol):
        return None
    guess = 64
    while guess <= MAX_TERMS:
        probe = min(2 * guess, MAX_TERMS + TERM_QUANTUM)
        z, h = _grid(a_max, probe, max(orders), strip)
        W = _hermite_weights(z.size // 2, h, probe)
        vals = stack(a_max * z)
        dens = h * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        out = {}
        for p in orders:
            f = vals[p]
            t = _tail_fraction(f @ W, np.array(float(np.dot(dens, f * f))))
            ok = np.nonzero(t <= tol)[0]
            # the tail must also be resolved within the probe: the last coefficients are tiny
            if ok.size == 0 or ok[0] > probe - TERM_QUANTUM:
                break
            out[p] = t
        else:
            return out
        guess *= 2
    return None


def terms_needed(
    stack: Callable[[np.ndarray], list[np.ndarray]],
    a_max: float,
    orders: Sequence[int],
    strip: float,
    tol: float = TAIL_TOLERANCE,
) -> dict[int, int] | None:
    """Terms ``K_p`` per order for the largest standard deviation ``a_max`` (``None``: too many):
    the first ``K`` with ``t_p(K) ≤ tol`` (see :func:`tail_curves`)."""
    tails = tail_curves(stack, a_max, orders, strip, tol)
    if tails is None:
        return None
    return {p: int(np.nonzero(t <= tol)[0][0]) for p, t in tails.items()}


def pair_terms(
    tails: dict[int, np.ndarray], pairs: Sequence[tuple[int, int]], tol: float = TAIL_TOLERANCE
) -> dict[tuple[int, int], int]:
    """Terms per Price pair: the first ``K`` with ``√(t_p(K) t_q(K)) ≤ tol``.

    By the Cauchy–Schwarz bound in the module docstring this keeps every entry of the pair's
    sum within ``tol`` of its scale, like ``max(K_p, K_q)`` does, with fewer terms when one side
    converges faster (tanh at variance 1.7: ``(3, 7)`` needs 620 terms, not 761).
    """
    out = {}
    for p, q in pairs:
        ok = np.nonzero(tails[p] * tails[q] <= tol * tol)[0]
        out[(p, q)] = int(ok[0])
    return out


def hermite_coefficients(
    stack: Callable[[np.ndarray], list[np.ndarray]],
    a: np.ndarray,
    orders: Sequence[int],
    strip: float,
    tol: float = TAIL_TOLERANCE,
    terms: dict[int, int] | None = None,
    a_max: float | None = None,
    parity: dict[int, int] | None = None,
    width: int | None = None,
    compact: bool = False,
    out: np.ndarray | None = None,
) -> HermiteCoefficients | None:
    """Mehler coefficients of ``φ^{(p)}(a_i z)`` for every point ``i`` and order ``p``.

    Args:
        stack: ``u ↦ [φ(u), φ'(u), ..., φ^{(p_max)}(u)]`` on NumPy arrays.
        a: ``(n,)`` standard deviations ``√Σ_ii`` (zero allowed: then ``c_k = δ_k0 φ^{(p)}(0)``).
        orders: derivative orders needed.
        strip: half-width of the strip around the real axis where ``φ`` is analytic.
        tol: allowed relative tail energy per side.
        terms: the number of terms per order, when it was chosen for a larger set of points
            (so that two point sets share one layout); default: :func:`terms_needed`.
        a_max: the largest standard deviation the terms were chosen for (default ``max(a)``).
        parity: per order, 0 if ``φ^{(p)}`` is even, 1 if odd (then only even/odd ``k`` are
            non-zero and the integrand is even: half the nodes and half the coefficients).
        width: columns of the coefficient array (default the largest number of terms): a
            layout shared with other layers; columns from an order's ``K_p`` on are zero.
        compact: store only the non-zero parity class of each order (every order must have a
            definite ``parity``): column ``j`` holds ``k = parity_p + 2j``; half the memory and
            half the bytes moved per block. ``width`` then counts these columns.
        out: a zeroed ``(len(orders), n, columns)`` array to write the coefficients into (a
            slice of a layout shared by several layers; saves a copy).

    Returns:
        :class:`HermiteCoefficients`, or ``None`` if more than :data:`MAX_TERMS` terms would be
        needed (large variances: the caller uses per-entry quadrature instead). Each order's
        coefficients are computed up to its own ``K_p`` only; its reported tail is then
        ``E - Σ_{k<K_p} c_k²``, resolved to ~1e-16 of the energy.
    """
    a = np.asarray(a, dtype=float)
    orders = tuple(sorted(set(int(p) for p in orders)))
    a_max = float(a.max()) if a_max is None else float(a_max)
    parity = dict(parity or {})
    if terms is None:
        need = terms_needed(stack, a_max, orders, strip, tol)
        if need is None:
            return None
        terms = {p: _round_up(max(need[p], 1)) for p in orders}
    terms = {p: int(terms[p]) for p in orders}
    k_all = max(terms.values())
    z, h = _grid(a_max, k_all, max(orders), strip)
    n_half = z.size // 2
    W = _hermite_weights(n_half, h, k_all)
    dens = h * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    # half grid z ≥ 0 for orders of definite parity: ∫ even = 2 ∫_0^∞ (trapezoid: z = 0 once)
    z_half = z[n_half:]
    fold = np.full(z_half.size, 2.0)
    fold[0] = 1.0
    W_half = W[n_half:] * fold[:, None]
    # the even and odd columns, contiguous (BLAS runs ~1.5x slower on strided operands)
    W_parity = [np.ascontiguousarray(W_half[:, q::2]) for q in (0, 1)]
    dens_half = dens[n_half:] * fold
    n = a.size
    if compact and not all(parity.get(p, -1) in (0, 1) for p in orders):
        raise ValueError(f"compact coefficients need a definite parity for every order {orders}")
    cols = max((k_all + 1) // 2 if compact else k_all, width or 0)
    coeffs = np.zeros((len(orders), n, cols)) if out is None else out
    if coeffs.shape != (len(orders), n, cols):
        raise ValueError(f"out has shape {coeffs.shape}, expected {(len(orders), n, cols)}")
    energy = np.empty((len(orders), n))
    chunk = max(1, int(2e7 // (z.size * (max(orders) + 1))))  # bound the stack's memory
    definite = {p: parity.get(p, -1) in (0, 1) for p in orders}
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        full_needed = not all(definite.values())
        vals = [
            _flush(np.array(v, dtype=float))
            for v in stack(a[sl, None] * (z if full_needed else z_half)[None, :])
        ]
        vals_half = None
        if full_needed and any(definite.values()):
            vals_half = [v[:, n_half:] for v in vals]
        for i, p in enumerate(orders):
            if definite[p]:
                f = vals[p] if not full_needed else vals_half[p]
                q = parity[p]
                half_terms = (terms[p] - q + 1) // 2
                dest = slice(0, half_terms) if compact else slice(q, terms[p], 2)
                coeffs[i, sl, dest] = f @ W_parity[q][:, :half_terms]
                energy[i, sl] = (f**2) @ dens_half
            else:
                coeffs[i, sl, : terms[p]] = vals[p] @ W[:, : terms[p]]
                energy[i, sl] = (vals[p] ** 2) @ dens
    # the tail criterion point by point: the largest variance need not be the worst case for
    # every activation; report the worst tail at the chosen K
    tails = []
    for i in range(len(orders)):
        beyond = np.maximum(energy[i] - np.sum(coeffs[i] ** 2, axis=-1), 0.0)
        t = beyond / np.maximum(energy[i], np.finfo(float).tiny)
        tails.append(float(t.max(initial=0.0)))
    par = tuple(
        parity[p] if definite[p] else _parity(coeffs[i], energy[i]) for i, p in enumerate(orders)
    )
    return HermiteCoefficients(
        orders, coeffs, energy, tuple(terms[p] for p in orders), par, tuple(tails), compact
    )


def derivative_parity(
    stack: Callable[[np.ndarray], list[np.ndarray]], orders: Sequence[int]
) -> dict[int, int]:
    """``{p: 0 | 1}`` for the orders whose ``φ^{(p)}`` is even (0) or odd (1), from samples."""
    z = np.linspace(0.05, 6.0, 23)
    plus, minus = stack(z), stack(-z)
    out = {}
    for p in orders:
        scale = np.max(np.abs(plus[p])) + 1e-300
        if np.max(np.abs(plus[p] - minus[p])) <= 1e-13 * scale:
            out[p] = 0
        elif np.max(np.abs(plus[p] + minus[p])) <= 1e-13 * scale:
            out[p] = 1
    return out


def class_size(k, parity: int):
    """How many ``k' < k`` have the parity class ``parity`` (0 even, 1 odd, -1 all)."""
    return k if parity == -1 else (k - parity + 1) // 2


def _round_up(k: int) -> int:
    return int(math.ceil(k / TERM_QUANTUM) * TERM_QUANTUM)


def _parity(c: np.ndarray, energy: np.ndarray) -> int:
    """0 / 1 if the odd / even coefficients vanish (to round-off) at every point, else -1."""
    scale = np.sqrt(np.maximum(energy, np.finfo(float).tiny))[:, None]
    odd = np.abs(c[:, 1::2]) <= 1e-13 * scale
    even = np.abs(c[:, 0::2]) <= 1e-13 * scale
    if odd.all():
        return 0
    if even.all():
        return 1
    return -1


def mehler_sums(
    rho: jax.Array,
    rows: jax.Array,
    cols: jax.Array,
    pairs: Sequence[tuple[int, int, int, int]],
    terms=None,
    compact: bool = False,
) -> list[jax.Array]:
    """``Σ_{k<K} ρ^k c_k(row) c_k(col)`` for several pairs of coefficient sequences.

    Args:
        rho: ``(n₁, n₂)`` correlations.
        rows: ``(m, n₁, K_max)`` row coefficients; ``cols``: ``(m', n₂, K_max)``.
        pairs: ``(row index, col index, K, parity)`` per requested sum; ``parity`` 0/1 sums only
            even/odd ``k`` (Horner in ``ρ²``), -1 all ``k``. ``K`` is a static upper bound.
        terms: optional traced ``K`` per pair (``≤`` the static one): the sums then stop there
            (one compiled program serves layers with different numbers of terms).
        compact: the coefficient arrays hold only each order's parity class (column ``j`` is
            ``k = parity + 2j``, see :func:`hermite_coefficients`); every pair's parity is then
            0 or 1.

    Returns:
        One ``(n₁, n₂)`` array per pair.

    Each parity class runs as one Horner recursion ``acc ← acc·base + c_k ⊗ c'_k`` from the
    highest term down. Pairs with fewer terms join it later (their accumulators start at zero
    where their own series starts), so every pair costs its own ``K`` steps and all pairs share
    one read of ``ρ`` per step. The coefficients are indexed inside the loop body, four steps
    per iteration (3x faster than scanning over them on CPU, measured). On CPU, blocks of more
    than :data:`ROW_TILE` rows run tile by tile.
    """
    n1 = rho.shape[0]
    if not pairs:
        return []
    if n1 <= ROW_TILE or n1 % ROW_TILE or jax.default_backend() != "cpu":
        return _mehler_tile(rho, rows, cols, pairs, terms, compact)
    # CPU: row tiles in sequence, so that the accumulators of all pairs (|pairs| x tile x n2)
    # stay in cache (an accelerator keeps the whole block in parallel)
    tiles = n1 // ROW_TILE
    rho_t = rho.reshape(tiles, ROW_TILE, rho.shape[1])
    rows_t = jnp.moveaxis(rows.reshape(rows.shape[0], tiles, ROW_TILE, rows.shape[2]), 1, 0)
    outs = jax.lax.map(
        lambda args: tuple(_mehler_tile(args[0], args[1], cols, pairs, terms, compact)),
        (rho_t, rows_t),
    )
    return [o.reshape(n1, -1) for o in outs]


def _mehler_tile(rho, rows, cols, pairs, terms, compact) -> list[jax.Array]:
    """:func:`mehler_sums` on one tile of rows."""
    out: list[jax.Array | None] = [None] * len(pairs)
    for par in sorted({p[3] for p in pairs}):
        members = [i for i, p in enumerate(pairs) if p[3] == par]
        base = rho if par == -1 else rho * rho
        start = 0 if par == -1 else par
        stride = 1 if par == -1 else 2

        if compact and par == -1:
            raise ValueError("compact coefficients cannot serve a pair of mixed parity")

        def count(k, start=start, stride=stride):
            return (k - start + stride - 1) // stride

        # groups of pairs with the same (static) number of terms, longest first
        sizes = sorted({count(pairs[m][2]) for m in members}, reverse=True)
        groups = [[m for m in members if count(pairs[m][2]) == n] for n in sizes]
        s_max = sizes[0]
        ks = np.arange(s_max) if compact else start + stride * np.arange(s_max)
        Rg, Cg, steps = [], [], []
        for g, group in enumerate(groups):
            ri = jnp.asarray([pairs[m][0] for m in group])
            ci = jnp.asarray([pairs[m][1] for m in group])
            Rg.append(jnp.moveaxis(rows[ri][:, :, ks], 2, 0))  # (s_max, |group|, n1)
            Cg.append(jnp.moveaxis(cols[ci][:, :, ks], 2, 0))
            n = sizes[g]
            if terms is not None:  # traced counts, non-increasing from group to group
                n = jnp.minimum(n, jnp.max(jnp.stack([count(terms[m]) for m in group])))
                if steps:
                    n = jnp.minimum(n, steps[-1])
            steps.append(n)
        accs = [jnp.zeros((len(group), *rho.shape), dtype=rho.dtype) for group in groups]
        bounds = [*steps, 0]
        for j in range(len(groups)):
            hi, lo = bounds[j], bounds[j + 1]
            if isinstance(hi, int) and isinstance(lo, int) and hi == lo:
                continue

            def four(i, live, hi=hi, j=j):
                k0 = hi - 1 - 4 * i
                live = list(live)
                for u in range(4):
                    k = k0 - u
                    for g in range(j + 1):
                        live[g] = live[g] * base[None] + Rg[g][k][:, :, None] * Cg[g][k][:, None, :]
                return tuple(live)

            # term counts are multiples of 32 (TERM_QUANTUM), so steps come in fours
            live = jax.lax.fori_loop(0, (hi - lo) // 4, four, tuple(accs[: j + 1]))
            accs[: j + 1] = list(live)
        for group, acc in zip(groups, accs, strict=True):
            if par == 1:
                acc = acc * rho[None]
            for j, m in enumerate(group):
                out[m] = acc[j]
    return out  # type: ignore[return-value]
