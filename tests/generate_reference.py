"""Generate tests/data/reference_*.json with the independent reference of tests/reference.py.

These values take CPU hours (one to three seconds each in extended precision), so they are
stored; the tests recompute a few of them live to show this script's output is current.

    uv run python tests/generate_reference.py sweep      # one-hidden-layer scale sweep
    uv run python tests/generate_reference.py depth2     # the two-layer case (tanh, 9 values, ~2 min)
    uv run python tests/generate_reference.py poisson [SHARD SHARDS]  # tanh K_rr of 1-D Poisson, 100 points
    uv run python tests/generate_reference.py chain     # one layer where the chain rule strains (~1 min)
    uv run python tests/generate_reference.py deep      # two layers of SiLU and softplus (~15 min)
    uv run python tests/generate_reference.py mixture   # the mixture formula at 50 digits (~10 min)
    uv run python tests/generate_reference.py large [SHARD SHARDS]  # deep gelu/SiLU/softplus, |x| ≤ 500 (~40 CPU min)
    uv run python tests/generate_reference.py small     # the same with b_std = 0 and the origin (~35 CPU min)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import reference as R

DATA = Path(__file__).parent / "data"

ACTIVATIONS = (
    "erf",
    "tanh",
    "sin",
    "gelu",
    "relu",
    "relu2",
    "relu3",
    "relu4",
    "sigmoid",
    "silu",
    "softplus",
)
#: the derivative orders each activation supports per side (ReLU^k: Price pairs up to order k)
MAX_ORDER = {"relu": 0, "relu2": 0, "relu3": 0, "relu4": 1}
SCALES = (0.01, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
ORDERS_1D = (0, 1, 2, 4)
MULTI_2D = (
    ((0, 0), (0, 0)),
    ((1, 0), (0, 1)),
    ((2, 0), (2, 0)),
    ((0, 2), (2, 0)),
    ((1, 1), (1, 1)),
)
SETTINGS = ((1.0, 1.0), (1.4, 0.3))
POISSON_POINTS = 100


def sweep_cases():
    for name in ACTIVATIONS:
        top = MAX_ORDER.get(name, 4)
        for ws, bs in SETTINGS:
            for scale in SCALES:
                x = np.array([scale])
                for k in ORDERS_1D:
                    if k > top or (name not in ("tanh", "erf") and k == 4 and scale > 3):
                        continue
                    for y in (x, x * 1.1, -x * 0.7):
                        yield name, ws, bs, x, y, (k,), (k,)
                x2 = scale * np.array([0.6, -0.8])
                y2 = scale * np.array([0.8, 0.6]) * 1.05
                for alpha, beta in MULTI_2D:
                    if max(sum(alpha), sum(beta)) > top:
                        continue
                    for y in (x2, y2, x2 * 1.02 + scale * np.array([0.01, 0.0])):
                        yield name, ws, bs, x2, y, alpha, beta


def run_sweep(shard: int, shards: int) -> None:
    out = []
    t0 = time.time()
    for n, (name, ws, bs, x, y, alpha, beta) in enumerate(sweep_cases()):
        if n % shards != shard:
            continue
        value = R.one_layer(name, ws, bs, x, y, alpha, beta)
        out.append(
            {
                "activation": name,
                "W_std": ws,
                "b_std": bs,
                "x": x.tolist(),
                "y": y.tolist(),
                "alpha": list(alpha),
                "beta": list(beta),
                "value": repr(value),
            }
        )
        if len(out) % 20 == 0:
            print(f"shard {shard}: {len(out)} values, {time.time() - t0:.0f} s", flush=True)
    path = DATA / f"reference_sweep_{shard}.json"
    path.write_text(json.dumps(out, indent=0))


def run_depth2() -> None:
    out = []
    for x, y in ((0.3, 0.3), (0.3, 0.75), (1.2, 1.25)):
        for k in (0, 1, 2):
            value = R.two_layer("tanh", 1.0, 1.0, x, y, k)
            out.append(
                {
                    "activation": "tanh",
                    "W_std": 1.0,
                    "b_std": 1.0,
                    "x": x,
                    "y": y,
                    "k": k,
                    "value": repr(value),
                }
            )
            print(out[-1], flush=True)
    (DATA / "reference_depth2.json").write_text(json.dumps(out, indent=0))


#: one hidden layer, W_std = 1.3, b_std = 0.2, at inputs |x| ≈ 1 ... 1.5: the first layer's
#: variance is 1.7 ... 4, where the Price-pair chain rule (before the inside form takes over)
#: is most strained; the stored sweep above has no point there with these scales.
CHAIN_POINTS = (1.0, 1.3, 1.5)
LOGISTIC = ("tanh", "sigmoid", "silu", "softplus")
#: two hidden layers (W_std = 1.3, b_std = 0.2) of the unbounded logistic activations at
#: inputs where their second layer takes the mixture route (variance 3.3 and 5.4)
DEEP_POINTS = (1.5, 2.0)


def chain_cases():
    for name in LOGISTIC:
        for x in CHAIN_POINTS:
            for y in (x, x + 0.02, 0.1 - 0.8 * x):
                for k in (1, 2):
                    yield name, x, y, k


def run_chain() -> None:
    out = []
    for name, x, y, k in chain_cases():
        value = R.one_layer(name, 1.3, 0.2, [x], [y], (k,), (k,))
        out.append({"activation": name, "x": x, "y": y, "k": k, "value": repr(value)})
    _write_atomic(DATA / "reference_chain.json", json.dumps(out, indent=0))


def deep_cases():
    for name in ("silu", "softplus"):
        for x in DEEP_POINTS:
            for y in (x, x + 0.05, -0.6 * x):
                for k in (1, 2):
                    yield name, x, y, k


def run_deep() -> None:
    """Two hidden layers by the separate route of ``reference.two_layer`` (resumable)."""
    path = DATA / "reference_deep.json"
    out = json.loads(path.read_text()) if path.exists() else []
    done = {(r["activation"], r["x"], r["y"], r["k"]) for r in out}
    for case in deep_cases():
        if case in done:
            continue
        name, x, y, k = case
        value = R.two_layer(name, 1.3, 0.2, x, y, k)
        out.append({"activation": name, "x": x, "y": y, "k": k, "value": repr(value)})
        _write_atomic(path, json.dumps(out, indent=0))
        print(out[-1], flush=True)


#: the mixture formula at 50 digits (``reference.mixture_theta``) for depth-2 SiLU and softplus
#: at large inputs, where the longdouble routes above lose their digits to the chain rule
MIXTURE_POINTS = (10.0, 30.0)


def run_mixture() -> None:
    import mpmath as mp

    path = DATA / "reference_mixture.json"
    out = json.loads(path.read_text()) if path.exists() else []
    done = {(r["activation"], r["x"], r["y"], r["k"]) for r in out}
    for name in ("silu", "softplus"):
        for x in MIXTURE_POINTS:
            for y in (x, x * 1.01 + 0.01, -0.5 * x):
                for k in (1, 2):
                    if (name, x, y, k) in done:
                        continue
                    value = R.mixture_derivative(name, 1.3, 0.2, 2, x, y, k)
                    out.append(
                        {"activation": name, "x": x, "y": y, "k": k, "value": mp.nstr(value, 25)}
                    )
                    _write_atomic(path, json.dumps(out, indent=0))
                    print(out[-1], flush=True)


#: Deep gelu, SiLU and softplus at large inputs (the polar route, ``_polar.layer``): the NTK's
#: ``∂^k_x∂^k_y Θ`` (k = 1, 2) at depth 2 (all three) and 3 (gelu) on pairs of LARGE_POINTS (gelu
#: also at 1e4, MAX_INPUT), the NNGP's ``∂²_x∂²_y Σ`` on pairs of NNGP_POINTS, up to the NNGP
#: limit (``reference.mixture_derivative``, 50 digits)
LARGE_POINTS = (0.3, 30.0, -1000.0, 1000.0)
GELU_POINTS = (*LARGE_POINTS, 10000.0)
NNGP_POINTS = (-0.5, 3.0, 30.0, -290.0)


def _pairs(points):
    """Every pair ``(x, y)`` of the points with ``y`` at or after ``x``."""
    return [(x, y) for i, x in enumerate(points) for y in points[i:]]


def large_cases():
    for name, depth in (("gelu", 2), ("gelu", 3), ("silu", 2), ("softplus", 2)):
        for x, y in _pairs(GELU_POINTS if name == "gelu" else LARGE_POINTS):
            for k in (1, 2):
                yield name, depth, "ntk", x, y, k
        for x, y in _pairs(NNGP_POINTS):
            yield name, depth, "nngp", x, y, 2


def _append_values(path: Path, key: tuple, cases, done: set, bias) -> None:
    """``reference.mixture_derivative`` (``W_std = 1.3``, ``b_std = bias(case)``) of every case
    not in ``done``, appended to the records in ``path`` (written atomically after each)."""
    import mpmath as mp

    out = json.loads(path.read_text()) if path.exists() else []
    for case in cases:
        if case in done:
            continue
        row = dict(zip(key, case, strict=True))
        value = R.mixture_derivative(
            row["activation"],
            1.3,
            bias(row),
            row["depth"],
            row["x"],
            row["y"],
            row["k"],
            row["get"],
        )
        out.append({**row, "value": mp.nstr(value, 25)})
        _write_atomic(path, json.dumps(out, indent=0))
        print(out[-1], flush=True)


def run_large(shard: int, shards: int) -> None:
    """Resumable, sharded like ``poisson`` (``reference_large_{shard}.json``)."""
    key = ("activation", "depth", "get", "x", "y", "k")
    done = {
        tuple(r[k] for k in key)
        for f in DATA.glob("reference_large_*.json")
        for r in json.loads(f.read_text())
    }
    cases = [case for n, case in enumerate(large_cases()) if n % shards == shard]
    _append_values(DATA / f"reference_large_{shard}.json", key, cases, done, lambda row: 0.2)


#: Deep gelu (depth 3), SiLU and softplus (depth 2) with no bias (``b_std = 0``, the default)
#: on points from the origin out to 1000: the polar route's small points (first-layer variance
#: below ``_engine.POLAR_SMALL_VARIANCE``) and their pairs with large ones. gelu: the NTK's
#: ``∂^k_x∂^k_y Θ`` (k = 1, 2) on pairs of SMALL_GELU_POINTS (0.75 and 0.8 straddle the
#: threshold at ``W_std = 1.3``), SiLU and softplus k = 2 on SMALL_POINTS; the NNGP's
#: ``∂²_x∂²_y Σ`` on pairs of SMALL_NNGP_POINTS.
SMALL_POINTS = (0.0, -0.3, 30.0, 1000.0)
SMALL_GELU_POINTS = (0.0, 0.01, -0.3, 0.75, 0.8, 30.0, -1000.0)
SMALL_NNGP_POINTS = (0.0, 3.0, -290.0, 1000.0, -10000.0)


def small_cases():
    for x, y in _pairs(SMALL_GELU_POINTS):
        for k in (1, 2):
            yield "gelu", 3, 0.0, "ntk", x, y, k
    for name in ("silu", "softplus"):
        for x, y in _pairs(SMALL_POINTS):
            yield name, 2, 0.0, "ntk", x, y, 2
    for name, depth in (("gelu", 3), ("silu", 2), ("softplus", 2)):
        for x, y in _pairs(SMALL_NNGP_POINTS):
            yield name, depth, 0.0, "nngp", x, y, 2


def run_small() -> None:
    """Resumable (``reference_small.json``)."""
    path = DATA / "reference_small.json"
    key = ("activation", "depth", "b_std", "get", "x", "y", "k")
    done = (
        {tuple(r[k] for k in key) for r in json.loads(path.read_text())} if path.exists() else set()
    )
    _append_values(path, key, small_cases(), done, lambda row: row["b_std"])


def run_poisson(shard: int, shards: int) -> None:
    """K_rr = ∂²_x ∂²_y Θ of one hidden tanh layer (σ_w = σ_b = 1) on linspace(0, 1, 100).

    Resumable: entries already in any ``reference_poisson_*.json`` are skipped, and each shard
    appends to its own file (written atomically every 50 entries).
    """
    xs = np.linspace(0.0, 1.0, POISSON_POINTS)
    done = {
        (i, j)
        for f in DATA.glob("reference_poisson_*.json")
        for i, j, _ in json.loads(f.read_text())
    }
    path = DATA / f"reference_poisson_{shard}.json"
    out = json.loads(path.read_text()) if path.exists() else []
    t0 = time.time()
    pairs = [(i, j) for i in range(POISSON_POINTS) for j in range(i, POISSON_POINTS)]
    for n, (i, j) in enumerate(pairs):
        if n % shards != shard or (i, j) in done:
            continue
        value = R.one_layer("tanh", 1.0, 1.0, [xs[i]], [xs[j]], (2,), (2,))
        out.append([i, j, repr(value)])
        if len(out) % 50 == 0:
            _write_atomic(path, json.dumps(out))
            print(
                f"poisson shard {shard}: {len(out)} entries, {time.time() - t0:.0f} s", flush=True
            )
    _write_atomic(path, json.dumps(out))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    what = sys.argv[1]
    shard, shards = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (0, 1)
    if what in ("sweep", "poisson", "large"):
        {"sweep": run_sweep, "poisson": run_poisson, "large": run_large}[what](shard, shards)
    else:
        {
            "depth2": run_depth2,
            "chain": run_chain,
            "deep": run_deep,
            "mixture": run_mixture,
            "small": run_small,
        }[what]()
