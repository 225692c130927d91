"""Derivative stacks ``u ↦ [φ(u), φ'(u), ..., φ^{(n)}(u)]`` evaluated without cancellation.

The kernels need high derivatives of the activation (an order-4 operator pair reaches
``φ^{(13)}``) at arguments from 0 to hundreds. Differentiating a formula symbolically and
evaluating it as written loses everything there: ``tanh^{(k)}`` written as a polynomial in
``t = tanh u`` vanishes at ``t = ±1`` but its coefficients grow like ``k! 2^k``, so at ``u = 20``
the computed value is ``~1e-3`` of garbage where the true one is ``1e-17``. Each family below
uses a form whose every factor is accurate:

* **tanh**: ``tanh^{(k)}(u) = sech²(u) Q_k(tanh u)`` (``Q₁ = 1``,
  ``Q_{k+1} = -2t Q_k + (1-t²) Q_k'``), with ``sech² = 4e/(1+e)²``, ``e = e^{-2|u|}`` (no
  ``1 - t²`` cancellation) and ``Q_k`` in the Chebyshev basis (Clenshaw; well conditioned on
  ``[-1, 1]``);
* **sigmoid** ``σ(u) = (1 + tanh(u/2))/2``, **SiLU** ``u σ(u)`` (``(uσ)^{(k)} = u σ^{(k)} + k σ^{(k-1)}``),
  **softplus** ``log(1+e^u) = max(u,0) + log1p(e^{-|u|})`` (``softplus^{(k)} = σ^{(k-1)}``);
* **erf**: ``erf^{(k+1)}(u) = (2/√π) (-1)^k H_k(u) e^{-u²}`` (Hermite recurrence);
* **gelu** ``u Φ(u)``: ``u Φ^{(k)} + k Φ^{(k-1)}`` with Gaussian derivatives by recurrence;
* **sin**: ``sin(u + kπ/2)``;
* anything else: the sympy derivatives, lambdified (no guarantee at large arguments).

Every stack exists for NumPy (host-side Mehler coefficients) and JAX (inside compiled kernels).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
import sympy as sp

__all__ = ["stack_fn"]

Stack = Callable[[object], list]


@functools.cache
def _tanh_q(n: int) -> tuple[np.ndarray, ...]:
    """Chebyshev coefficients of ``Q_1 .. Q_n`` (``tanh^{(k)} = sech² Q_k(tanh)``)."""
    P = np.polynomial.Polynomial
    t = P([0.0, 1.0])
    q = P([1.0])
    out = []
    for _ in range(n):
        out.append(np.polynomial.chebyshev.poly2cheb(q.coef))
        q = -2 * t * q + (1 - t * t) * q.deriv()
    return tuple(out)


def _clenshaw(xp, coef: np.ndarray, t):
    b1 = b2 = xp.zeros_like(t)
    for c in coef[:0:-1]:
        b1, b2 = 2 * t * b1 - b2 + float(c), b1
    return t * b1 - b2 + float(coef[0])


def _tanh_stack(xp, u, n: int, scale: float = 1.0) -> list:
    """Stack of ``φ(u) = tanh(scale·u)`` (its ``k``-th derivative carries ``scale^k``)."""
    v = u * scale
    e = xp.exp(-2.0 * xp.abs(v))
    sign = xp.where(v < 0, -1.0, 1.0)
    t = sign * (1.0 - e) / (1.0 + e)
    out = [t]
    if n:
        sech2 = 4.0 * e / (1.0 + e) ** 2
        for k, coef in enumerate(_tanh_q(n), start=1):
            out.append(sech2 * _clenshaw(xp, coef, t) * scale**k)
    return out


def _sigmoid_stack(xp, u, n: int) -> list:
    half = _tanh_stack(xp, u, n, scale=0.5)
    sig = _expit(xp, u)
    return [sig] + [0.5 * d for d in half[1:]]


def _expit(xp, u):
    return jax.nn.sigmoid(u) if xp is jnp else scipy.special.expit(u)


def _silu_stack(xp, u, n: int) -> list:
    s = _sigmoid_stack(xp, u, n)
    return [u * s[0]] + [u * s[k] + k * s[k - 1] for k in range(1, n + 1)]


def _softplus_stack(xp, u, n: int) -> list:
    sp_u = xp.maximum(u, 0.0) + xp.log1p(xp.exp(-xp.abs(u)))
    return [sp_u] + (_sigmoid_stack(xp, u, n - 1) if n >= 1 else [])


def _gauss_derivs(xp, u, n: int) -> list:
    """``[g, g', ..., g^{(n)}]`` of ``g = e^{-u²}`` by the Hermite recurrence (physicists')."""
    g = xp.exp(-u * u)
    h_prev, h = xp.zeros_like(u), xp.ones_like(u)
    out = []
    for k in range(n + 1):
        out.append((-1) ** k * h * g)
        h_prev, h = h, 2 * u * h - 2 * k * h_prev
    return out


def _erf_stack(xp, u, n: int) -> list:
    erf = jax.scipy.special.erf(u) if xp is jnp else scipy.special.erf(u)
    c = 2.0 / math.sqrt(math.pi)
    return [erf] + [c * g for g in _gauss_derivs(xp, u, n - 1)] if n else [erf]


def _gelu_stack(xp, u, n: int) -> list:
    # Φ(u) = (1 + erf(u/√2))/2: Φ^{(k)}(u) = 2^{-k/2} erf^{(k)}(u/√2) / 2.
    e = _erf_stack(xp, u / math.sqrt(2.0), n)
    erfc = jax.scipy.special.erfc if xp is jnp else scipy.special.erfc
    # Φ(u) = erfc(-u/√2)/2: no cancellation for negative u (1 + erf would lose everything)
    phi = [0.5 * erfc(-u / math.sqrt(2.0))] + [
        0.5 * e[k] * 2.0 ** (-k / 2) for k in range(1, n + 1)
    ]
    return [u * phi[0]] + [u * phi[k] + k * phi[k - 1] for k in range(1, n + 1)]


def _sin_stack(xp, u, n: int) -> list:
    s, c = xp.sin(u), xp.cos(u)
    return [(s, c, -s, -c)[k % 4] for k in range(n + 1)]


_FAMILIES: dict[str, Callable] = {
    "tanh": _tanh_stack,
    "sigmoid": _sigmoid_stack,
    "silu": _silu_stack,
    "softplus": _softplus_stack,
    "erf": _erf_stack,
    "gelu": _gelu_stack,
    "sin": _sin_stack,
}


@functools.cache
def _sympy_stack(expr: sp.Expr, n: int, backend: str) -> Callable:
    z = sp.Symbol("z", real=True)
    e = expr.subs(sp.Symbol("z"), z)
    modules = (
        [{"erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc}, "jax"]
        if backend == "jax"
        else ["scipy", "numpy"]
    )
    fns = [sp.lambdify(z, sp.diff(e, z, k), modules=modules) for k in range(n + 1)]
    xp = jnp if backend == "jax" else np

    def stack(u):
        return [xp.broadcast_to(xp.asarray(f(u), dtype=xp.float64), xp.shape(u)) for f in fns]

    return stack


def stack_fn(family: str | None, expr: sp.Expr | None, n: int, backend: str = "jax") -> Stack:
    """``u ↦ [φ(u), ..., φ^{(n)}(u)]`` for a known family, else from the sympy expression."""
    if family in _FAMILIES:
        xp = jnp if backend == "jax" else np
        fam = _FAMILIES[family]
        return lambda u: fam(xp, u, n)
    if expr is None:
        raise ValueError("an activation without a known family needs a sympy expression")
    return _sympy_stack(expr, n, backend)
