"""liverseg: a replication of the cascaded, patch-wise, iteratively self-trained CNN for
liver and lesion segmentation in CT (IJIES 15(6), 2022, doi:10.22266/ijies2022.1231.47).

The library follows the data: ``io`` → ``datasets`` → ``preprocess`` → ``patches`` →
``models`` → ``cam``/``crf`` → ``prior`` → ``predict`` → ``losses``/``train`` →
``inference`` → ``postprocess`` → ``metrics``, and ``io`` again to write the label volume.
Beside the flow: ``labels`` (the 0/1/2 label values), ``lesion_view`` (the liver's box the
lesion networks look at, for ``train`` and ``inference``), ``config`` (the settings profiles),
``model_folder`` (the trained networks and their settings, from ``train`` to ``inference``),
``errors`` (exceptions that name the file), ``experiments`` (the book's multi-seed comparisons
over a shared store of trained networks), ``reproduce`` (the chapters run with papermill and
rendered) and ``cli`` (the ``liverseg`` command). Each
module is importable on its own; ``labels``, ``io``, ``datasets``, ``preprocess``, ``crf``,
``prior``, ``postprocess``, ``metrics`` and ``config`` do not import Keras.
"""

__version__ = "0.1.0"
