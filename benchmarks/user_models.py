"""Benchmark: the empirical ∂²_x ∂²_x' NTK of a user's Flax NNX tanh model (1 → w → w → 1).

Each case runs in its own process (peak memory = that process's max RSS):

* ``ours``: ``empirical_ntk(model, x, T=u_xx)`` (chunked Jacobian products, memory_gb=1);
* ``explicit``: the baseline a user writes by hand, ``jax.jacrev`` of the stacked u_xx values
  (the full N × P Jacobian) and ``J Jᵀ`` -- the approach of Opifex's NTKWrapper.

Target (issue 14): width 4096, N = 200 under 4 GB. The explicit baseline at width 4096 needs the
200 × 16.8M Jacobian (27 GB in float64) and is run at width 1024 only, where both methods fit.

Measured (2 cores, CPU, float64; both runs shared the cores with other work):

======== ====== ===== ========== ========
method   width  N     time (s)   peak GB
======== ====== ===== ========== ========
ours     1024   200   31         1.16
explicit 1024   200   101        7.99
ours     4096   200   2880       1.80
======== ====== ===== ========== ========

Same trace(K) for both methods at width 1024. At width 4096 with ``memory_gb=1`` only 4 rows of
``J`` fit at once, so column chunks are recomputed for every block row (``N²/(2b)`` chunk
Jacobians): memory stays at 1.8 GB, and time is the price; a larger ``memory_gb`` trades back.
Run: ``uv run python benchmarks/user_models.py``.
"""

import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import ntk_theory as nt


class Net(nnx.Module):
    def __init__(self, width: int):
        kw = {"param_dtype": jnp.float64, "rngs": nnx.Rngs(0)}
        self.l1, self.l2 = nnx.Linear(1, width, **kw), nnx.Linear(width, width, **kw)
        self.l3 = nnx.Linear(width, 1, **kw)

    def __call__(self, x):
        return self.l3(jnp.tanh(self.l2(jnp.tanh(self.l1(x)))))


def child(method: str, width: int, n: int) -> None:
    model = Net(width)
    x = np.linspace(0.0, 1.0, n)[:, None]
    T = nt.Operator.parse("u_xx", ("x",))
    t = time.perf_counter()
    if method == "ours":
        K = nt.empirical_ntk(model, x, T=T, memory_gb=1.0)
    else:
        graphdef, params = nnx.split(model, nnx.Param)

        def uxx(p, xi):
            u = lambda q: nnx.merge(graphdef, p)(q[None])[0, 0]  # noqa: E731
            return jax.grad(lambda q: jax.grad(u)(q)[0])(xi)[0]

        J = jax.jacrev(lambda p: jax.vmap(lambda xi: uxx(p, xi))(jnp.asarray(x)))(params)
        J = jnp.concatenate([j.reshape(n, -1) for j in jax.tree_util.tree_leaves(J)], axis=1)
        K = J @ J.T
    K = np.asarray(jax.block_until_ready(K))
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{method:>9} {width:>6} {n:>5} {dt:>9.1f} {rss:>8.2f} {float(np.trace(K)):.12e}")


def main() -> None:
    print(f"{'method':>9} {'width':>6} {'N':>5} {'time (s)':>9} {'peak GB':>8} trace(K)")
    for method, width, n in (
        ("ours", 1024, 200),
        ("explicit", 1024, 200),
        ("ours", 4096, 200),
    ):
        out = subprocess.run(
            [sys.executable, __file__, method, str(width), str(n)],
            capture_output=True,
            text=True,
        )
        print(out.stdout.strip() or f"{method:>9} {width:>6} {n:>5} failed: {out.stderr[-300:]}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
