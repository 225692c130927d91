"""Benchmark: Δ_x Δ_x' Θ for 3 hidden erf layers in d = 2 (issue: operator kernels).

Reports, in one run: steady-state time of operator_kernel over the plain NTK matrix time at
N = 2000 (target ≤ 10×), speed-up over nested autodiff through kernel_fn at N = 500 (target
≥ 25×), compile time (target ≤ 5 s), max relative difference (≤ 1e-10), and peak memory of
N = 10,000 (target < 4 GB, measured in a subprocess). Run: `uv run python benchmarks/operator_kernel.py`.
"""

import resource
import subprocess
import sys
import time

import jax
import numpy as np

import ntk_theory as nt


def timed(f, repeat=3):
    f()
    t = time.perf_counter()
    for _ in range(repeat):
        jax.block_until_ready(f())
    return (time.perf_counter() - t) / repeat


def peak_memory_child(n: int) -> None:
    net = nt.MLP(3, "erf", W_std=1.3, b_std=0.2)
    x = np.random.default_rng(0).uniform(size=(n, 2))
    t = time.perf_counter()
    K = nt.operator_kernel(net, nt.laplacian(("x", "y")), x)
    jax.block_until_ready(K)
    print(
        f"{time.perf_counter() - t:.1f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f}"
    )


def main() -> None:
    net = nt.MLP(3, "erf", W_std=1.3, b_std=0.2)
    L = nt.laplacian(("x", "y"))
    x = np.random.default_rng(0).uniform(size=(2000, 2))
    t0 = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, L, x[:64]))
    compile_s = time.perf_counter() - t0
    t_op = timed(lambda: nt.operator_kernel(net, L, x))
    t_ntk = timed(lambda: net.ntk(x))
    x5 = x[:500]
    t0 = time.perf_counter()
    ref = nt.operator_kernel_autodiff(net, L, x5)
    jax.block_until_ready(ref)
    t_ref_first = time.perf_counter() - t0
    t_ref = timed(lambda: nt.operator_kernel_autodiff(net, L, x5), repeat=1)
    t_op5 = timed(lambda: nt.operator_kernel(net, L, x5))
    K5 = np.asarray(nt.operator_kernel(net, L, x5))
    diff = float(np.max(np.abs(K5 - np.asarray(ref))) / np.max(np.abs(ref)))
    out = subprocess.run(
        [sys.executable, __file__, "--child", "10000"], capture_output=True, text=True, check=True
    ).stdout.split()
    rows = [
        ("compile time (first call, s)", f"{compile_s:.2f}", "≤ 5"),
        ("N=2000 operator_kernel (s)", f"{t_op:.3f}", ""),
        ("N=2000 plain NTK (s)", f"{t_ntk:.3f}", ""),
        ("ratio operator / plain", f"{t_op / t_ntk:.1f}x", "≤ 10x"),
        ("N=500 autodiff reference (s, steady; first call)", f"{t_ref:.2f}; {t_ref_first:.1f}", ""),
        ("N=500 operator_kernel (s)", f"{t_op5:.3f}", ""),
        ("speed-up over autodiff", f"{t_ref / t_op5:.0f}x", "≥ 25x"),
        ("max relative difference", f"{diff:.1e}", "≤ 1e-10"),
        ("N=10000: time (s), peak RSS (GB)", f"{out[0]}, {out[1]}", "< 4 GB"),
    ]
    for name, value, target in rows:
        print(f"{name:<52} {value:>16} {target:>8}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        peak_memory_child(int(sys.argv[2]))
    else:
        main()
