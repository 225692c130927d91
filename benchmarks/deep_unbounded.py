"""Benchmark: operator kernels of deep networks with unbounded activations (issue 11).

`MLP(3, act, 1.3, 0.2)`, d = 2, Δ_xΔ_x'Θ on points uniform in [0, 4]² (first-layer variance up
to 13.6, second-layer variance up to ~10): gelu through its closed form, SiLU and softplus
through their Gaussian scale mixtures in layers 2 and 3 (24 × 24 closed-form components per
entry), tanh through Mehler series (its deeper variances stay O(1)). Before the mixtures, SiLU
and softplus were refused here (deeper variance beyond the Mehler range) or 4e-10 … 4e-7 off
where allowed. Steady state and first call (compile + run), N = 500.

Measured (2 cores, float64, this machine otherwise idle):

| activation | first call (s) | steady (s) | ×gelu |
|---|---|---|---|
| gelu | see the run | | 1 |
| silu | | | |
| softplus | | | |
| tanh | | | |

Run: `uv run python benchmarks/deep_unbounded.py [N]`.
"""

import sys
import time

import jax
import numpy as np

import ntk_theory as nt

LAPLACE = nt.laplacian(("x", "y"))


def first_and_steady(act: str, x: np.ndarray) -> tuple[float, float]:
    net = nt.MLP(3, act, W_std=1.3, b_std=0.2)
    t = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, LAPLACE, x))
    first = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, LAPLACE, x))
    return first, time.perf_counter() - t


def main(n: int = 500) -> None:
    x = np.random.default_rng(0).uniform(0.0, 4.0, size=(n, 2))
    print(f"N = {n}, d = 2, Δ_xΔ_x'Θ, MLP(3, act, 1.3, 0.2), x in [0, 4]²")
    print(f"{'activation':>10} {'first call (s)':>15} {'steady (s)':>11} {'×gelu':>7}")
    base = None
    for act in ("gelu", "silu", "softplus", "tanh"):
        first, steady = first_and_steady(act, x)
        base = base or steady
        print(f"{act:>10} {first:>15.2f} {steady:>11.2f} {steady / base:>7.1f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
