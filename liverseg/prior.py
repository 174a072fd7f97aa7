"""The ROI prior that the tuning network receives (paper sections 3.3-3.4, Figs. 6-8).

The paper's cascade: the localisation network segments the whole slice, its Grad-CAM
says where the evidence is (Fig. 6), a dense CRF refines the ROI (section 3.9), and the
tuning network gets "the Box prior filter result of the first network" as its second
input (section 3.4, ConvBox). The paper does not say how probability and Grad-CAM are
combined nor how large the box is; this module makes both explicit and configurable:

1. ``combine``: ``"mean"`` (default), the weighted mean ``(1 - w) p + w cam`` with
   ``cam_weight`` ``w = 1/3``. At the default threshold 0.5 this moves the probability
   threshold between 0.25 (where the Grad-CAM is 1) and 0.75 (where it is 0): the CAM
   confirms a doubtful pixel or vetoes an unsupported one, but cannot add a region the
   network gives less than 0.25, nor remove one it is sure of. ``"product"``
   ``p * cam`` is stricter: a pixel needs both high probability and strong evidence.
   Without a CAM the probability is used as is.
2. ``use_crf``: the combined map is refined by :func:`liverseg.crf.dense_crf` on the CT slice.
3. The refined map is thresholded; with ``keep_largest`` only its largest connected
   component stays (the liver is one organ; the paper's Fig. 13 removes such specks).
4. ``mode="bbox"`` (default, the paper's box filter): the bounding box of that region,
   grown by ``margin`` pixels on each side (clipped to the slice) so that a border the
   localisation network missed (Fig. 7) is still inside the box; ``mode="boxes"``: one such
   box around each connected component (several lesions get a box each, not one box over
   the liver between them); ``mode="mask"``: the region itself.

An empty ROI (nothing above the threshold) gives an all-zero prior: the tuning network
then sees no location prior for that slice, as for a slice without liver in training.

A slice whose combined map stays below ``min(threshold, 0.5)`` gets that empty prior without
running the CRF (:func:`cannot_pass`): the CRF could not lift any of its pixels over the
threshold, so most slices of a volume away from the liver cost no CRF at all.
"""

from __future__ import annotations

import functools
import inspect
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from tqdm.auto import tqdm

from liverseg.crf import CRFParams, check_crf_inputs, dense_crf
from liverseg.errors import InvalidDataError, LiversegError, ShapeError
from liverseg.postprocess import largest_component as _largest_component

MODES = ("bbox", "boxes", "mask")
COMBINATIONS = ("mean", "product")


def roi_prior(
    probability: np.ndarray,
    cam: np.ndarray | None = None,
    image: np.ndarray | None = None,
    *,
    mode: str = "bbox",
    threshold: float = 0.5,
    margin: int = 5,
    combine: str = "mean",
    cam_weight: float = 1 / 3,
    keep_largest: bool = True,
    use_crf: bool = True,
    crf_params: CRFParams | None = None,
) -> np.ndarray:
    """The ROI prior of one slice, an ``(H, W)`` float32 array of 0 and 1.

    Args:
        probability: ``(H, W)`` foreground probability of the localisation network.
        cam: ``(H, W)`` Grad-CAM in [0, 1] (:func:`liverseg.cam.grad_cam`) or ``None``.
        image: ``(H, W)`` CT slice in HU; needed by the CRF only.
        mode: ``"bbox"`` (box filter around the ROI), ``"boxes"`` (a box around each of its
            components) or ``"mask"`` (the ROI itself).
        threshold: foreground threshold on the (refined) combined map.
        margin: pixels added on every side of a box (the box modes only); about 1 % of a
            512-pixel slice, so scale it with the slice size.
        combine: ``"mean"`` or ``"product"`` of probability and CAM (see module doc).
        cam_weight: the CAM's weight ``w`` in the ``"mean"`` combination.
        keep_largest: keep only the largest 8-connected component
            (:func:`liverseg.postprocess.largest_component`).
        use_crf: refine the combined map with a dense CRF on ``image``.
        crf_params: :class:`liverseg.crf.CRFParams` (defaults if ``None``).
    """
    roi, refine = _combined_checked(probability, cam, image, mode, threshold, margin, combine,
                                    cam_weight, use_crf)
    if refine:
        params = crf_params or CRFParams()
        if params.engine == "grid":
            from liverseg.crf_grid import dense_crf_stack  # Keras: not in the CRF's workers

            roi = dense_crf_stack(roi[None], image[None], params)[0]
        else:
            roi = dense_crf(roi, image, params)
    return _cut(roi, mode, threshold, margin, keep_largest)


