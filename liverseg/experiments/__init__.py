"""The experiments of the paper's Tables 3–5, run as fair multi-seed comparisons.

:func:`compare` trains each :class:`Variant` (a named set of setting changes) for several
seeds on one split and scores it per held-out test patient, sharing every network it can
through the store of trained networks (:mod:`liverseg.train.store`: :func:`prepare`,
:func:`train_networks`); :mod:`.paper_tables` holds
the paper's numbers to print beside ours; :func:`summary_table` formats mean ± sd rows.

Names load with their module on first use, so reading results files (``.report``,
``.comparison``, ``.tables``) never imports Keras.
"""

import importlib

_EXPORTS = {
    "comparison": ("METRICS", "Comparison", "Variant", "paired_difference", "spread"),
    "variants": ("compare",),
    "plots": ("rounds_plot", "strip_plot"),
    "self_training": ("kept_round", "kept_rounds", "round_gain", "rounds_glue",
                      "unlabelled_changes", "unlabelled_glue", "unlabelled_summary"),
    "tables": ("default_sentence", "describe_difference", "markdown_table", "mean_sd",
               "reading_outcome", "reading_verdict", "rounds_table", "summary_table"),
    "volumes": ("box_table", "cleanup_figure", "compare_crf", "compare_fusions",
                "compare_postprocessing", "plane_model_folder", "plane_probabilities"),
}
#: the store's names, whose home is :mod:`liverseg.train.store`
_STORE = ("Data", "Trained", "front_folder", "front_key", "prepare", "rounds_key",
          "train_networks", "tuner_folder", "tuner_key")
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_HOME, *_STORE])


def __getattr__(name: str):
    if name not in _HOME and name not in _STORE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = "liverseg.train.store" if name in _STORE else f"{__name__}.{_HOME[name]}"
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
