"""Shared plumbing of the figure scripts: output files, style, fitted-exponent labels."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display needed

import matplotlib.pyplot as plt
import numpy as np

from ntk_theory.spectra import DecayFit

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 9,
        "axes.titlesize": 9,
        "legend.fontsize": 7,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)


def script(main) -> None:
    """Command line of a figure script: ``python -m paper_figures.fig_<name> [out_dir] [--quick]``."""
    args = [a for a in sys.argv[1:] if a != "--quick"]
    main(args[0] if args else "figures", quick="--quick" in sys.argv)


def output_dir(out_dir) -> Path:
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(fig, out_dir, name: str, data: dict, quick: bool | None = None) -> dict:
    """Write ``name.png``, ``name.pdf`` and ``name.json`` (the numbers behind the figure).

    Every file is written to a temporary name and renamed when complete, so an interrupted run
    never leaves a partial file; the JSON goes first, so a failure while drawing never loses the
    numbers. The JSON records ``quick`` (the size setting) for ``ntk-theory figures`` to know
    whether a finished figure can be reused. Returns the paths written.
    """
    out = output_dir(out_dir)
    if quick is not None:
        data = {**data, "quick": bool(quick)}
    json_path = out / f"{name}.json"
    _atomic(
        json_path, lambda p: p.write_text(json.dumps(_jsonable(data), indent=1, allow_nan=True))
    )
    paths = {"json": json_path}
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        _atomic(path, lambda p, ext=ext: fig.savefig(p, bbox_inches="tight", format=ext))
        paths[ext] = path
    plt.close(fig)
    return paths


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def fit_label(name: str, record: dict | None) -> str:
    """Legend entry ``name: α = 2.01 ± 0.03`` of a :func:`fit_record` (``None``: no fit)."""
    if not record:
        return f"{name}: no fit"
    return f"{name}: α = {record['alpha']:.2f} ± {record['stderr']:.2f}"


def fit_record(fit: DecayFit | None) -> dict | None:
    if fit is None:
        return None
    return {
        "alpha": fit.alpha,
        "stderr": fit.stderr,
        "window": list(fit.window),
        "r2": fit.r2,
        "log_c": fit.log_c,
    }


def positive(values) -> np.ndarray:
    """Eigenvalues above zero (what a log axis can show), as an array."""
    v = np.asarray(values, dtype=float)
    return v[v > 0]