def _combined_checked(probability, cam, image, mode, threshold, margin, combine, cam_weight,
                      use_crf) -> tuple[np.ndarray, bool]:
    """The combined map of one slice, its arguments checked, and whether the CRF refines it
    (``False`` without the CRF, or when nothing can pass, :func:`cannot_pass`)."""
    _check_options(mode, margin, combine, cam_weight)
    probability = _map(probability, "probability")
    cam = None if cam is None else _map(cam, "Grad-CAM", like=probability)
    roi = combined_map(probability, cam, combine, cam_weight)
    if not use_crf:
        return roi, False
    if image is None:
        raise InvalidDataError("the CRF refinement needs the CT image (or pass use_crf=False)")
    check_crf_inputs(roi, image)  # the CRF's own errors, also where it need not run
    return roi, not cannot_pass(roi, threshold)


def _check_options(mode, margin, combine, cam_weight) -> None:
    if mode not in MODES:
        raise InvalidDataError(f"ROI prior mode must be one of {MODES}, got {mode!r}")
    if combine not in COMBINATIONS:
        raise InvalidDataError(f"ROI prior combine must be one of {COMBINATIONS}, got {combine!r}")
    if not 0.0 <= cam_weight <= 1.0:
        raise InvalidDataError(f"cam_weight must be in [0, 1], got {cam_weight}")
    if int(margin) != margin or margin < 0:
        raise InvalidDataError(f"margin must be a non-negative number of pixels, got {margin}")


def _cut(roi, mode, threshold, margin, keep_largest) -> np.ndarray:
    """The prior from a (refined) map: above ``threshold``, the largest region, the box."""
    region = roi > threshold
    if keep_largest:
        region = _largest_component(region, connectivity=2)  # 8-connectivity in 2D
    if mode == "bbox":
        region = box_filter(region, margin)
    elif mode == "boxes":
        region = component_boxes(region, margin)
    return region.astype(np.float32)


def combined_map(probability: np.ndarray, cam: np.ndarray | None = None, combine: str = "mean",
                 cam_weight: float = 1 / 3) -> np.ndarray:
    """The map the ROI is cut from: ``probability`` alone without a CAM, else its weighted
    mean (``(1 - cam_weight) p + cam_weight cam``) or product with the CAM (see the module
    doc). Any shape, the two alike; values in [0, 1]."""
    if cam is None:
        return probability
    if combine == "mean":
        return (1.0 - cam_weight) * probability + cam_weight * cam
    return probability * cam


#: how far under ``min(threshold, 0.5)`` a map's maximum must stay for :func:`cannot_pass`
#: (the CRF's float32 arithmetic rounds a pixel's value by far less)
PASS_MARGIN = 1e-3


def cannot_pass(roi: np.ndarray, threshold: float) -> bool:
    """Whether no pixel of the combined map ``roi`` can end above ``threshold``, with or
    without the dense CRF, so that the ROI is empty.

    The CRF's mean-field update (a Potts model with non-negative Gaussian kernels,
    :mod:`liverseg.crf`) adds to each pixel's foreground score the kernel-weighted
    difference of its neighbours' foreground and background marginals. While every pixel's
    foreground marginal is at most 0.5 that difference is never positive, so no pixel ever
    rises above its starting value ``roi``: by induction over the iterations, a map that
    stays below ``min(threshold, 0.5)`` (less :data:`PASS_MARGIN`) leaves nothing above the
    threshold. (``tests/test_prior.py`` checks this against pydensecrf.)
    """
    return float(np.max(roi)) <= min(float(threshold), 0.5) - PASS_MARGIN


PARALLEL_MIN_PIXELS = 2**22  # 16 slices of 512 x 512: below this, starting workers costs more


