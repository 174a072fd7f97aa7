"""Starting TensorFlow without its start-up lines, for the command line and the chapters."""

from __future__ import annotations

import os
import sys


def start_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr sent to ``/dev/null`` while it loads.

    Its start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN's note)
    are written by C++ before any logging is set up, and TensorFlow 2.21 writes them whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says: before a command's output, or in a chapter's first cell, they
    are noise. Nothing is done on another Keras backend (``KERAS_BACKEND``) or when TensorFlow
    is already loaded; a missing TensorFlow is left for Keras to report, with stderr back.
    """
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            except ImportError:
                pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
