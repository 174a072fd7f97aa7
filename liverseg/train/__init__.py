"""Training the paper's system: slices, the resumable loop, cascades, Algorithm 1.

``train_system(settings, out)`` trains everything a model folder needs; the pieces are
:mod:`~liverseg.train.slices` (what a network learns from), :mod:`~liverseg.train.loop`
(checkpoints, resume, early stopping), :mod:`~liverseg.train.cascade` (localizer → prior →
tuner) and :mod:`~liverseg.train.self_training` (Algorithm 1); :mod:`~liverseg.train.allocator`
keeps TensorFlow's training tensors in reused heap memory.
"""

from liverseg.train.cascade import Cascade, train_cascade
from liverseg.train.loop import FitResult, fit
from liverseg.train.self_training import self_train
from liverseg.train.slices import SliceSet, build_slices, training_indices
from liverseg.train.system import load_cases, train_system

__all__ = ["Cascade", "FitResult", "SliceSet", "build_slices", "fit", "load_cases",
           "self_train", "train_cascade", "train_system", "training_indices"]
