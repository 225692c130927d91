"""Benchmark (issue 13): the cost of an architecture relative to the plain MLP.

``MLP(2, act, 1.0, 0.5)`` on 1-D points in [0, 1], the residual kernel ``∂²_x ∂²_x' Θ`` at
N = 1000: first call (compile + run) and steady state, for raw coordinates, Gaussian Fourier
features (m = 64 and 256, and m → ∞), a periodic embedding and a hard constraint
``u = x(1 - x) N``; the ratio to the plain network.
Run: ``uv run python benchmarks/architectures.py``.

Measured (2 cores, CPU, float64; steady state, seconds, and the ratio to the plain network):

============ ================= ====== ======== =========
activation   architecture      first  steady   × plain
============ ================= ====== ======== =========
erf          plain             1.79   0.15     1.00
erf          FF m=64           1.52   0.25     1.70
erf          FF m=256          1.79   0.57     3.84
erf          FF m=∞            1.33   0.15     1.02
erf          periodic          1.43   0.26     1.76
erf          hard constraint   1.52   0.15     1.04
tanh         plain             6.13   1.84     1.00
tanh         FF m=64           5.23   1.32     0.72
tanh         FF m=256          5.65   1.64     0.89
tanh         FF m=∞            5.23   1.22     0.67
tanh         periodic          5.18   1.32     0.72
tanh         hard constraint   5.84   1.83     1.00
============ ================= ====== ======== =========

A finite embedding adds one ``(b, m) × (m, b)`` product per jet coefficient and block (cost
``∝ m``); tanh is faster behind an embedding because ``⟨γ, γ⟩/F`` is the same at every point,
so its Mehler series need fewer terms than at the plain network's largest input variance.
"""

import time

import jax
import numpy as np

import ntk_theory as nt

T = nt.derivative(("x",), "x", 2)
ARCHITECTURES = {
    "plain": {},
    "FF m=64": {"embedding": nt.FourierFeatures.gaussian(64, 5.0, 1, seed=0)},
    "FF m=256": {"embedding": nt.FourierFeatures.gaussian(256, 5.0, 1, seed=0)},
    "FF m=∞": {"embedding": nt.FourierFeatures.infinite(5.0)},
    "periodic": {"embedding": nt.PeriodicEmbedding((1.0,))},
    "hard constraint": {"output_transform": nt.OutputTransform("x*(1 - x)")},
}


def timed(net, x, repeat=2):
    t = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, T, x))
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(repeat):
        jax.block_until_ready(nt.operator_kernel(net, T, x))
    return first, (time.perf_counter() - t) / repeat


def main(n: int = 1000) -> None:
    x = np.linspace(0.0, 1.0, n)[:, None]
    print(f"N = {n}, ∂²_x ∂²_x' Θ, depth 2")
    print(
        f"{'activation':>10} {'architecture':>16} {'first (s)':>10} {'steady (s)':>11} {'× plain':>8}"
    )
    for act in ("erf", "tanh"):
        base = None
        for name, kw in ARCHITECTURES.items():
            first, steady = timed(nt.MLP(2, act, 1.0, 0.5, **kw), x)
            base = steady if base is None else base
            print(f"{act:>10} {name:>16} {first:>10.2f} {steady:>11.2f} {steady / base:>8.2f}")


if __name__ == "__main__":
    main()
