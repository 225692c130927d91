"""Benchmark: operator kernels of deep networks with unbounded activations (issue 11).

`MLP(3, act, 1.3, 0.2)`, d = 2, Δ_xΔ_x'Θ on points uniform in [0, 4]² (first-layer variance up
to 13.6, second-layer variance up to ~10). First layer: gelu with the derivatives inside the
expectation (its variance is beyond the chain rule's 4), SiLU, softplus and tanh through their
closed-form Gaussian scale mixtures; layers 2 and 3: gelu in closed form, SiLU and softplus
through the mixtures (24 Kolmogorov nodes per side), tanh through Mehler series (its deeper
variances stay O(1)). Before the mixtures, SiLU and softplus were refused here
(deeper variance beyond the Mehler range) or 4e-10 … 4e-7 off where allowed.

Measured 2026-12-04 (steady state; first call = compile + run):

| activation | CPU, 2 cores, N = 250: first call | steady | H200, N = 1000: steady |
|---|---|---|---|
| gelu | 65 s | 59 s | 1.7 s |
| silu | 63 s | 56 s | 3.8 s |
| softplus | 59 s | 52 s | 2.9 s |
| tanh | 20 s | 9.1 s | 3.5 s |

(The H200 column is from the commit before the Mehler layout change; tanh is faster now.)
The closed-form mixtures cost 24 × 24 component evaluations per entry and Price pair; on a GPU
that is cheap, on two CPU cores it is the bulk of the time.

Large inputs, `uv run python benchmarks/deep_unbounded.py 100 300` (x in [0, 300]², deeper
variances up to ~1e5): gelu, SiLU and softplus then take the polar route (`ntk_theory._polar`,
above a deeper variance of 100), every layer in closed form, the first included. Measured
2026-12-05, CPU, 2 cores, N = 100 (first call / steady), before → after the polar route
(before: the first layer inside for gelu, `det Σ` carried by `_mixture.gram`; [0, 1000]² was
refused):

| activation | x in [0, 4]² | x in [0, 300]² | x in [0, 1000]² |
|---|---|---|---|
| gelu | 17.8 s / 10.3 s | 71.8 s / 35.9 s → 24.2 s / 0.08 s | → 22.9 s / 0.09 s |
| silu | 15.0 s / 9.4 s | 45.1 s / 22.4 s → 86.3 s / 50.9 s | → 84.3 s / 50.9 s |
| softplus | 14.3 s / 8.6 s | 53.6 s / 24.6 s → 83.4 s / 46.1 s | → 79.9 s / 45.4 s |
| tanh | 9.1 s / 1.5 s | 11.1 s / 1.5 s | 11.0 s / 1.6 s |

The polar layer evaluates six closed forms per pair of mixture components (24 × 24 for SiLU
and softplus: both regimes of ρ and the hand-on to the next layer) where the route before
evaluated four; gelu is a single component, and its first layer no longer needs the 2-D
quadrature. (tanh's deeper variances stay O(1): no polar route.)

With the degree-0 hand-on (`q = det Σ/(a²b²)`, `ρ` from unit vectors) and small points
(`_polar.mixed_layer`), measured 2026-12-05, CPU, 2 cores, N = 100, first call / steady:

| activation | [0, 300]², `b_std = 0.2` | [0, 300]², `b_std = 0`, the origin included (before: refused) |
|---|---|---|
| gelu | 22.9 s / 0.08 s | 34.4 s / 0.12 s |
| silu | 78.0 s / 51.4 s | 111.9 s / 63.6 s |
| softplus | 71.0 s / 39.3 s | 100.5 s / 49.5 s |
| tanh | 9.5 s / 1.5 s | 10.8 s / 1.5 s |

A small point among the inputs adds the one-sided closed form (`_polar._one_sided`) to every
pair of mixture components: about 1.3× the steady time.

Run: `uv run python benchmarks/deep_unbounded.py [N] [side] [b_std]` (``b_std`` given: the
origin, the domain's corner, is among the points).
"""

import sys
import time

import jax
import numpy as np

import ntk_theory as nt

LAPLACE = nt.laplacian(("x", "y"))


def first_and_steady(act: str, x: np.ndarray, b_std: float) -> tuple[float, float]:
    net = nt.MLP(3, act, W_std=1.3, b_std=b_std)
    t = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, LAPLACE, x))
    first = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(nt.operator_kernel(net, LAPLACE, x))
    return first, time.perf_counter() - t


def main(n: int = 500, side: float = 4.0, b_std: float | None = None) -> None:
    """``b_std`` given: that bias, and the domain's corner (the origin) among the points."""
    x = np.random.default_rng(0).uniform(0.0, side, size=(n, 2))
    if b_std is not None:
        x[0] = 0.0
    bias = 0.2 if b_std is None else b_std
    corner = "" if b_std is None else ", the origin included"
    print(f"N = {n}, d = 2, Δ_xΔ_x'Θ, MLP(3, act, 1.3, {bias:g}), x in [0, {side:g}]²{corner}")
    print(f"{'activation':>10} {'first call (s)':>15} {'steady (s)':>11} {'×gelu':>7}")
    base = None
    for act in ("gelu", "silu", "softplus", "tanh"):
        first, steady = first_and_steady(act, x, bias)
        base = base or steady
        print(f"{act:>10} {first:>15.2f} {steady:>11.2f} {steady / base:>7.1f}", flush=True)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 500,
        float(sys.argv[2]) if len(sys.argv) > 2 else 4.0,
        float(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
