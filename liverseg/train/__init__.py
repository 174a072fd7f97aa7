"""Training the paper's system: slices, the resumable loop, cascades, Algorithm 1, the store.

``train_system(settings, out)`` trains everything a model folder needs through the store of
trained networks (:mod:`~liverseg.train.store`: one training path, shared with the book's
chapters); the pieces are :mod:`~liverseg.train.slices` (what a network learns from),
:mod:`~liverseg.train.loop` (checkpoints, resume, early stopping),
:mod:`~liverseg.train.cascade` (localizer → prior → tuner) and
:mod:`~liverseg.train.self_training` (Algorithm 1); :mod:`~liverseg.train.allocator` keeps
TensorFlow's training tensors in reused heap memory and :mod:`~liverseg.train.adam` gives
Keras' Adam TensorFlow's fused update.

Names load with their module on first use, so :mod:`~liverseg.train.scores` (read by the
results code) never imports Keras.
"""

import importlib

_EXPORTS = {
    "loop": ("FitResult", "fit"),
    "self_training": ("self_train",),
    "slices": ("SliceSet", "build_slices", "training_indices"),
    "store": ("Data", "Trained", "prepare", "train_networks"),
    "system": ("load_cases", "train_system"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))
