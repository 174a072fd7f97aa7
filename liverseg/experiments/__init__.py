"""The experiments of the paper's Tables 3–5, run as fair multi-seed comparisons.

:func:`compare` trains each :class:`Variant` (a named set of setting changes) for several
seeds on one split and scores it per held-out test patient, sharing every network it can
through a store folder (:func:`prepare`, :func:`train_variant`); :mod:`.paper_tables` holds
the paper's numbers to print beside ours; :func:`summary_table` formats mean ± sd rows.
"""

from liverseg.experiments.compare import (METRICS, Comparison, Data, Trained, Variant, compare,
                                          front_key, prepare, rounds_key, spread, train_variant,
                                          tuner_key)
from liverseg.experiments.plots import strip_plot
from liverseg.experiments.tables import describe_difference, mean_sd, summary_table

__all__ = ["METRICS", "Comparison", "Data", "Trained", "Variant", "compare", "describe_difference",
           "front_key",
           "mean_sd", "prepare", "rounds_key", "spread", "strip_plot", "summary_table", "train_variant",
           "tuner_key"]
