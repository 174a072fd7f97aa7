"""Random flips and quarter turns of training slices: the same for image, prior and label.

A network that sees few patients can learn *where* its structure lies instead of what it
looks like. The lesion localizer of ``demo`` did (issue 16, 2026-12-06): trained on seven
phantoms whose lesions all lay in the thick right lobe, the left half of the lesion view, it
marked a 307-voxel lesion 0.6 z-scores darker than the liver with a probability of 0.0003
where it lay, and 0.9999 once the slice was mirrored. Each of the 8 symmetries of the square
(the identity, three turns, four mirror images) keeps what a lesion looks like and moves
where it lies; nnU-Net mirrors every axis of its patches for the same reason. The paper
names no augmentation but its self-training, so :attr:`liverseg.config.TrainConfig.flips` is
off by default.

Every row of a training batch gets one symmetry, drawn from ``(seed, epoch, batch)`` alone
(:func:`draw_symmetries`), so that a resumed run reads the same batches; validation batches
are never flipped.
"""

from __future__ import annotations

import numpy as np

#: separates these draws from the shuffle ``(seed, epoch)``, dropout ``(seed, epoch, 7)`` and
#: the prior jitter ``(seed, epoch, 13, row)``
_STREAM = 17

#: the number of symmetries of the square: bit 0 mirrors the rows, bit 1 the columns, bit 2
#: swaps rows and columns
SYMMETRIES = 8


def draw_symmetries(n: int, seed: int, epoch: int, batch: int) -> np.ndarray:
    """The symmetry (``0 … 7``, 0 the identity) of each of the ``n`` rows of ``batch`` in
    ``epoch`` of a run with ``seed``: ``(n,)`` int64, a function of its arguments alone."""
    return np.random.default_rng((int(seed), int(epoch), _STREAM, int(batch))).integers(
        0, SYMMETRIES, size=int(n))


def apply_symmetry(image: np.ndarray, code: int) -> np.ndarray:
    """``image`` ``(H, W, ...)`` under symmetry ``code`` (:data:`SYMMETRIES`); a new array.

    Raises ``ValueError`` for a code outside ``0 … 7``, or a swap of rows and columns
    (codes 4–7) of an image that is not square."""
    if not 0 <= int(code) < SYMMETRIES:
        raise ValueError(f"a symmetry of the square is 0 … 7, got {code}")
    out = image
    if code & 1:
        out = out[::-1]
    if code & 2:
        out = out[:, ::-1]
    if code & 4:
        if out.shape[0] != out.shape[1]:
            raise ValueError("swapping rows and columns needs a square image, "
                             f"got {image.shape[:2]}")
        out = np.swapaxes(out, 0, 1)
    return np.ascontiguousarray(out)


def flip_batch(batch, codes: np.ndarray):
    """Each row ``i`` of ``batch`` (an array ``(B, H, W, ...)``, or a dict or list of them,
    e.g. a tuner's image and prior) under symmetry ``codes[i]``; new arrays, same structure.

    Raises ``ValueError`` when ``batch`` and ``codes`` differ in length."""
    if isinstance(batch, dict):
        return {key: flip_batch(value, codes) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [flip_batch(value, codes) for value in batch]
    array = np.asarray(batch)
    if len(array) != len(codes):
        raise ValueError(f"{len(codes)} symmetries for a batch of {len(array)} rows")
    return np.stack([apply_symmetry(row, code) for row, code in zip(array, codes)]) \
        if len(array) else array.copy()
