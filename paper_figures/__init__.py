"""Scripts that regenerate the project's figures (``ntk-theory figures`` runs them all).

Each ``fig_<name>.py`` has ``main(out_dir, quick=False)`` writing ``<name>.png``, ``<name>.pdf``
and ``<name>.json`` (the numbers behind the figure) and can be run on its own:
``uv run python -m paper_figures.fig_<name> [out_dir] [--quick]``.
"""

#: Figure modules in the order ``ntk-theory figures`` runs them.
FIGURES = (
    "decay_operators",
    "sphere_spectra",
    "width_error",
    "wyp_poisson",
    "loss_prediction",
    "trace_weights",
    "wave_kernel",
    "prediction",
    "fourier_features",
    "hard_constraint",
    "stokes",
)

#: Rough run time of each figure on 2 cores, full size and ``--quick`` (seconds). The command
#: line starts the slowest first, so parallel workers finish together.
COST = {
    "prediction": (420, 40),
    "stokes": (35, 30),
    "fourier_features": (30, 25),
    "hard_constraint": (20, 20),
    "wyp_poisson": (90, 18),
    "wave_kernel": (70, 19),
    "width_error": (45, 14),
    "loss_prediction": (26, 6),
    "decay_operators": (22, 17),
    "trace_weights": (17, 10),
    "sphere_spectra": (11, 8),
}
