"""Benchmark (issue 11): tanh against erf, `MLP(3, act, 1.3, 0.2)`, d = 2, uniform points.

In one run: steady-state time of the plain Θ and of Δ_x Δ_x' Θ at N = 1000 for erf and tanh,
their ratio (target ≤ 10×), first-call time (compile + run) at N = 1000, and the peak memory of
tanh Δ_xΔ_x'Θ at N = 10,000 (target ≤ 4 GB) in a subprocess.

Measured 2026-12-04 (2 cores, float64, CPU, jax on Python 3.11):

| N | kernel | erf steady | tanh steady | tanh/erf | tanh first call |
|---|---|---|---|---|---|
| 1000 | plain Θ | 0.035 s | 0.181 s | 5.2× | 1.0 s |
| 1000 | Δ_xΔ_x'Θ | 0.266 s | 2.07 s | 7.8× | 8.7 s |
| 10,000 | Δ_xΔ_x'Θ (tanh) | | 160 s | | peak RSS 3.33 GB |

tanh Δ_xΔ_x'Θ at N = 1000 splits into ~0.55 s of host planning (Hermite coefficients of three
layers, orders 0-7, up to 608 terms) and ~1.5 s of Mehler sums in 36 blocks of 128 × 128.
The series needs hundreds of terms because tanh's poles at ±iπ/2 make the Hermite coefficients
decay like exp(-τ√(2k)/a) (see `ntk_theory._hermite`); erf's decay super-geometrically. On an
H200 (earlier commit) the ratio was 35× for Δ_xΔ_x'Θ: erf's blocks take 0.045 s there while
tanh's host planning does not shrink.

Run: `uv run python benchmarks/tanh_vs_erf.py`.
"""

import resource
import subprocess
import sys
import time

import jax
import numpy as np

import ntk_theory as nt

LAPLACE = nt.laplacian(("x", "y"))


def _net(act):
    return nt.MLP(3, act, W_std=1.3, b_std=0.2)


def _kernel(act, kind, x):
    if kind == "plain":
        return _net(act).ntk(x)
    return nt.operator_kernel(_net(act), LAPLACE, x)


def first_and_steady(act, kind, x, repeat=2):
    t = time.perf_counter()
    jax.block_until_ready(_kernel(act, kind, x))
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(repeat):
        jax.block_until_ready(_kernel(act, kind, x))
    return first, (time.perf_counter() - t) / repeat


def memory_child(n: int) -> None:
    x = np.random.default_rng(1).uniform(size=(n, 2))
    t = time.perf_counter()
    jax.block_until_ready(_kernel("tanh", "laplace", x))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"tanh Δ_xΔ_x'Θ N = {n}: {time.perf_counter() - t:.1f} s, peak {rss:.2f} GB")


def main() -> None:
    x = np.random.default_rng(0).uniform(size=(1000, 2))
    rows = {}
    print(f"{'kernel':>8} {'act':>5} {'first call (s)':>15} {'steady (s)':>11}")
    for kind in ("plain", "laplace"):
        for act in ("erf", "tanh"):
            first, steady = first_and_steady(act, kind, x)
            rows[(kind, act)] = steady
            print(f"{kind:>8} {act:>5} {first:>15.2f} {steady:>11.3f}")
        print(f"{kind:>8} tanh/erf = {rows[(kind, 'tanh')] / rows[(kind, 'erf')]:.1f}x")
    out = subprocess.run(
        [sys.executable, __file__, "10000"], capture_output=True, text=True, check=False
    )
    print(out.stdout.strip() or out.stderr[-500:])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        memory_child(int(sys.argv[1]))
    else:
        main()
