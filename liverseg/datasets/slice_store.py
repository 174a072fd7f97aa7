"""2D slices on disk as lossless TIFF, streamed back for training (paper section 3.1).

The paper stores its slices as TIFF, not PNG/JPEG, because an 8-bit image keeps only 256
of a CT's 4096+ grey levels; and it streams them from disk to keep RAM low. Layout::

    root/<plane>/<case_id>/index.json         what is there: shape, dtypes, spacing, files
    root/<plane>/<case_id>/image_0000.tif     one slice, int16 HU (or float32/float64)
    root/<plane>/<case_id>/label_0000.tif     its label, uint8 (absent for unlabelled cases)

Images are stored in the smallest type that holds them *exactly*: int16 when every value
is an integer in the int16 range (HU, even when read as float64), else float32 when that
is exact (preprocessed slices), else float64. A case is written into a hidden temporary
folder that replaces the old one only once complete, so a crash never leaves a
half-written case behind; ``index.json`` is the last file written.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import tifffile
from tqdm.auto import tqdm

from liverseg.datasets.planes import PLANES, check_plane, plane_spacing, to_slices
from liverseg.errors import (
    CorruptFileError,
    DatasetLayoutError,
    InvalidDataError,
    MissingFileError,
    ShapeError,
)
from liverseg.io import smallest_exact_dtype
from liverseg.io.atomic import atomic_folder

INDEX_NAME = "index.json"
FORMAT = "liverseg-slice-store/1"


class SliceRef(NamedTuple):
    """Where one stored slice lives; :meth:`SliceStore.read_slice` loads it."""

    case_id: str
    plane: str
    index: int
    image_path: Path
    label_path: Path | None
    shape: tuple[int, int]
    image_dtype: np.dtype


#: Image storage types, smallest first (see the module doc).
IMAGE_DTYPES = (np.int16, np.int32, np.float32, np.float64)


def image_storage_dtype(images: np.ndarray) -> np.dtype:
    """The smallest of int16 / int32 / float32 / float64 that holds ``images`` exactly
    (:func:`liverseg.io.smallest_exact_dtype`).

    Raises:
        InvalidDataError: NaN or infinite values, integers beyond int32, non-numeric data.
    """
    a = np.asarray(images)
    if a.dtype.kind not in "buif":
        raise InvalidDataError(f"image slices must be numeric, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InvalidDataError("image slices contain NaN or infinite values")
    try:
        return smallest_exact_dtype(a, IMAGE_DTYPES)
    except InvalidDataError as error:
        raise InvalidDataError(f"integer image {error.problem}") from None


class SliceStore:
    """A folder of per-slice TIFF files, one sub-folder per plane and case (see module doc).

    Args:
        root: the store's folder (created on first write).
        compression: TIFF compression; ``"zlib"`` is lossless and needs no extra package
            (label slices shrink ~100×, CT slices ~2×); ``None`` writes raw strips.
    """

    def __init__(self, root: str | os.PathLike, compression: str | None = "zlib"):
        self.root = Path(root)
        self.compression = compression

    def __repr__(self) -> str:
        return f"SliceStore({str(self.root)!r})"

    # ---- writing -------------------------------------------------------------------

    def write_case(
        self,
        case_id: str,
        image_slices: np.ndarray,
        label_slices: np.ndarray | None = None,
        plane: str = "axial",
        spacing: Iterable[float] | None = None,
    ) -> Path:
        """Store the ``(n, h, w)`` slices of one case along ``plane``; returns its folder.

        ``spacing`` is ``(between slices, row, column)`` in mm (see
        :func:`liverseg.datasets.planes.plane_spacing`), kept in the index. An existing
        case of the same id and plane is replaced as a whole.

        Raises:
            ShapeError: not an ``(n, h, w)`` stack, or labels of another shape.
            InvalidDataError: bad case id, NaN/inf images, labels outside 0..255.
        """
        check_plane(plane)
        _check_case_id(case_id)
        images = np.asarray(image_slices)
        if images.ndim != 3 or 0 in images.shape:
            raise ShapeError(
                f"case {case_id}: expected a non-empty (n, h, w) stack, got shape {images.shape}"
            )
        try:
            image_dtype = image_storage_dtype(images)
        except InvalidDataError as e:
            raise InvalidDataError(f"case {case_id}: {e.problem}") from None
        labels = None if label_slices is None else _as_labels(case_id, label_slices, images.shape)
        spacing = None if spacing is None else [float(s) for s in spacing]
        if spacing is not None and len(spacing) != 3:
            raise ShapeError(f"case {case_id}: spacing must be (slice, row, column), got {spacing}")

        plane_dir = self.root / plane
        plane_dir.mkdir(parents=True, exist_ok=True)
        target = plane_dir / case_id
        with atomic_folder(target) as tmp:  # a complete case, or none
            digits = max(4, len(str(len(images) - 1)))
            entries = []
            for k, image in enumerate(images):
                entry = {"index": k, "image": f"image_{k:0{digits}d}.tif", "label": None}
                tifffile.imwrite(
                    tmp / entry["image"], image.astype(image_dtype), compression=self.compression
                )
                if labels is not None:
                    entry["label"] = f"label_{k:0{digits}d}.tif"
                    tifffile.imwrite(tmp / entry["label"], labels[k], compression=self.compression)
                entries.append(entry)
            index = {
                "format": FORMAT,
                "case_id": case_id,
                "plane": plane,
                "shape": list(images.shape),
                "image_dtype": image_dtype.name,
                "label_dtype": None if labels is None else "uint8",
                "spacing": spacing,
                "slices": entries,
            }
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        return target

    def add_case(self, case, planes: Iterable[str] = PLANES, transform: Callable | None = None) -> list[Path]:
        """Slice a :class:`~liverseg.datasets.base.Case` along each plane and store it.

        ``transform`` maps the ``(z, y, x)`` HU volume to what is stored, e.g.
        :func:`liverseg.preprocess.preprocess` (then the slices are float32; z-scoring the
        whole volume before slicing is what keeps ``zscore_scope="volume"`` possible).
        """
        volume = case.image.array if transform is None else transform(case.image.array)
        return [
            self.write_case(
                case.case_id,
                to_slices(volume, plane),
                None if case.label is None else to_slices(case.label, plane),
                plane,
                plane_spacing(case.image.spacing, plane),
            )
            for plane in planes
        ]

    def add_cases(self, cases: Iterable, planes: Iterable[str] = PLANES, transform: Callable | None = None,
                  progress: bool = True) -> list[str]:
        """:meth:`add_case` for every case (e.g. a dataset iterator), with a progress bar."""
        planes = tuple(planes)
        written = []
        for case in tqdm(cases, desc="storing slices", unit="case", disable=not progress):
            self.add_case(case, planes, transform)
            written.append(case.case_id)
        return written

    # ---- reading -------------------------------------------------------------------

    def case_ids(self, plane: str = "axial") -> list[str]:
        """Ids of the complete cases stored along ``plane``, sorted."""
        plane_dir = self.root / check_plane(plane)
        if not plane_dir.is_dir():
            return []
        return sorted(
            p.name for p in plane_dir.iterdir()
            if not p.name.startswith(".") and (p / INDEX_NAME).is_file()
        )

    def case_index(self, case_id: str, plane: str = "axial") -> dict:
        """The parsed ``index.json`` of one case and plane."""
        _check_case_id(case_id)
        path = self.root / check_plane(plane) / case_id / INDEX_NAME
        if not path.is_file():
            raise MissingFileError(f"case {case_id!r} is not stored along the {plane} plane", path)
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            if index.get("format") != FORMAT:
                raise ValueError(f"format is {index.get('format')!r}, expected {FORMAT!r}")
            n, h, w = index["shape"]
            np.dtype(index["image_dtype"])
            slices = index["slices"]
            if len(slices) != n or not all({"index", "image", "label"} <= set(s) for s in slices):
                raise ValueError("slice list does not match the shape")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
            raise CorruptFileError(f"bad slice index ({e})", path) from None
        return index

    def slice_refs(self, case_ids: Iterable[str] | None = None, plane: str = "axial") -> list[SliceRef]:
        """Every stored slice of ``case_ids`` (default: all) along ``plane``, in case then slice order."""
        ids = self.case_ids(plane) if case_ids is None else list(case_ids)
        return [ref for case_id in ids for ref in self._case_refs(case_id, plane)]

    def read_slice(self, ref: SliceRef) -> tuple[np.ndarray, np.ndarray | None]:
        """The ``(h, w)`` image and label (``None`` if unlabelled) of one stored slice."""
        image = _read_tiff(ref.image_path, ref.shape, ref.image_dtype)
        label = None if ref.label_path is None else _read_tiff(ref.label_path, ref.shape, np.dtype(np.uint8))
        return image, label

    def iter_slices(self, case_ids: Iterable[str] | None = None, plane: str = "axial"
                    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Stream ``(image, label)`` pairs from disk, one slice in memory at a time.

        Cases come in the order given (default: sorted ids), slices in index order.
        """
        ids = self.case_ids(plane) if case_ids is None else list(case_ids)
        for case_id in ids:
            for ref in self._case_refs(case_id, plane):
                yield self.read_slice(ref)

    def read_case(self, case_id: str, plane: str = "axial") -> tuple[np.ndarray, np.ndarray | None]:
        """All slices of one case as ``(n, h, w)`` stacks (use ``planes.from_slices`` for the volume)."""
        pairs = list(self.iter_slices([case_id], plane))
        images = np.stack([image for image, _ in pairs])
        labels = None if pairs[0][1] is None else np.stack([label for _, label in pairs])
        return images, labels

    def _case_refs(self, case_id: str, plane: str) -> list[SliceRef]:
        index = self.case_index(case_id, plane)
        folder = self.root / plane / case_id
        shape = tuple(index["shape"][1:])
        dtype = np.dtype(index["image_dtype"])
        return [
            SliceRef(case_id, plane, int(s["index"]), folder / s["image"],
                     None if s["label"] is None else folder / s["label"], shape, dtype)
            for s in index["slices"]
        ]


