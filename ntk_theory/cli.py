"""The ``ntk-theory`` command line.

* ``ntk-theory figures [--out DIR] [--quick] [--only NAME ...] [--jobs N] [--force]`` regenerates
  the figures of ``paper_figures/`` (PNG, PDF and the JSON numbers behind each), skipping those
  whose files are complete and newer than their sources;
* ``ntk-theory spectrum`` computes the spectrum of ``T_x T_x' Θ`` for a network, operator and
  domain given on the command line;
* ``ntk-theory compare`` runs a width sweep: empirical against infinite-width (operator) NTK;
* ``ntk-theory predict`` prints (and plots) the solution an infinitely wide PINN converges to on
  a built-in problem, with its ±2σ band and L2 error over training;
* ``ntk-theory demo`` prints a kernel, an operator kernel and their spectra.

Errors are one line (``error: ...``) with exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import domains
from ._precision import Float64Error
from .activations import ACTIVATIONS, SmoothnessError
from .networks import MLP
from .operator_kernels import operator_kernel
from .operators import Operator, OperatorError
from .spectra import compare_decay, format_table, spectrum
from .sweeps import SweepFileError


class CLIError(Exception):
    """A problem with the command line itself (reported as one line)."""


def _domain(name: str, n: int):
    if name == "interval":
        return domains.interval(0.0, 1.0, n), ("x",)
    if name == "square":
        return domains.box((0.0, 0.0), (1.0, 1.0), n), ("x", "y")
    if name == "sphere":
        return domains.sphere(3, n), ("x", "y", "z")
    raise CLIError(f"unknown domain {name!r}; use interval, square or sphere.")


def _parse_operator(text: str, coords) -> Operator:
    try:
        return Operator.parse(text, coords)
    except OperatorError as err:
        raise CLIError(
            f"{err} (the domain's coordinates are {', '.join(coords)}; e.g. --operator "
            f"'u_{coords[0]}{coords[0]}')"
        ) from None


def _writable_file(path: str | None, what: str) -> Path | None:
    """Check an output path before any computing: its folder exists and it is not a folder."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{what} {path!r} is a folder; give a file name.")
    if not p.parent.exists():
        raise CLIError(f"{what} {path!r}: the folder {str(p.parent)!r} does not exist.")
    return p


def _network(args) -> MLP:
    return MLP(args.depth, args.activation, W_std=args.W_std, b_std=args.b_std)


def _spectrum_cmd(args) -> int:
    plot = _writable_file(args.plot, "--plot")
    net = _network(args)
    q, coords = _domain(args.domain, args.n)
    T = _parse_operator(args.operator, coords)
    K = np.asarray(operator_kernel(net, T, q.points))
    s = spectrum(K, q.weights)
    print(f"{net}\noperator {T}\ndomain {q.name}\n")
    print("top eigenvalues:", " ".join(f"{v:.4e}" for v in s.eigenvalues[: args.top]))
    print(s.summary())
    if plot:
        _plot_spectrum(s, f"{net}, T = {T}, {q.name}", plot)
        print(f"plot written to {plot}")
    return 0


