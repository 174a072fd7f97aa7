"""The model folder that ``liverseg train`` and the book's systems write (one writer,
:func:`write_model_folder`) and ``liverseg segment`` reads.

One JSON file, ``liverseg-model.json``, holds the whole settings tree of the run
(:class:`liverseg.config.Profile`), the planes and structures trained and the versions that
trained them; beside it, one ``.keras`` file per network:
``{plane}_{structure}_{network}.keras`` with ``network`` ``localizer`` or ``tuner`` and
``structure`` ``liver`` or ``lesion``. Reading checks that every file the JSON names exists,
so an incomplete folder fails with a message naming what is missing, before any work.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
from pathlib import Path
from typing import Mapping

from liverseg import __version__
from liverseg.config import Profile
from liverseg.errors import CorruptFileError, MissingFileError

MANIFEST = "liverseg-model.json"
NETWORKS = ("localizer", "tuner")


@dataclasses.dataclass
class ModelFolder:
    """What a model folder holds: its settings and the path of each network."""

    root: Path
    settings: Profile
    planes: tuple[str, ...]
    structures: tuple[str, ...]
    info: dict

    def path(self, plane: str, structure: str, network: str) -> Path:
        return self.root / network_file(plane, structure, network)


#: networks kept loaded between segmenters: one three-plane system's liver and lesion cascades
NETWORKS_KEPT = 12


def load_network(path: str | os.PathLike):
    """The Keras network saved at ``path`` (uncompiled), loaded once per process while the
    file is unchanged.

    Every :class:`~liverseg.inference.Segmenter` of a folder gets the same network objects,
    and with them the prediction and Grad-CAM functions already traced or compiled for
    them: a loop that segments volume after volume, or builds a segmenter per volume,
    loads and compiles each network once. A file written again (another time stamp, size
    or inode) is loaded anew. The last :data:`NETWORKS_KEPT` networks stay in memory;
    ``load_network.cache_clear()`` lets them go.

    Raises:
        MissingFileError: no file at ``path``.
        CorruptFileError: the file is not a Keras network this package can load.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise MissingFileError("network file not found", path) from None
    return _load_network(str(path.resolve()), stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size,
                         stat.st_ino)


@functools.lru_cache(maxsize=NETWORKS_KEPT)
def _load_network(path: str, *file_state):
    import keras

    import liverseg.models  # noqa: F401  (registers the custom layers)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any failure: a corrupt model file
        raise CorruptFileError(f"cannot load the network ({error})", path) from None


load_network.cache_clear = _load_network.cache_clear


def network_file(plane: str, structure: str, network: str) -> str:
    """File name of one network in a model folder."""
    return f"{plane}_{structure}_{network}.keras"


def write_model_folder(root: str | os.PathLike, settings: Profile,
                       networks: Mapping[tuple[str, str, str], str | os.PathLike],
                       info: dict | None = None) -> Path:
    """The one writer of model folders (``liverseg train`` and the book's systems alike):
    copy each trained network into ``root`` under :func:`network_file`'s name, then write
    ``liverseg-model.json`` last, so that a folder with a manifest is complete.

    ``networks`` maps ``(plane, structure, network)`` to the ``.keras`` file trained; the
    manifest's planes and structures are those named, in the order first named. Raises
    ``ValueError`` when a (plane, structure) of them lacks a network (a folder ``segment``
    could not use) and :class:`MissingFileError` naming a network file that does not exist.
    """
    planes = tuple(dict.fromkeys(plane for plane, _, _ in networks))
    structures = tuple(dict.fromkeys(structure for _, structure, _ in networks))
    missing = [network_file(p, s, n) for p in planes for s in structures for n in NETWORKS
               if (p, s, n) not in networks]
    if missing:
        raise ValueError(f"a model folder needs every network of its planes and structures; "
                         f"missing {missing}")
    for path in networks.values():
        if not Path(path).is_file():
            raise MissingFileError("trained network not found", path)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for (plane, structure, network), path in networks.items():
        shutil.copyfile(path, root / network_file(plane, structure, network))
    return write_manifest(root, settings, planes, structures, info)


def write_manifest(root: str | os.PathLike, settings: Profile, planes, structures,
                   info: dict | None = None) -> Path:
    """Write ``liverseg-model.json`` (atomically) once every network file is in place."""
    from liverseg.io.atomic import atomic_write_text

    root = Path(root)
    data = {
        "format": "liverseg-model/1",
        "liverseg_version": __version__,
        "planes": list(planes),
        "structures": list(structures),
        "settings": settings.to_dict(),
        "info": info or {},
    }
    return atomic_write_text(root / MANIFEST, json.dumps(data, indent=1) + "\n")


def read_model_folder(root: str | os.PathLike) -> ModelFolder:
    """Read and check a model folder (``root`` or ``root/model``).

    Raises:
        MissingFileError: no folder, no ``liverseg-model.json``, or a network file missing.
        CorruptFileError: the JSON is unreadable or not a liverseg model description.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError("model folder not found", root)
    if not (root / MANIFEST).is_file() and (root / "model" / MANIFEST).is_file():
        root = root / "model"
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise MissingFileError(f"not a liverseg model folder: {MANIFEST} is missing "
                               "(write one with `liverseg train`)", root)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        settings = Profile.from_dict(data["settings"])
        planes, structures = tuple(data["planes"]), tuple(data["structures"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CorruptFileError(f"not a valid liverseg model description ({error})", manifest) from None
    folder = ModelFolder(root, settings, planes, structures, data.get("info", {}))
    missing = [folder.path(p, s, n).name for p in planes for s in structures for n in NETWORKS
               if not folder.path(p, s, n).is_file()]
    if missing:
        raise MissingFileError(f"model folder is incomplete; missing {', '.join(missing)}", root)
    return folder
