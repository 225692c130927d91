"""Every paper figure, at quick sizes: files written, and the numbers behind them make sense.

Each ``paper_figures/fig_<name>.py`` writes PNG + PDF + JSON; the checks read the JSON (what a
reader of the figure would check) against theory: Bietti–Bach exponents on the sphere, the
Laplace–Beltrami shift of exactly 4 in the degree exponent, the -1/2 width slope, K_rr ≫ K_uu
(Wang–Yu–Perdikaris), drift shrinking with width, trace weights improving the solution.
"""

import importlib
import json
import os
import time

import numpy as np
import pytest

import paper_figures
from ntk_theory.cli import main as cli_main
from paper_figures import _runner as _figure_runner


@pytest.fixture(scope="session")
def figures(tmp_path_factory, worker_id):
    """Every figure at quick sizes, made as a user makes them: ``ntk-theory figures --quick``,
    in two worker processes (so the parallel runner is exercised too).

    Made once per test run: under pytest-xdist the first worker to get here makes them in the
    run's shared temporary folder, the others wait for it (``--dist loadgroup`` would keep these
    tests on one worker, but it does not group on pytest 9).
    """
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # one folder per run
    out, done = root / "figures", root / "figures.status"
    try:
        os.close(os.open(root / "figures.lock", os.O_CREAT | os.O_EXCL))
    except FileExistsError:  # another worker makes them
        deadline = time.monotonic() + 1800
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(1.0)
        assert done.exists() and done.read_text() == "0", "the figures failed on another worker"
    else:
        status = 1
        try:
            status = cli_main(
                ["figures", "--quick", "--out", str(out), "--jobs", "2", "--no-cache"]
            )
        finally:
            done.write_text(str(status))
        assert status == 0
    return {
        name: (
            {ext: out / f"{name}.{ext}" for ext in ("json", "png", "pdf")},
            json.loads((out / f"{name}.json").read_text()),
        )
        for name in paper_figures.FIGURES
    }


def test_every_figure_writes_png_pdf_json(figures):
    assert set(figures) == set(paper_figures.FIGURES)
    for paths, _ in figures.values():
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert paths["pdf"].read_bytes()[:5] == b"%PDF-"


def test_decay_operators(figures):
    results = figures["decay_operators"][1]["results"]
    fitted = [r for r in results if "skipped" not in r]
    assert all(np.isfinite(r["fit"]["alpha"]) and r["fit"]["stderr"] > 0 for r in fitted)
    # ReLU⁴ allows first-order operators only: the second-order ones are reported, not faked.
    skipped = [r for r in results if "skipped" in r]
    assert {r["activation"] for r in skipped} == {"relu4"}
    assert all("relu4" in r["skipped"] for r in skipped)
    # On the sphere the Laplace–Beltrami operator slows the decay (theory: μ_k (k(k+1))²).
    alpha = {
        r["operator"]: r["fit"]["alpha"]
        for r in fitted
        if r["activation"] == "erf" and r["domain"] == "sphere S²"
    }
    assert alpha["Δ_S Δ_S' Θ"] < alpha["Θ"]


def test_sphere_spectra(figures):
    data = figures["sphere_spectra"][1]
    for a in data["anchors"]:  # Bietti & Bach: NTK k^-3, NNGP k^-5, ReLU² NNGP k^-7 on S²
        assert abs(a["fit"]["alpha"] - a["theory_exponent"]) < 0.2, a["label"]
    relu3 = [e for e in data["operators"] if e["label"].startswith("ReLU³")]
    plain, with_op = (e["fit"] for e in relu3)
    # μ_k is multiplied by (k(k+1))² on every degree: the fitted exponent drops by the OLS
    # slope of log (k(k+1))² over the fit window (→ 4 as k → ∞; ≈ 3.9 for k = 10..45).
    k = np.arange(with_op["window"][0], with_op["window"][1] + 1, dtype=float)
    shift = np.polyfit(np.log(k), np.log((k * (k + 1)) ** 2), 1)[0]
    assert 3.7 < shift <= 4.0
    assert abs((plain["alpha"] - with_op["alpha"]) - shift) < 0.05
    theta = next(e for e in data["nystrom"] if e["label"] == "Θ")
    # 120 random nodes in quick mode: Monte Carlo error ~ N^-1/2 ≈ 0.09 on a degree group's sum.
    assert theta["rel_error_degrees_0_2"] < 0.25


