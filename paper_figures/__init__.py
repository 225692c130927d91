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
)
