"""liverseg: a replication of the cascaded, patch-wise, iteratively self-trained CNN for
liver and lesion segmentation in CT (IJIES 15(6), 2022, doi:10.22266/ijies2022.1231.47).

The library follows the data: ``io`` → ``datasets`` → ``preprocess`` → ``patches`` →
``models`` → ``cam``/``crf`` → ``losses``/``train`` → ``inference`` → ``postprocess`` →
``metrics``. Each module is importable on its own; only ``models``, ``losses`` and
``cam`` import Keras.
"""

__version__ = "0.1.0"