def _plot_spectrum(s, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = s.eigenvalues[s.eigenvalues > s.floor]
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.loglog(np.arange(1, lam.size + 1), lam, label=f"{s.decay}" if s.decay else "eigenvalues")
    ax.set_xlabel("eigenvalue index i")
    ax.set_ylabel("integral-operator eigenvalue λ_i")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _compare_cmd(args) -> int:
    from .sweeps import width_sweep

    out = _writable_file(args.out, "--out")
    net = _network(args)
    q, coords = _domain(args.domain, args.n)
    T = None if args.operator == "u" else _parse_operator(args.operator, coords)
    print(f"{net}, kernel {'Θ' if T is None else f'T_x T_x′ Θ with T = {T}'}, {q.name}")
    res = width_sweep(
        net, q.points, args.widths, range(args.seeds), operator=T, weights=q.weights, out=out
    )
    print(res.table())
    return 0


def _figures_cmd(args) -> int:
    try:
        package = importlib.import_module("paper_figures")
        runner = importlib.import_module("paper_figures._runner")
    except ImportError:
        raise CLIError(
            "the paper_figures package is not importable; run from a clone of the repository "
            "with `uv run ntk-theory figures`."
        ) from None
    figures = package.FIGURES
    names = list(figures)
    if args.only:
        unknown = [n for n in args.only if n not in figures]
        if unknown:
            raise CLIError(
                f"unknown figure(s) {', '.join(unknown)}; choose from: {', '.join(figures)}"
            )
        names = [n for n in figures if n in args.only]
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file; give a folder.")
    if not args.force:
        current = [n for n in names if runner.up_to_date(n, out, args.quick)]
        for n in current:
            print(f"{n}: up to date in {out}/ (use --force to redo)", file=sys.stderr)
        names = [n for n in names if n not in current]
        if not names:
            return 0
    jobs = args.jobs or min(_DEFAULT_JOBS, os.cpu_count() or 1, len(names))
    jobs = min(jobs, len(names))
    if not args.no_cache:
        runner.use_compilation_cache(args.cache_dir)
    t_all = time.perf_counter()
    results = []

    def report(i: int, result) -> None:
        results.append(result)
        if result.error is not None:
            print(result.error, file=sys.stderr)
            print(f"[{i}/{len(names)}] {result.name} FAILED", file=sys.stderr, flush=True)
        else:
            print(
                f"[{i}/{len(names)}] {result.name} done in {result.seconds:.1f} s: "
                + ", ".join(result.files),
                file=sys.stderr,
                flush=True,
            )

    try:
        if jobs == 1:
            runner.run_serial(names, out, args.quick, report)
        else:
            # Slowest first, so that the workers finish together.
            names = sorted(names, key=lambda n: -package.COST.get(n, (0, 0))[args.quick])
            print(f"running {len(names)} figures in {jobs} worker processes", file=sys.stderr)
            runner.run_parallel(names, out, args.quick, jobs, report)
    except KeyboardInterrupt:
        done = [r.name for r in results if r.error is None]
        print(
            f"\ninterrupted: every worker stopped; finished: {', '.join(done) or 'none'} "
            f"(in {out}/); rerun to do the rest (finished figures are skipped).",
            file=sys.stderr,
        )
        return 130
    failed = [r.name for r in results if r.error is not None]
    total = time.perf_counter() - t_all
    print(
        f"{len(names) - len(failed)}/{len(names)} figures written to {out}/ in {total:.0f} s",
        file=sys.stderr,
    )
    if failed:
        print(f"failed: {', '.join(failed)} (tracebacks above)", file=sys.stderr)
        return 1
    return 0


#: ``ntk-theory predict --problem``: the catalogue of :mod:`ntk_theory.problems`.
_PROBLEMS = ("poisson_1d", "poisson_2d", "wave_1d")


def _problem(args):
    from . import problems

    if args.problem == "poisson_1d":
        return problems.poisson_1d(args.n, frequency=args.frequency)
    if args.problem == "poisson_2d":
        return problems.poisson_2d(args.n, args.n)
    return problems.wave_1d(args.n)


def _test_points(problem, n: int) -> np.ndarray:
    d = problem.x_residual.shape[1]
    t = np.linspace(0.0, 1.0, n)
    if d == 1:
        return t[:, None]
    return np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)


def _predict_cmd(args) -> int:
    import dataclasses

    from .prediction import predict
    from .spectra import trace_weights

    plot = _writable_file(args.plot, "--plot")
    net = MLP(args.depth, args.activation, W_std=args.W_std, b_std=args.b_std)
    problem = _problem(args)
    if args.trace_weights:
        weights = trace_weights(problem.kernel(net))
        problem = dataclasses.replace(problem, loss_weights=tuple(weights.values()))
    x = _test_points(problem, args.n_test)
    pred = predict(
        net, problem, x, args.steps, learning_rate=args.learning_rate, method=args.method
    )
    print(
        f"{net}\n{problem.name}; loss weights {', '.join(f'{w:.4g}' for w in problem.loss_weights)}"
    )
    print(
        f"{'gradient descent' if pred.method == 'gd' else 'gradient flow'}, η = "
        f"{pred.learning_rate:.4g}; {pred.n_floored} of {pred.eigenvalues.size} modes below "
        f"the floor {pred.floor:.2e}\n"
    )
    has_exact = pred.exact is not None
    print(f"{'step':>10} {'rel. L2 error':>14} {'mean σ':>10}")
    rows = [(f"{t:g}", m, sd) for t, m, sd in zip(pred.steps, pred.mean, pred.std, strict=True)]
    rows.append(("∞", pred.mean_inf, pred.std_inf))
    for label, mean, sd in rows:
        err = pred._rel(mean) if has_exact else float("nan")
        print(f"{label:>10} {err:>14.4e} {float(np.mean(sd)):>10.3e}")
    if plot:
        _plot_prediction(pred, problem, f"{net}\n{problem.name}", plot)
        print(f"plot written to {plot}")
    return 0


