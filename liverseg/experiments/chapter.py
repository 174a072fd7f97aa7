"""One call that opens a chapter of the book: its settings, its run folder and its outputs.

Every executable chapter starts the same way: papermill's parameters (profile, dataset, data
folder, Keras backend, run folder), the Keras backend chosen before Keras is imported, the
profile's settings for the dataset, the shared store of trained networks and the chapter's
results file. :func:`open_chapter` does all of it and returns a :class:`Chapter`::

    chapter = open_chapter("fusion", profile, dataset, data_dir, backend, run_dir)
    settings, store = chapter.settings, chapter.store

A parameter always wins; an empty one falls back to the environment (``LIVERSEG_PROFILE``,
``KERAS_BACKEND``) and then to the default (``demo``, ``tensorflow``), so a chapter run by
``liverseg reproduce`` runs with exactly the parameters papermill gave it.

Imports no Keras: the report chapter reads results files only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from liverseg.config import Profile, profile as profile_named
from liverseg.io.atomic import atomic_write_text

DEFAULT_PROFILE = "demo"
DEFAULT_BACKEND = "tensorflow"
BACKENDS = ("tensorflow", "jax", "torch")
SHARED_NETWORKS = {"self_training.iterations": 0}
"""What the chapters that compare variants of one cascade share: its networks before
self-training (Algorithm 1 is the self-training chapter's own subject), trained once into the
store and reused by the patch-level, loss, fusion, post-processing, lesion and results
chapters."""


@dataclasses.dataclass(frozen=True)
class Chapter:
    """An opened chapter: what its cells need, in one place."""

    name: str
    settings: Profile
    run_dir: Path
    dataset: str
    data_dir: str | None  # ``None``: the dataset's default (phantoms are made in the store)
    backend: str | None  # ``None``: the chapter uses no Keras

    @property
    def store(self) -> Path:
        """The store of trained networks, shared by every chapter of the run."""
        return self.run_dir / "store"

    @property
    def results_path(self) -> Path:
        """``<run>/results/<chapter>.json``, what the report chapter reads."""
        return self.run_dir / "results" / f"{self.name}.json"

    @property
    def shared(self) -> Profile:
        """The settings of the networks the chapters share (:data:`SHARED_NETWORKS`)."""
        return self.settings.replace(**SHARED_NETWORKS)

    def glue(self, **values) -> None:
        """Glue each value under its name for the chapter's text (``{glue:text}`name```)."""
        from myst_nb import glue

        for name, value in values.items():
            glue(name, value, display=False)

    def show(self, *markdown: str) -> None:
        """Display Markdown (tables, headed blocks) in the chapter."""
        from IPython.display import Markdown, display

        for text in markdown:
            display(Markdown(text))

    def save(self, results: dict) -> Path:
        """Write a plain results dictionary (with this run's settings) as the chapter's
        results file; a comparison saves itself (``comparison.save(chapter.results_path)``)."""
        record = {"chapter": self.name, "settings": self.settings.to_dict(),
                  "backend": self.backend, **results}
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.results_path, json.dumps(record, indent=2, default=_plain))
        return self.results_path


def open_chapter(name: str, profile: str = "", dataset: str = "synthetic", data_dir: str = "",
                 backend: str = "", run_dir: str = "runs/latest", *, keras: bool = True,
                 **changes) -> Chapter:
    """Open chapter ``name`` with papermill's parameters and print what it runs with.

    Args:
        profile: ``smoke``, ``demo`` or ``paper``; empty: ``LIVERSEG_PROFILE``, else ``demo``.
        dataset: ``synthetic``, ``lits`` or ``ircadb``.
        data_dir: the dataset's folder; empty for the dataset's default.
        backend: the Keras backend; empty: ``KERAS_BACKEND``, else ``tensorflow``. Set before
            Keras is imported.
        run_dir: the run folder (``store/`` of networks, ``results/``).
        keras: ``False`` for a chapter that trains nothing (no backend is chosen).
        changes: setting changes for this chapter (dotted names, as ``Profile.replace``).
    Raises:
        ValueError: an unknown profile, dataset or backend, or Keras already imported with
            another backend.
    """
    profile = profile or os.environ.get("LIVERSEG_PROFILE") or DEFAULT_PROFILE
    settings = profile_named(profile).for_dataset(dataset)
    if changes:
        settings = settings.replace(**changes)
    chosen = _choose_backend(backend) if keras else None
    chapter = Chapter(name, settings, Path(run_dir), dataset, data_dir or None, chosen)
    print(_header(chapter))
    return chapter


def _choose_backend(backend: str) -> str:
    backend = backend or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise ValueError(f"Keras is already running on {loaded.backend.backend()!r}; restart the "
                         f"kernel to use {backend!r}")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    return backend


def _header(chapter: Chapter) -> str:
    settings = chapter.settings
    text = f"{chapter.name}: profile {settings.name} on {settings.dataset}"
    if chapter.backend:
        from liverseg.backend import start_tensorflow_quietly

        start_tensorflow_quietly()
        import keras  # importing TensorFlow resets its logger: quieten it after

        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # its notes on retracing
        text += f"; Keras {keras.__version__} on {keras.backend.backend()}"
    return text + f"; seeds {settings.experiments.seeds}"


def _plain(value):
    """JSON for numpy scalars and arrays, tuples and paths in a results dictionary."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