def roi_priors(
    probabilities: np.ndarray,
    cams: np.ndarray | None = None,
    images: np.ndarray | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
    **kwargs,
) -> np.ndarray:
    """:func:`roi_prior` for a stack of slices ``(N, H, W)``; returns ``(N, H, W)`` float32.

    A slice whose combined map cannot pass the threshold (:func:`cannot_pass`) gets its
    empty prior at once. The dense CRF holds Python's global lock, so the other slices are
    refined in parallel by ``workers`` processes (``None``: up to 8, one per CPU, when they
    hold at least :data:`PARALLEL_MIN_PIXELS` pixels, else 1). The pool is started once per
    process and reused; the result is the same as one process's. A worker started by
    ``spawn`` imports the ``__main__`` module, so a script that calls this needs the ``if
    __name__ == "__main__":`` guard; without it the workers die and
    :class:`~liverseg.errors.LiversegError` says so.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 3:
        raise ShapeError(f"expected (N, H, W) probability maps, got shape {probabilities.shape}")
    for name, stack in (("Grad-CAMs", cams), ("images", images)):
        if stack is not None and np.shape(stack) != probabilities.shape:
            raise ShapeError(
                f"{name} shape {np.shape(stack)} differs from probabilities {probabilities.shape}"
            )
    unknown = set(kwargs) - set(_ROI_DEFAULTS)
    if unknown:
        raise TypeError(f"roi_prior() got unexpected keyword arguments {sorted(unknown)}")
    options = {**_ROI_DEFAULTS, **kwargs}
    _check_options(options["mode"], options["margin"], options["combine"], options["cam_weight"])
    slices = [(probabilities[i], None if cams is None else cams[i],
               None if images is None else images[i]) for i in range(len(probabilities))]
    bar = tqdm(total=len(slices), desc="ROI priors", unit="slice", disable=not progress)
    priors = np.zeros(probabilities.shape, np.float32)
    if options["use_crf"]:
        if images is None:
            raise InvalidDataError("the CRF refinement needs the CT image (or pass use_crf=False)")
        need, clean = _crf_rows(probabilities, cams, images, options)
    else:
        need, clean = np.zeros(len(slices), bool), np.zeros(len(slices), bool)
    for i in np.flatnonzero(~clean):  # without the CRF, or values roi_prior names
        priors[i] = roi_prior(*slices[i], **kwargs)
    bar.update(int((~need).sum()))  # the others cannot pass: their priors stay empty
    crf_work = [int(i) for i in np.flatnonzero(need)]
    params = options["crf_params"] or CRFParams()
    if params.engine == "grid" and crf_work:
        _grid_priors(priors, crf_work, slices, kwargs, bar)
        crf_work = []
    if workers is None:
        pixels = len(crf_work) * probabilities[0].size if len(crf_work) else 0
        workers = min(os.cpu_count() or 1, 8) if pixels >= PARALLEL_MIN_PIXELS else 1
    if workers <= 1 or len(crf_work) < 2:
        for i in crf_work:
            priors[i] = roi_prior(*slices[i], **kwargs)
            bar.update()
    else:
        chunks = np.array_split(np.asarray(crf_work), min(len(crf_work), 4 * workers))
        pool = _pool(workers)
        futures = {pool.submit(_roi_chunk, [slices[i] for i in chunk], kwargs): chunk
                   for chunk in chunks if len(chunk)}
        try:
            for future in as_completed(futures):
                priors[futures[future]] = future.result()
                bar.update(len(futures[future]))
        except BrokenProcessPool as error:
            _pool.cache_clear()  # a broken pool takes no more work; the next call starts anew
            raise LiversegError(
                "a worker of the dense CRF's process pool died. Its workers are started by "
                "'spawn' and import your __main__ module: in a script, put the code that trains "
                "or segments under `if __name__ == \"__main__\":` (or pass workers=1)") from error
    bar.close()
    return priors


#: pixels refined in one call of the grid engine (its corner tables take ~100 bytes a pixel)
GRID_CHUNK_PIXELS = 2**21


def _grid_priors(priors, rows, slices, kwargs, bar) -> None:
    """The priors of ``rows`` with :mod:`liverseg.crf_grid`, a chunk of slices per call."""
    from liverseg.crf_grid import dense_crf_stack

    options = {**_ROI_DEFAULTS, **kwargs}
    maps = {}
    for i in rows:
        maps[i], _ = _combined_checked(*slices[i], **{k: options[k] for k in _CHECKED})
    size = slices[rows[0]][0].size
    step = max(1, GRID_CHUNK_PIXELS // size)
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        refined = dense_crf_stack(np.stack([maps[i] for i in chunk]),
                                  np.stack([np.asarray(slices[i][2], np.float64) for i in chunk]),
                                  options["crf_params"])
        for i, roi in zip(chunk, refined):
            priors[i] = _cut(roi, options["mode"], options["threshold"], options["margin"],
                             options["keep_largest"])
        bar.update(len(chunk))


#: :func:`roi_prior`'s keyword defaults, and those :func:`_combined_checked` takes
_ROI_DEFAULTS = {name: parameter.default
                 for name, parameter in inspect.signature(roi_prior).parameters.items()
                 if parameter.kind is inspect.Parameter.KEYWORD_ONLY}
_CHECKED = ("mode", "threshold", "margin", "combine", "cam_weight", "use_crf")


def _crf_rows(probabilities, cams, images, options, chunk: int = 16):
    """Which slices the CRF must refine (``need``) and which have values :func:`roi_prior`
    accepts (``clean``: finite, maps in [0, 1]), both ``(N,)`` bool; whole stacks at once,
    ``chunk`` slices at a time, where a slice-by-slice look costs milliseconds a 512² slice."""
    n = len(probabilities)
    need, clean = np.zeros(n, bool), np.zeros(n, bool)
    limit = min(float(options["threshold"]), 0.5) - PASS_MARGIN  # as cannot_pass
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        probability = np.asarray(probabilities[rows], np.float32)
        ok = _unit_maps(probability) & np.isfinite(np.asarray(images[rows])).all(axis=(1, 2))
        cam = None
        if cams is not None:
            cam = np.asarray(cams[rows], np.float32)
            ok &= _unit_maps(cam)
            cam = np.clip(cam, 0.0, 1.0)
        top = combined_map(np.clip(probability, 0.0, 1.0), cam, options["combine"],
                           options["cam_weight"]).max(axis=(1, 2))
        clean[rows] = ok
        need[rows] = ok & (top > limit)
    return need, clean


def _unit_maps(stack) -> np.ndarray:
    """Per slice: finite and in [0, 1] (give or take 1e-6, as :func:`roi_prior` accepts)."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(stack).all(axis=(1, 2)) & (stack.min(axis=(1, 2)) >= -1e-6)
                & (stack.max(axis=(1, 2)) <= 1 + 1e-6))


