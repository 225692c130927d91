"""Benchmark: spectrum of an N = 4000 kernel vs the LAPACK floor; sphere_spectrum to degree 200.

Run: `uv run python benchmarks/spectra.py`.
"""

import time

import numpy as np
import scipy.linalg

import ntk_theory as nt


def best(f, repeat=3):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    net = nt.MLP(2, "erf", W_std=1.0, b_std=1.0)
    q = nt.box((0, 0), (1, 1), 4096, rule="sobol")
    K = np.asarray(net.ntk(q.points[:4000]))
    w = q.weights[:4000]
    t_spec = best(lambda: nt.spectrum(K, w))
    t_eigh = best(lambda: scipy.linalg.eigh(K, eigvals_only=True))
    t_np = best(lambda: np.linalg.eigvalsh(K))
    relu = nt.MLP(2, "relu", W_std=1.0, b_std=0.5)
    nt.sphere_spectrum(relu, 3, 20)
    t_sph = best(lambda: nt.sphere_spectrum(relu, 3, 200))
    s = nt.sphere_spectrum(relu, 3, 200, degree_window=(50, 200))
    print(f"{'spectrum(K, w), N = 4000 (s)':<44} {t_spec:8.2f}")
    print(f"{'scipy.linalg.eigh eigvals_only (s)':<44} {t_eigh:8.2f}")
    print(f"{'numpy.linalg.eigvalsh (s)':<44} {t_np:8.2f}")
    print(f"{'sphere_spectrum relu, d=3, degree 200 (s)':<44} {t_sph:8.2f}   (target < 2)")
    print(
        f"{'  degree decay exponent (theory d = 3)':<44} {s.degree_decay.alpha:8.3f} ± {s.degree_decay.stderr:.3f}"
    )


if __name__ == "__main__":
    main()
