"""The ``ntk-theory`` command line.

``ntk-theory demo`` prints a kernel, an operator kernel and their integral-operator spectra;
``ntk-theory spectrum`` computes the spectrum of ``T_x T_x' Θ`` for a network, operator and
domain given on the command line.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import domains
from .activations import ACTIVATIONS
from .networks import MLP
from .operator_kernels import operator_kernel
from .operators import Operator, OperatorError
from .spectra import compare_decay, format_table, spectrum


def _domain(name: str, n: int):
    if name == "interval":
        return domains.interval(0.0, 1.0, n), ("x",)
    if name == "square":
        return domains.box((0.0, 0.0), (1.0, 1.0), n), ("x", "y")
    if name == "sphere":
        return domains.sphere(3, n), ("x", "y", "z")
    raise SystemExit(f"Unknown domain {name!r}; use interval, square or sphere.")


def _spectrum_cmd(args) -> int:
    net = MLP(args.depth, args.activation, W_std=args.W_std, b_std=args.b_std)
    q, coords = _domain(args.domain, args.n)
    try:
        T = Operator.parse(args.operator, coords)
    except OperatorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    K = np.asarray(operator_kernel(net, T, q.points))
    s = spectrum(K, q.weights)
    print(f"{net}\noperator {T}\ndomain {q.name}\n")
    print("top eigenvalues:", " ".join(f"{v:.4e}" for v in s.eigenvalues[: args.top]))
    print(s.summary())
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ntk-theory",
        description="Infinite-width NTKs of physics-informed networks: kernels, operator "
        "kernels and their spectra.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="spectra of Θ, ∂Θ∂' and ∂²Θ∂'² for a small erf network")
    demo.add_argument("--n", type=int, default=64, help="quadrature nodes (default 64)")
    sp = sub.add_parser("spectrum", help="spectrum of T_x T_x' Θ on a domain")
    sp.add_argument("--activation", default="tanh", choices=list(ACTIVATIONS))
    sp.add_argument("--depth", type=int, default=1, help="hidden layers (default 1)")
    sp.add_argument("--W-std", type=float, default=1.0)
    sp.add_argument("--b-std", type=float, default=1.0)
    sp.add_argument("--operator", default="u", help="e.g. 'u_xx' or '-(u_xx + u_yy)' (default u)")
    sp.add_argument("--domain", default="interval", choices=["interval", "square", "sphere"])
    sp.add_argument("--n", type=int, default=64, help="nodes per dimension (samples on the sphere)")
    sp.add_argument("--top", type=int, default=8, help="eigenvalues to print")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo_cmd(args)
    return _spectrum_cmd(args)


if __name__ == "__main__":
    sys.exit(main())