def _plot_prediction(pred, problem, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    if pred.x_test.shape[1] == 1:
        x = pred.x_test[:, 0]
        if pred.exact is not None:
            ax1.plot(x, pred.exact, "k--", lw=1, label="exact")
        for label, mean, sd in (
            *(
                (f"step {t:g}", m, s)
                for t, m, s in zip(pred.steps, pred.mean, pred.std, strict=True)
            ),
            ("t → ∞", pred.mean_inf, pred.std_inf),
        ):
            (line,) = ax1.plot(x, mean, lw=1.2, label=label)
            ax1.fill_between(x, mean - 2 * sd, mean + 2 * sd, color=line.get_color(), alpha=0.2)
        ax1.set_xlabel("x")
        ax1.set_ylabel("μ_t ± 2σ_t")
        ax1.legend(fontsize=7)
    else:
        n = round(np.sqrt(pred.x_test.shape[0]))
        im = ax1.imshow(pred.mean_inf.reshape(n, n).T, origin="lower", extent=(0, 1, 0, 1))
        fig.colorbar(im, ax=ax1)
        ax1.set_title("μ_∞", fontsize=8)
    if pred.exact is not None and pred.steps.size:
        ax2.semilogy(np.maximum(pred.steps, 1), pred.l2_error(), "o-", label="predicted mean")
        ax2.axhline(pred.l2_error_inf, color="k", lw=0.8, ls=":", label="t → ∞")
        ax2.set_xscale("log")
        ax2.set_xlabel("step")
        ax2.set_ylabel("relative L2 error")
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.path.join(base, "ntk_theory", "xla")


#: Worker processes by default (each holds its own JAX runtime; a full figure peaks at 2.6 GB).
_DEFAULT_JOBS = 4


def _demo_cmd(args) -> int:
    net = MLP(2, "erf", W_std=1.3, b_std=0.2)
    q = domains.interval(0.0, 1.0, args.n)
    rows = compare_decay(
        [
            ("Θ", np.asarray(net.ntk(q.points))),
            (
                "∂_x ∂_x' Θ",
                np.asarray(operator_kernel(net, Operator.parse("u_x", ("x",)), q.points)),
            ),
            (
                "∂²_x ∂²_x' Θ",
                np.asarray(operator_kernel(net, Operator.parse("u_xx", ("x",)), q.points)),
            ),
        ],
        q.weights,
    )
    print(f"{net} on [0, 1], {q.n} Gauss–Legendre nodes: integral-operator spectra\n")
    print(format_table(rows))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _architecture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--activation",
        default="tanh",
        choices=list(ACTIVATIONS),
        help="activation of the hidden layers (default tanh)",
    )
    p.add_argument("--depth", type=_positive_int, default=1, help="hidden layers (default 1)")
    p.add_argument("--W-std", type=float, default=1.0, help="weight scale σ_w (default 1)")
    p.add_argument("--b-std", type=float, default=1.0, help="bias scale σ_b (default 1)")


