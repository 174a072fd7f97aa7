"""The experiments of the paper's Tables 3–5, run as fair multi-seed comparisons.

:func:`compare` trains each :class:`Variant` (a named set of setting changes) for several
seeds on one split and scores it per held-out test patient, sharing every network it can
through a store folder (:func:`prepare`, :func:`train_variant`); :mod:`.paper_tables` holds
the paper's numbers to print beside ours; :func:`summary_table` formats mean ± sd rows.
"""

from liverseg.experiments.compare import (METRICS, Comparison, Data, Trained, Variant, compare,
                                          front_folder, front_key, prepare, rounds_key, spread,
                                          train_variant, tuner_folder, tuner_key)
from liverseg.experiments.plots import rounds_plot, strip_plot
from liverseg.experiments.tables import (default_sentence, describe_difference, mean_sd,
                                        reading_outcome, reading_verdict, rounds_table,
                                        summary_table)
from liverseg.experiments.volumes import (compare_crf, compare_fusions, compare_postprocessing,
                                          plane_model_folder, plane_probabilities)

__all__ = [
    "METRICS", "Comparison", "Data", "Trained", "Variant", "compare", "compare_crf",
    "compare_fusions", "compare_postprocessing", "default_sentence", "describe_difference",
    "front_folder", "front_key", "mean_sd", "plane_model_folder", "plane_probabilities",
    "prepare", "reading_outcome", "reading_verdict", "rounds_key", "rounds_plot",
    "rounds_table", "spread", "strip_plot",
    "summary_table", "train_variant", "tuner_folder", "tuner_key",
]
