"""Benchmark: empirical ∂²_x ∂²_x' NTK, erf, 2 hidden layers, N = 100 points in 1-D.

Per width: time, peak memory (subprocess RSS) and relative Frobenius error against the
analytic kernel. Target at width 4096: ≤ 60 s and ≤ 8 GB on 2 cores.
Run: `uv run python benchmarks/empirical.py`.
"""

import resource
import subprocess
import sys
import time

import jax
import numpy as np

import ntk_theory as nt


def child(width: int) -> None:
    net = nt.MLP(2, "erf")
    x = np.linspace(-1, 1, 100)[:, None]
    T = nt.derivative(("x",), "x", 2)
    K = np.asarray(nt.operator_kernel(net, T, x))
    t = time.perf_counter()
    Ke = nt.empirical_ntk(net, x, T=T, width=width, seed=0)
    jax.block_until_ready(Ke)
    dt = time.perf_counter() - t
    err = np.linalg.norm(np.asarray(Ke) - K) / np.linalg.norm(K)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{width:>6} {dt:>9.1f} {rss:>9.2f} {err:>10.3e}")


def main() -> None:
    print(f"{'width':>6} {'time (s)':>9} {'peak GB':>9} {'rel. err':>10}")
    for width in (256, 1024, 4096):
        out = subprocess.run(
            [sys.executable, __file__, str(width)], capture_output=True, text=True, check=True
        )
        print(out.stdout.strip())


if __name__ == "__main__":
    if len(sys.argv) == 2:
        child(int(sys.argv[1]))
    else:
        main()
