"""Benchmark (issue 15): `predict` at N_train = 2000, N_test = 10,000.

1-D Poisson `u'' = f`, `u = sin(πx)` (1998 collocation points + 2 boundary points), test points
on a 10,000-point grid, steps (10, 100, 1000) and t → ∞, mean and standard deviation. Prints
the wall time of each part (kernels, eigendecomposition, moments) for tanh (depth 3) and erf.
Run: `uv run python benchmarks/prediction.py`.
"""

import time

import numpy as np

import ntk_theory as nt


def main() -> None:
    problem = nt.poisson_1d(1998)
    x_test = np.linspace(0.0, 1.0, 10_000)[:, None]
    for act in ("erf", "tanh"):
        net = nt.MLP(3, act, W_std=1.3, b_std=0.2)
        t0 = time.perf_counter()
        p = nt.predict(net, problem, x_test, [10, 100, 1000])
        total = time.perf_counter() - t0
        print(
            f"{act}: N_train = {p.eigenvalues.size}, N_test = {x_test.shape[0]}: {total:.1f} s "
            f"(first call, compilation included); L2 error at t → ∞ {p.l2_error_inf:.2e}, "
            f"{p.n_floored} modes below the floor {p.floor:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
