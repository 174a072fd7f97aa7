"""From a CT volume to a label volume (paper sections 3.9–3.10).

The pipeline: cut the preprocessed ``(z, y, x)`` volume into slices along each plane
(:mod:`liverseg.datasets.planes`), bring them to the model's input size
(:mod:`liverseg.resample`), let that plane's networks predict a probability per
slice, put the slices back at their own size and into the volume, fuse the planes' volumes
by soft voting (:mod:`~liverseg.inference.fusion`, Eq. 8), and clean the mask up
(:mod:`liverseg.postprocess`). :mod:`~liverseg.inference.volume` runs the whole chain on a
:class:`~liverseg.io.Volume` with a trained model folder (``Segmenter``, ``segment_file``).

Importing this package is cheap: ``fusion`` uses NumPy only; ``volume`` imports Keras
when it loads the networks.
"""

from liverseg.inference.fusion import (
    METHODS,
    FusionAccumulator,
    fuse,
    intersection,
    majority,
    soft_vote,
    union,
)
from liverseg.resample import from_model_size, resize_stack, to_model_size

__all__ = [
    "METHODS",
    "FusionAccumulator",
    "from_model_size",
    "fuse",
    "intersection",
    "majority",
    "resize_stack",
    "soft_vote",
    "to_model_size",
    "union",
]
