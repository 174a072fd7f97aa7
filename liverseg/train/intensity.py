"""Random contrast and brightness of training slices, after the z-score.

The paper z-scores each volume by its own mean and standard deviation (its Eq. 1,
:mod:`liverseg.preprocess`). Those statistics depend on what the scan holds besides the
liver: a real abdomen that fills the field of view, or a crop around the liver, puts the same
liver at another z than a phantom does (a real portal-venous liver lands at z 1.75, the
LiTS-117 liver crop at 0.72, the phantoms' livers at 1.7–3.0). Another mean and standard
deviation are exactly an affine map of the z-scored slice, ``scale * x + offset``, so
training on such maps teaches the network that only the tissues' order and contrast count,
not where the volume's statistics put them. nnU-Net draws the same kind of map (its
brightness and contrast augmentations) on its normalized input. The paper names no
augmentation, so :class:`IntensityConfig` (``train.intensity``) is off by default.

Only the image is remapped: a tuning network's ROI prior (the ``"prior"`` entry of a dict
batch) and every label stay as they are. Each row of a training batch draws its own map from
``(seed, epoch, batch)`` alone (:func:`draw_remaps`), so that a resumed run reads the same
batches; validation batches are never remapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverseg.config._base import Pair, Section, setting

#: separates these draws from the shuffle ``(seed, epoch)``, dropout ``(seed, epoch, 7)``,
#: the prior jitter ``(seed, epoch, 13, row)``, the flips ``(seed, epoch, 17, batch)`` and the
#: warps ``(seed, epoch, 19, batch)``
_STREAM = 23


@dataclass
class IntensityConfig(Section):
    """``train.intensity``: how the z-scored training slices are re-contrasted (issue 17).

    Args:
        share: the probability (0–1) that a training row is remapped in an epoch, drawn anew
            for every row and epoch; 0 (the default): no remap, the paper.
        contrast: ``(low, high)``: the ``scale`` of ``scale * x + offset``, log-uniform in
            this range (below 1: the tissues closer together, as a volume with a larger
            standard deviation gives them).
        brightness: the ``offset``, uniform in ± this many standard deviations.

    Raises :class:`~liverseg.errors.SettingError` naming the setting for a value out of range.
    """

    share: float = setting(0.0, at_least=0, at_most=1)
    contrast: tuple[float, float] = setting((0.6, 1.5), pair=Pair(above=0, floats=True))
    brightness: float = setting(1.0, at_least=0, at_most=10)

    _section = "train.intensity"

    @property
    def active(self) -> bool:
        """Whether any row is ever remapped (``share`` > 0)."""
        return self.share > 0


@dataclass(frozen=True)
class Remaps:
    """What :func:`draw_remaps` decided for each row, arrays ``(B,)``: ``scale`` and
    ``offset`` (1 and 0 for a row left as it is)."""

    scale: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.scale)


def draw_remaps(n: int, settings: IntensityConfig, seed: int, epoch: int,
                batch: int) -> Remaps:
    """The map of each of the ``n`` rows of ``batch`` in ``epoch`` of a run with ``seed``: a
    function of its arguments alone (rows not drawn get the identity)."""
    rng = np.random.default_rng((int(seed), int(epoch), _STREAM, int(batch)))
    hit, scale_unit, offset_unit = rng.random((3, int(n)))
    remapped = hit < settings.share
    low, high = np.log(settings.contrast)
    scale = np.where(remapped, np.exp(low + scale_unit * (high - low)), 1.0)
    offset = np.where(remapped, settings.brightness * (2 * offset_unit - 1), 0.0)
    return Remaps(scale, offset)


def remap_batch(batch, remaps: Remaps):
    """Each row ``i`` of ``batch`` (an array ``(B, H, W[, C])``, or a dict or list of them, as
    :func:`~liverseg.train.spatial.warp_batch` takes) as ``scale[i] * row + offset[i]``; new
    float32 arrays, same structure. A dict's ``"prior"`` entry is returned as it is.

    Raises ``ValueError`` when ``batch`` and ``remaps`` differ in length."""
    if isinstance(batch, dict):
        return {key: value if key == "prior" else remap_batch(value, remaps)
                for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [remap_batch(value, remaps) for value in batch]
    array = np.asarray(batch)
    if len(array) != len(remaps):
        raise ValueError(f"{len(remaps)} remaps for a batch of {len(array)} rows")
    per_row = (len(array),) + (1,) * (array.ndim - 1)
    return (array * remaps.scale.reshape(per_row) + remaps.offset.reshape(per_row)).astype(
        np.float32)
