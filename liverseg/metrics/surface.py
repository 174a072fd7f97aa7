"""Surface distances in mm (LiTS): directed distances, ASSD, MSSD (Hausdorff) and RMSD.

A mask's surface is its boundary voxels, ``mask ^ binary_erosion(mask, footprint)``, with
the array's outside counted as background; ``connectivity`` picks the footprint (default 2,
as in the LiTS evaluation code).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from liverseg.metrics._box import joint_box
from liverseg.metrics._checks import as_masks, as_spacing


def _surface(mask: np.ndarray, connectivity: int) -> np.ndarray:
    footprint = ndimage.generate_binary_structure(mask.ndim, min(connectivity, mask.ndim))
    return mask ^ ndimage.binary_erosion(mask, structure=footprint, iterations=1)


def surface_distances(pred, ref, spacing=None, connectivity: int = 2):
    """Directed surface distances in mm: ``(pred surface → ref surface, ref → pred)``.

    Each array holds, for every surface voxel of one mask, the Euclidean distance to the
    nearest surface voxel of the other. If one mask is empty, the other's distances are all
    ``inf`` and the empty mask contributes an empty array; two empty masks give two empty arrays.
    """
    pred, ref = as_masks(pred, ref)
    spacing = as_spacing(spacing, pred.ndim)
    if connectivity < 1:
        raise ValueError(f"connectivity must be >= 1, got {connectivity}")
    has_pred, has_ref = pred.any(), ref.any()
    if not (has_pred and has_ref):
        n_pred = int(np.count_nonzero(_surface(pred, connectivity))) if has_pred else 0
        n_ref = int(np.count_nonzero(_surface(ref, connectivity))) if has_ref else 0
        return np.full(n_pred, np.inf), np.full(n_ref, np.inf)
    # Erode inside the joint bounding box grown by one voxel: the rim is background (or the
    # array's own border, which erosion also treats as background), so the surfaces are
    # those of the whole array at a fraction of the cost.
    box = joint_box(pred, ref, margin=1)
    pred_points = np.argwhere(_surface(pred[box], connectivity)) * spacing
    ref_points = np.argwhere(_surface(ref[box], connectivity)) * spacing
    # Nearest neighbours among surface voxel centres, in mm: the same numbers as
    # distance_transform_edt(~surface, sampling=spacing) read at the other surface (as
    # medpy does), without a distance map of the whole box.
    to_ref, _ = cKDTree(ref_points).query(pred_points)
    to_pred, _ = cKDTree(pred_points).query(ref_points)
    return to_ref, to_pred


def _symmetric(pred, ref, spacing, connectivity) -> np.ndarray:
    return np.concatenate(surface_distances(pred, ref, spacing, connectivity))


def _assd(d: np.ndarray) -> float:
    return float(d.mean()) if d.size else 0.0


def _mssd(d: np.ndarray) -> float:
    return float(d.max()) if d.size else 0.0


def _rmsd(d: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(d)))) if d.size else 0.0


def assd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Average symmetric surface distance (mm): the mean over both directed distance sets."""
    return _assd(_symmetric(pred, ref, spacing, connectivity))


def mssd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Maximum symmetric surface distance (mm), i.e. the Hausdorff distance of the surfaces."""
    return _mssd(_symmetric(pred, ref, spacing, connectivity))


def rmsd(pred, ref, spacing=None, connectivity: int = 2) -> float:
    """Root mean square symmetric surface distance (mm)."""
    return _rmsd(_symmetric(pred, ref, spacing, connectivity))


def surface_scores(pred, ref, spacing=None, connectivity: int = 2) -> dict[str, float]:
    """``{"assd", "mssd", "rmsd"}`` (mm) from one computation of the surface distances:
    the values of :func:`assd`, :func:`mssd` and :func:`rmsd`."""
    d = _symmetric(pred, ref, spacing, connectivity)
    return {"assd": _assd(d), "mssd": _mssd(d), "rmsd": _rmsd(d)}