class SliceBatches:
    """Numpy batches ``(x, y)`` of stored slices, shaped ``(N, H, W, 1)``; Keras-free.

    ``len()`` is the number of batches per epoch and ``batches[i]`` reads batch ``i`` from
    disk, so it fits the ``keras.utils.PyDataset`` / ``Sequence`` protocol once wrapped.
    ``x`` is float32; ``y`` is uint8 labels, or ``None`` when the cases are unlabelled.
    With ``shuffle`` the slice order is a permutation drawn from ``(seed, epoch)``;
    :meth:`on_epoch_end` moves to the next epoch's order.

    Args:
        store: the :class:`SliceStore`.
        case_ids: cases to draw from (default: every case stored along ``plane``); pass the
            ``train`` ids of a :func:`~liverseg.datasets.split.split_cases` split.
        plane: one of ``PLANES``.
        batch_size: slices per batch; the last batch may be smaller.
        shuffle, seed: see above.
        transform: ``(image, label) -> (image, label)`` applied to each slice (e.g. crop
            or resize, so that slices of differently sized cases can be batched).
    """

    def __init__(
        self,
        store: SliceStore,
        case_ids: Iterable[str] | None = None,
        plane: str = "axial",
        batch_size: int = 4,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable | None = None,
    ):
        if int(batch_size) != batch_size or batch_size < 1:
            raise InvalidDataError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.store = store
        self.plane = check_plane(plane)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.transform = transform
        self.refs = store.slice_refs(case_ids, plane)
        if not self.refs:
            raise DatasetLayoutError(f"no slices stored along the {plane} plane for these cases", store.root)
        labelled = {ref.label_path is not None for ref in self.refs}
        if len(labelled) > 1:
            raise DatasetLayoutError("some of these cases have labels and some do not", store.root)
        self.labelled = labelled.pop()
        self.epoch = 0
        self._order = self._draw_order()

    def __len__(self) -> int:
        return math.ceil(len(self.refs) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        i %= len(self)
        refs = [self.refs[j] for j in self._order[i * self.batch_size:(i + 1) * self.batch_size]]
        images, labels = [], []
        for ref in refs:
            image, label = self.store.read_slice(ref)
            if self.transform is not None:
                image, label = self.transform(image, label)
            images.append(np.asarray(image, dtype=np.float32))
            labels.append(label)
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            cases = sorted({ref.case_id for ref in refs})
            raise ShapeError(
                f"cannot batch slices of shapes {sorted(shapes)} (cases {', '.join(cases)}); "
                "pass a transform that crops or resizes them to one size"
            )
        x = np.stack(images)[..., None]
        y = None
        if self.labelled:
            y = np.stack([np.asarray(label, dtype=np.uint8) for label in labels])[..., None]
        return x, y

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def on_epoch_end(self) -> None:
        """Advance to the next epoch (a new order when shuffling)."""
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Use the slice order of ``epoch`` (so a resumed run replays the same batches)."""
        self.epoch = int(epoch)
        self._order = self._draw_order()

    def _draw_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.refs))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.refs))


def _check_case_id(case_id) -> None:
    if (not isinstance(case_id, str) or not case_id or case_id.startswith(".")
            or any(c in case_id for c in "/\\\0") or case_id != os.path.basename(case_id)):
        raise InvalidDataError(f"case id {case_id!r} cannot be a folder name")


def _as_labels(case_id: str, label_slices, shape) -> np.ndarray:
    labels = np.asarray(label_slices)
    if labels.shape != shape:
        raise ShapeError(f"case {case_id}: label slices {labels.shape} differ from image slices {shape}")
    if labels.dtype == np.uint8:
        return labels
    if labels.dtype.kind not in "buif" or (
        labels.size
        and (labels.min() < 0 or labels.max() > 255 or not np.array_equal(np.trunc(labels), labels))
    ):
        raise InvalidDataError(f"case {case_id}: labels must be integers in 0..255")
    return labels.astype(np.uint8)


def _read_tiff(path: Path, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    if not path.is_file():
        raise MissingFileError("slice TIFF not found", path)
    try:
        array = tifffile.imread(path)
    except Exception as e:  # tifffile, zlib and struct each raise their own on damaged files
        raise CorruptFileError(f"cannot read TIFF ({type(e).__name__}: {e})", path) from None
    if array.shape != tuple(shape) or array.dtype != dtype:
        raise CorruptFileError(
            f"TIFF holds {array.dtype} {array.shape}, the index says {np.dtype(dtype)} {tuple(shape)}", path
        )
    return array