def _roi_chunk(slices: list, kwargs: dict) -> np.ndarray:
    return np.stack([roi_prior(*args, **kwargs) for args in slices])


@functools.lru_cache(maxsize=None)
def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, started by ``spawn`` (a fork of a process running
    TensorFlow or JAX threads can deadlock), kept for the life of this process."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def box_filter(mask: np.ndarray, margin: int = 0) -> np.ndarray:
    """The filled bounding box of a mask grown by ``margin`` pixels, clipped to the image."""
    box = np.zeros(mask.shape, bool)
    if not mask.any():
        return box
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    box[
        max(rows[0] - margin, 0) : rows[-1] + margin + 1,
        max(cols[0] - margin, 0) : cols[-1] + margin + 1,
    ] = True
    return box


def component_boxes(mask: np.ndarray, margin: int = 0) -> np.ndarray:
    """The union of the bounding boxes of each 8-connected component of a 2D mask, each grown
    by ``margin`` pixels and clipped to the image."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    boxes = np.zeros(np.shape(mask), bool)
    for rows, cols in ndimage.find_objects(labels):
        boxes[max(rows.start - margin, 0):rows.stop + margin,
              max(cols.start - margin, 0):cols.stop + margin] = True
    return boxes


def _map(array, name: str, like: np.ndarray | None = None) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ShapeError(f"{name} must be one (H, W) map, got shape {array.shape}")
    if like is not None and array.shape != like.shape:
        raise ShapeError(f"{name} shape {array.shape} differs from probability shape {like.shape}")
    if not np.isfinite(array).all():
        raise InvalidDataError(f"{name} has NaN or infinite values")
    if array.min() < -1e-6 or array.max() > 1 + 1e-6:
        raise InvalidDataError(
            f"{name} must be in [0, 1], got {array.min():.3g}..{array.max():.3g}"
        )
    return np.clip(array, 0.0, 1.0)