def test_width_error(figures):
    kernels = figures["width_error"][1]["kernels"]
    for k in kernels:
        # Quick sizes (3 widths, 6 seeds): the slope is noisy; theory -1/2.
        assert -1.0 < k["slope"] < -0.15, k
    theta, residual = kernels
    assert residual["mean_error"][0] > theta["mean_error"][0]  # derivatives fluctuate more


def test_wyp_poisson(figures):
    data = figures["wyp_poisson"][1]
    inf = data["spectra"]["infinite"]
    assert inf["K_rr"][0] > 10 * inf["K_uu"][0]  # residual block dominates (WYP Fig. 1)
    runs = {(r["depth"], r["width"]): r for r in data["training"]}
    assert runs[(1, 100)]["drift"][-1] < runs[(1, 10)]["drift"][-1]
    assert runs[(1, 100)]["param_change"][-1] < runs[(1, 10)]["param_change"][-1]


def test_loss_prediction(figures):
    for run in figures["loss_prediction"][1]["runs"]:
        actual = np.asarray(run["actual"])
        predicted = np.asarray(run["predicted_infinite"])
        assert np.allclose(actual[0], predicted[0], rtol=1e-6)  # same initial errors
        assert actual[-1, 0] < 1e-2 * actual[0, 0]  # the residual is fitted
        assert predicted[-1, 0] < 1e-2 * predicted[0, 0]


def test_trace_weights(figures):
    data = figures["trace_weights"][1]
    w = list(data["weights"].values())
    assert w[0] == pytest.approx(1.0, abs=0.1)  # Tr K ≈ Tr K_rr
    assert w[1] > 10  # the boundary block is tiny: it gets a large weight


def test_wave_kernel(figures):
    for entry in figures["wave_kernel"][1]["kernels"]:
        weights = entry["trace_weights"]
        assert weights["residual"] < min(v for k, v in weights.items() if k != "residual")


def test_prediction(figures):
    # 1-D Poisson, sin(πx): the ensembles' L2 error follows the infinite-width prediction
    # (after step 0, where 4 draws of u_0 are noise); sin(4πx) needs the weights to move ~100x
    # further, which is why no width here follows it.
    data = figures["prediction"][1]
    cases = {c["label"]: c for c in data["cases"]}
    for label in ("sin(1πx), unweighted", "sin(1πx), trace weights"):
        case = cases[label]
        predicted = np.asarray(case["predicted_l2_error"])
        widest = np.asarray(case["runs"][-1]["l2_error"])
        assert predicted[-1] < 0.05 * predicted[0]
        # the mean of `seeds` networks scatters by σ/√seeds around μ_t (3 standard errors, in
        # units of ‖u‖), plus a finite-width allowance of half the predicted error
        exact = np.linalg.norm(case["exact"])
        noise = 3 * np.linalg.norm(case["predicted_std"]) / np.sqrt(data["seeds"]) / exact
        assert abs(widest[-1] - predicted[-1]) <= 0.5 * predicted[-1] + noise, (label, widest)
    slow = cases["sin(4πx), unweighted"]["weight_change"][-1]
    assert slow > 20 * cases["sin(1πx), unweighted"]["weight_change"][-1]