def _network_args(p: argparse.ArgumentParser) -> None:
    _architecture_args(p)
    p.add_argument(
        "--operator",
        default="u",
        help="T in T_x T_x' Θ, in the domain's coordinates: 'u' (plain NTK, default), 'u_x', "
        "'u_xx', '-(u_xx + u_yy)' ...",
    )
    p.add_argument(
        "--domain",
        default="interval",
        choices=["interval", "square", "sphere"],
        help="[0,1] (coordinate x), [0,1]^2 (x, y), or S^2 (x, y, z); default interval",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntk-theory",
        description="Infinite-width NTKs of physics-informed networks: kernels, operator "
        "kernels T_x T_x' Θ, their spectra, and comparisons with real networks.",
        epilog="Start with `ntk-theory figures --quick` (about a minute) or "
        "`ntk-theory spectrum --operator u_xx`.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fig = sub.add_parser(
        "figures",
        help="regenerate the paper figures (PNG + PDF + JSON numbers)",
        description="Run every paper_figures/fig_<name>.py; a failing figure is reported and "
        "the others are still written. Figures whose files are complete and newer than their "
        "sources are skipped (--force redoes them); Ctrl-C stops every worker.",
    )
    fig.add_argument("--out", default="figures", help="output folder (default ./figures)")
    fig.add_argument(
        "--quick", action="store_true", help="small sizes: all figures in about a minute"
    )
    try:
        names = ", ".join(importlib.import_module("paper_figures").FIGURES)
    except ImportError:
        names = "see paper_figures/"
    fig.add_argument("--only", nargs="+", metavar="NAME", help=f"only these figures: {names}")
    fig.add_argument("--force", action="store_true", help="redo figures that are up to date")
    fig.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help=f"worker processes (default: number of cores, at most {_DEFAULT_JOBS}); "
        "1 runs everything in this process",
    )
    fig.add_argument(
        "--cache-dir",
        default=_default_cache_dir(),
        help="keep compiled kernels here, so later runs start faster (default %(default)s)",
    )
    fig.add_argument("--no-cache", action="store_true", help="do not read or write --cache-dir")
    sp = sub.add_parser(
        "spectrum",
        help="eigenvalues, decay exponent and diagnostics of T_x T_x' Θ on a domain",
        description="Integral-operator spectrum of the infinite-width operator NTK T_x T_x' Θ.",
    )
    _network_args(sp)
    sp.add_argument(
        "--n", type=_positive_int, default=64, help="nodes per dimension (samples on the sphere)"
    )
    sp.add_argument("--top", type=_positive_int, default=8, help="eigenvalues to print (default 8)")
    sp.add_argument("--plot", metavar="FILE.png", help="also save a log-log plot of the spectrum")
    cmp_ = sub.add_parser(
        "compare",
        help="width sweep: empirical finite-width NTK against the infinite-width limit",
        description="Relative error and spectra of empirical (operator) NTKs over widths and "
        "seeds; theory predicts error ∝ width^-1/2. --out keeps finished runs (a rerun resumes; "
        "a file of another configuration is refused, never overwritten).",
    )
    _network_args(cmp_)
    cmp_.add_argument(
        "--n", type=_positive_int, default=24, help="points per dimension (default 24)"
    )
    cmp_.add_argument(
        "--widths", type=_positive_int, nargs="+", default=[64, 256, 1024], help="hidden widths"
    )
    cmp_.add_argument(
        "--seeds", type=_positive_int, default=3, help="initializations per width (default 3)"
    )
    cmp_.add_argument("--out", help="JSON file: finished runs are saved and a rerun resumes")
    pr = sub.add_parser(
        "predict",
        help="the solution an infinitely wide PINN converges to, with ±2σ over initializations",
        description="Mean and standard deviation of the infinitely wide network trained on a "
        "built-in problem (gradient descent or flow), at the given steps and t → ∞, with the "
        "relative L2 error to the exact solution.",
    )
    _architecture_args(pr)
    pr.add_argument("--problem", default="poisson_1d", choices=list(_PROBLEMS))
    pr.add_argument(
        "--n",
        type=_positive_int,
        default=16,
        help="collocation points (per dimension in 2-D; default 16)",
    )
    pr.add_argument(
        "--frequency", type=float, default=1.0, help="poisson_1d: u = sin(kπx) (default 1)"
    )
    pr.add_argument(
        "--steps",
        type=float,
        nargs="+",
        default=[10, 100, 1000, 10000],
        help="steps to predict at (strictly increasing; t → ∞ is always shown)",
    )
    pr.add_argument("--learning-rate", type=float, help="η (default 1/λ_max)")
    pr.add_argument("--method", choices=["gd", "flow"], default="gd")
    pr.add_argument(
        "--trace-weights", action="store_true", help="Wang–Yu–Perdikaris trace loss weights"
    )
    pr.add_argument(
        "--n-test", type=_positive_int, default=101, help="test points (per dimension in 2-D)"
    )
    pr.add_argument("--plot", metavar="FILE.png", help="also save the prediction's plot")
    demo = sub.add_parser("demo", help="spectra of Θ, ∂Θ∂' and ∂²Θ∂'² for a small erf network")
    demo.add_argument("--n", type=_positive_int, default=64, help="quadrature nodes (default 64)")
    return parser


#: Errors that are the user's to fix: reported as one line.
USER_ERRORS = (
    CLIError,
    ValueError,
    OperatorError,
    SmoothnessError,
    SweepFileError,
    Float64Error,
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "figures": _figures_cmd,
        "spectrum": _spectrum_cmd,
        "compare": _compare_cmd,
        "demo": _demo_cmd,
        "predict": _predict_cmd,
    }
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
