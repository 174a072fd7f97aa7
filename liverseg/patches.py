"""Multi-level patches and the area threshold μ (paper sections 3.4 and 3.8, Eq. 7).

Slices "are divided into different patches, by using dividing by 2, 4 and 8 (256x256,
128x128, and 64x64) patches sizes" (section 3, framework overview): at **patch level**
``l`` the ``H × W`` slice is split into a non-overlapping ``f × f`` grid of tiles,
``f = 2**(l-1)``, each ``(H/f, W/f)`` — the size of the tuning network's feature map at
encoder level ``l`` (``TuningConfig.patch_levels``, ``PatchConfig.levels``). Level 1 would
be the whole slice, which Algorithm 1 already trains on (its ``X``), so levels start at 2
and level 1 is refused.

Eq. 7 scores a patch by its annotated share ``μ = A / C`` (A: foreground pixels of the
patch, C: all its pixels); "patches with an area threshold lower than 0.3 are discarded",
so a patch is **kept when μ ≥ threshold** (``PatchConfig.area_threshold``, 0.3). The kept
patches are the ``P`` that Algorithm 1 adds to the training set (step 5), where the same
fixed-size network sees them — so :func:`extract_patches` resizes every patch to the
network's input size, while :func:`extract_level` returns one level at its own size.

Conventions:

* Stacks are ``(N, H, W)``: ``images`` (any real dtype), ``labels`` (binary: boolean,
  integer with non-zero = foreground, or float with ``> 0.5`` = foreground — e.g. a
  predicted probability used as pseudo-label), and optional ``extra`` stacks cut at the
  same places (e.g. the ROI prior, ``{"prior": priors}``). For a 0/1/2 LiTS label, pick
  the structure first (``label >= 1`` for the liver with its lesions).
* Patches come in a fixed order: by slice, then level, then grid row, then grid column,
  each with its provenance (:class:`PatchSet`).
* Resizing (``extract_patches``) is bilinear for images (float32 out) and nearest for
  labels and extra stacks (dtype and values kept); upsampling a level-``l`` patch to the
  slice size repeats each pixel ``f × f`` times exactly (see
  :mod:`liverseg.resample`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from liverseg.errors import InvalidDataError, ShapeError
from liverseg.resample import resize_stack  # NumPy only; no Keras behind it

__all__ = [
    "PatchSet",
    "area_ratio",
    "extract_level",
    "extract_patches",
    "grid_size",
    "patch_grid",
]

_RESIZE_CHUNK = 64  # patches resized at a time, so the temporaries stay small


@dataclass(frozen=True, eq=False)
class PatchSet:
    """``M`` patches with where they came from.

    ``images``, ``labels`` and each ``extra[name]`` are ``(M, h, w)`` stacks; the patch
    ``i`` is tile ``(row[i], col[i])`` of the ``f × f`` grid (``f = 2**(level[i]-1)``) of
    slice ``slice_index[i]`` of the input stacks, and ``area_ratio[i]`` is its μ (Eq. 7,
    float64, computed before any resizing). Index arrays are int64.
    """

    images: np.ndarray
    labels: np.ndarray
    slice_index: np.ndarray
    level: np.ndarray
    row: np.ndarray
    col: np.ndarray
    area_ratio: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


def grid_size(level: int) -> int:
    """Tiles per side at patch ``level``: ``f = 2**(level-1)`` (2, 4, 8 for levels 2, 3, 4).

    Raises :class:`InvalidDataError` unless ``level`` is an integer ``>= 2``.
    """
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 2:
        raise InvalidDataError(
            f"patch level must be an integer >= 2 (level 1 is the whole slice), got {level!r}"
        )
    return 2 ** (int(level) - 1)


def patch_grid(shape: tuple[int, int], level: int) -> list[tuple[slice, slice]]:
    """The ``f × f`` tiles of an ``(H, W)`` slice at ``level``, row by row.

    ``slice_[rows, cols]`` is one patch of ``(H/f, W/f)`` pixels; tile ``(r, c)`` is item
    ``r * f + c``. Raises :class:`ShapeError` if ``H`` or ``W`` is not divisible by ``f``,
    :class:`InvalidDataError` for a bad level (see :func:`grid_size`).
    """
    height, width = _tile_shape(tuple(shape), level)
    f = grid_size(level)
    return [
        (slice(r * height, (r + 1) * height), slice(c * width, (c + 1) * width))
        for r in range(f)
        for c in range(f)
    ]


def area_ratio(labels) -> float | np.ndarray:
    """μ of Eq. 7: the foreground share of a patch, ``A / C``, over the last two axes.

    ``labels`` is one ``(h, w)`` patch (returns a float) or a stack ``(..., h, w)`` (returns
    float64 of shape ``(...)``). Foreground: non-zero for boolean and integer labels,
    ``> 0.5`` for float labels (NaN counts as background). Raises :class:`ShapeError` for
    fewer than two dimensions or an empty patch.
    """
    labels = np.asarray(labels)
    if labels.ndim < 2 or labels.shape[-1] * labels.shape[-2] == 0:
        raise ShapeError(
            f"area_ratio needs (..., h, w) patches with pixels, got shape {labels.shape}"
        )
    ratio = _foreground(labels).mean(axis=(-2, -1))
    return float(ratio) if ratio.ndim == 0 else ratio


def extract_level(images, labels, level: int, threshold: float = 0.3,
                  extra: Mapping[str, np.ndarray] | None = None) -> PatchSet:
    """The patches of one ``level`` with ``μ >= threshold``, at their own size ``(H/f, W/f)``.

    ``images``, ``labels`` and every ``extra`` stack are ``(N, H, W)`` (module conventions);
    patches keep their stacks' dtypes. ``threshold=0`` keeps every tile.

    Raises :class:`ShapeError` if the stacks are not 3D, differ in shape, or ``H``, ``W``
    are not divisible by ``f``; :class:`InvalidDataError` for a bad level or a threshold
    outside ``[0, 1]``.
    """
    images, labels, extra = _check_stacks(images, labels, extra)
    _check_threshold(threshold)
    _tile_shape(images.shape[1:], level)
    ratios = area_ratio(_tiles(labels, level))  # (N, f, f)
    keep = np.nonzero(ratios >= threshold)  # C order: slice, row, col
    slice_index, row, col = (np.asarray(k, np.int64) for k in keep)
    return PatchSet(
        images=_tiles(images, level)[keep],
        labels=_tiles(labels, level)[keep],
        slice_index=slice_index,
        level=np.full(len(slice_index), level, np.int64),
        row=row,
        col=col,
        area_ratio=ratios[keep],
        extra={name: _tiles(stack, level)[keep] for name, stack in extra.items()},
    )


def extract_patches(images, labels, levels: Sequence[int] = (2, 3, 4), threshold: float = 0.3,
                    extra: Mapping[str, np.ndarray] | None = None,
                    output_size: int | tuple[int, int] | None = None) -> PatchSet:
    """Algorithm 1's patch set ``P``: every level's patches with ``μ >= threshold``, resized.

    ``images``, ``labels``, ``extra``: ``(N, H, W)`` stacks (module conventions);
    ``levels``: distinct patch levels (default the paper's 2, 3, 4); ``output_size``:
    ``(h, w)`` or ``s`` for ``(s, s)`` — the network's input size, by default the slices'
    own ``(H, W)``. Returns a :class:`PatchSet` of ``(M, h, w)`` stacks — images float32
    (bilinear), labels and extra stacks in their own dtype (nearest) — ordered by slice,
    level, grid row, grid column.

    Memory: every level's kept patches at their own size plus the resized output.

    >>> settings = profile("paper").patches                         # doctest: +SKIP
    >>> patches = extract_patches(images, labels, settings.levels, settings.area_threshold,
    ...                           extra={"prior": priors})           # doctest: +SKIP

    Errors as :func:`extract_level`, plus :class:`InvalidDataError` for an empty or
    repeated ``levels`` or a bad ``output_size``.
    """
    images, labels, extra = _check_stacks(images, labels, extra)
    levels = _check_levels(levels)
    size = images.shape[1:] if output_size is None else _check_size(output_size)
    parts = [extract_level(images, labels, level, threshold, extra) for level in levels]
    provenance = {
        key: np.concatenate([getattr(part, key) for part in parts])
        for key in ("slice_index", "level", "row", "col", "area_ratio")
    }
    ordered = np.lexsort((provenance["col"], provenance["row"], provenance["level"],
                          provenance["slice_index"]))
    rank = np.empty_like(ordered)
    rank[ordered] = np.arange(len(ordered))  # output row of each patch, in level-major order
    bounds = np.cumsum([0] + [len(part) for part in parts])
    rows = [rank[a:b] for a, b in zip(bounds[:-1], bounds[1:])]  # output rows, per level
    return PatchSet(
        images=_assemble([p.images for p in parts], rows, size, np.float32, order=1),
        labels=_assemble([p.labels for p in parts], rows, size, labels.dtype, order=0),
        extra={name: _assemble([p.extra[name] for p in parts], rows, size, stack.dtype, order=0)
               for name, stack in extra.items()},
        **{key: values[ordered] for key, values in provenance.items()},
    )


def _foreground(labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return labels > 0.5
    if labels.dtype.kind in "biu":
        return labels != 0
    raise InvalidDataError(f"labels must be boolean, integer or float, got dtype {labels.dtype}")


def _tiles(stack: np.ndarray, level: int) -> np.ndarray:
    """``(N, H, W)`` → ``(N, f, f, H/f, W/f)``: tile ``[n, r, c]`` (a view when possible)."""
    n, height, width = stack.shape
    f = grid_size(level)
    return stack.reshape(n, f, height // f, f, width // f).swapaxes(2, 3)


def _tile_shape(shape: tuple[int, ...], level: int) -> tuple[int, int]:
    f = grid_size(level)
    if len(shape) != 2:
        raise ShapeError(f"expected a slice shape (H, W), got {shape}")
    bad = [s for s in shape if s % f]
    if bad or min(shape) < 1:
        raise ShapeError(
            f"a {shape[0]} × {shape[1]} slice cannot be cut into a {f} × {f} grid at patch "
            f"level {level}: height and width must be positive multiples of {f}"
        )
    return shape[0] // f, shape[1] // f


def _check_stacks(images, labels, extra):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3:
        raise ShapeError(f"images must be an (N, H, W) stack, got shape {images.shape}")
    if labels.shape != images.shape:
        raise ShapeError(
            f"labels have shape {labels.shape}, images {images.shape}; they must match"
        )
    _foreground(labels[:0])  # refuses non-numeric labels
    checked = {}
    for name, stack in (extra or {}).items():
        stack = np.asarray(stack)
        if stack.shape != images.shape:
            raise ShapeError(
                f"extra stack {name!r} has shape {stack.shape}, images {images.shape}; "
                "they must match"
            )
        checked[name] = stack
    return images, labels, checked


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= float(threshold) <= 1.0:  # also refuses NaN
        raise InvalidDataError(f"area threshold μ must be in [0, 1], got {threshold}")


def _check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    levels = tuple(levels)
    if not levels or len(set(levels)) != len(levels):
        raise InvalidDataError(f"levels must be one or more distinct patch levels, got {levels}")
    for level in levels:
        grid_size(level)
    return levels


def _check_size(size) -> tuple[int, int]:
    pair = (size, size) if np.ndim(size) == 0 else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in pair):
        raise InvalidDataError(
            f"output_size must be a positive integer or (height, width), got {size!r}"
        )
    return int(pair[0]), int(pair[1])


def _assemble(stacks, rows, size, dtype, order: int) -> np.ndarray:
    """One ``(M, *size)`` stack: ``stacks[k]`` resized with ``order`` into ``out[rows[k]]``,
    a chunk at a time so the temporaries stay small."""
    out = np.empty((sum(len(r) for r in rows),) + tuple(size), dtype)
    for stack, where in zip(stacks, rows):
        for start in range(0, len(stack), _RESIZE_CHUNK):
            chunk = slice(start, start + _RESIZE_CHUNK)
            out[where[chunk]] = resize_stack(stack[chunk], size, order)
    return out