def test_fourier_features(figures):
    # Larger frequency scales flatten the residual kernel's spectrum (the spectral-bias remedy of
    # Tancik et al. and Wang-Wang-Perdikaris): the fitted exponent falls from the plain network
    # to s = 1 to s = 10, for both activations, in the m → ∞ limit and at m = 64.
    results = figures["fourier_features"][1]["results"]
    for act in ("tanh", "erf"):
        alpha = {r["embedding"]: r["fit"]["alpha"] for r in results if r["activation"] == act}
        for m in ("64", "∞"):
            assert alpha["plain"] > alpha[f"FF s=1, m={m}"] > alpha[f"FF s=10, m={m}"], alpha


def test_hard_constraint(figures):
    for r in figures["hard_constraint"][1]["results"]:
        assert set(r["dynamics"]) == {
            "soft, unit weights",
            "soft, trace weights",
            "hard, residual only",
        }
        # the boundary block is small (2 points): its trace weight is large
        assert r["trace_weights"]["u(0), u(1)"] > 10 * r["trace_weights"]["residual"]
        for v in r["nystrom"].values():
            assert v["fit"]["alpha"] > 0 and v["fit"]["stderr"] > 0


def test_stokes(figures):
    data = figures["stokes"][1]
    tr = dict(zip(data["labels"], data["traces"], strict=True))
    # the cavity is symmetric under x ↔ y with u ↔ v: equal traces for the two momentum
    # equations and for the two wall pieces (to round-off)
    assert tr["residual 0"] == pytest.approx(tr["residual 1"], rel=1e-12)
    assert tr["u on the walls"] == pytest.approx(tr["v on the walls"], rel=1e-12)
    assert all(v > 0 for v in data["trace_weights"].values())
    for label, lam in data["spectra"].items():  # only eigenvalues above the round-off floor
        assert min(lam) > data["floors"][label] and max(lam) == lam[0]


def test_cli_figures_rejects_unknown_names(capsys):
    assert cli_main(["figures", "--only", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown figure" in err and "decay_operators" in err


def test_cli_figures_isolates_failures(tmp_path, monkeypatch, capsys):
    module = importlib.import_module("paper_figures.fig_trace_weights")

    def broken(out_dir, quick=False):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "main", broken)
    only = ["--only", "trace_weights", "loss_prediction"]
    code = cli_main(
        ["figures", "--quick", "--out", str(tmp_path), "--jobs", "1", "--no-cache", *only]
    )
    err = capsys.readouterr().err
    assert code == 1 and "trace_weights FAILED" in err and "failed: trace_weights" in err
    assert (tmp_path / "loss_prediction.png").exists()  # the other figure is still written


def test_worker_process_reports_failures(tmp_path):
    # A figure that cannot run in a worker process comes back as a failed result with its
    # traceback; the worker's crash or exception never takes the others down.
    reported = []
    results = _figure_runner.run_parallel(
        ["no_such_figure"], tmp_path, True, 1, lambda i, r: reported.append((i, r))
    )
    assert [r.name for r in results] == ["no_such_figure"] and reported[0][0] == 1
    assert results[0].files == () and "paper_figures.fig_no_such_figure" in results[0].error


def test_cpu_groups_are_disjoint():
    groups = _figure_runner.cpu_groups(2)
    assert len(groups) == 2
    if groups[0] is not None:
        assert groups[0] and groups[1] and not groups[0] & groups[1]


def test_cli_spectrum_and_compare(tmp_path, capsys):
    plot = tmp_path / "s.png"
    assert cli_main(["spectrum", "--operator", "u_xx", "--n", "24", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "decay" in out and plot.exists()
    assert cli_main(["spectrum", "--operator", "u_yy"]) == 2  # y is not a coordinate of [0, 1]
    assert "coordinates are x" in capsys.readouterr().err
    sweep = tmp_path / "sweep.json"
    args = ["compare", "--n", "8", "--widths", "32", "128", "--seeds", "2", "--out", str(sweep)]
    assert cli_main(args) == 0
    assert "slope" in capsys.readouterr().out
    assert len(json.loads(sweep.read_text())["records"]) == 4
