"""Segmenting a CT volume with a trained model folder (sections 3.9–3.10, Fig. 14).

For each plane of the model folder the preprocessed volume is cut into slices
(:mod:`liverseg.datasets.planes`), resized to the networks' input, passed through the liver
cascade (localizer → Grad-CAM + CRF prior → tuner, :mod:`liverseg.predict`) a chunk of
slices at a time, resized back and stacked into a probability volume (float16). The planes
are fused as they arrive (:class:`~liverseg.inference.fusion.FusionAccumulator`, soft voting
by default), so only one plane's probabilities are alive at a time. The liver is the fused
mask's largest component; the lesion cascade then runs on that liver's view
(:mod:`liverseg.lesion_view`: the liver grown by ``liver_margin`` voxels, everything else at the
window's floor, by default cropped to its bounding box), and its fused mask, kept inside the
liver, gives label 2. :func:`liverseg.postprocess.postprocess_label` cleans
the 0/1/2 label (hole filling, small lesions).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from liverseg.datasets.planes import from_slices, to_slices
from liverseg.errors import InvalidDataError, ShapeError
from liverseg.inference.fusion import FusionAccumulator
from liverseg.resample import from_model_size, to_model_size
from liverseg.labels import LESION, LIVER
from liverseg.lesion_view import lesion_view
from liverseg.model_folder import ModelFolder, load_network, read_model_folder
from liverseg.postprocess import fill_holes, largest_component, postprocess_label
from liverseg.preprocess import check_finite, preprocess


@dataclasses.dataclass
class Segmentation:
    """The result of :meth:`Segmenter.segment`."""

    label: np.ndarray  # (z, y, x) uint8 0/1/2, the input's shape
    probabilities: dict  # {"liver": fused (z, y, x) float32} (soft fusion only)
    seconds: dict  # time per stage

    def volumes_ml(self, spacing) -> dict:
        """Liver (label ≥ 1) and lesion (label 2) volumes in mL for a ``(z, y, x)`` mm spacing."""
        voxel_ml = float(np.prod(spacing)) / 1000.0
        return {"liver_ml": float(np.count_nonzero(self.label >= LIVER) * voxel_ml),
                "lesion_ml": float(np.count_nonzero(self.label == LESION) * voxel_ml)}


class Segmenter:
    """A trained system, ready to segment volumes.

    Args:
        model_dir: a model folder written by ``liverseg train`` (or the run folder holding it).
        planes: the planes to use (default: every plane of the folder).
        fusion: ``"soft"``, ``"union"``, ``"intersection"``, ``"majority"`` (default: the
            folder's ``InferenceConfig.fusion``).
        threshold: the liver's cut in [0, 1]: the soft vote's mask is the planes' mean
            probability above it, a hard vote's planes are cut at it (default: the folder's
            ``inference.threshold``, 0.5). The lesion stage keeps its own.
        chunk: slices put through the cascade at a time (bounds memory).
    """

    def __init__(self, model_dir, planes=None, fusion: str | None = None, chunk: int = 64,
                 progress: bool = True, threshold: float | None = None):
        self.folder: ModelFolder = read_model_folder(model_dir)
        self.settings = self.folder.settings
        self.planes = tuple(planes or self.folder.planes)
        unknown = [p for p in self.planes if p not in self.folder.planes]
        if unknown:
            raise InvalidDataError(
                f"the model folder has no {', '.join(unknown)} networks "
                f"(it has {', '.join(self.folder.planes)})", self.folder.root)
        self.fusion = fusion or self.settings.inference.fusion
        FusionAccumulator(self.fusion, (1, 1, 1))  # checks the method name now
        self.chunk = int(chunk)
        self.progress = progress
        self._models: dict = {}
        self._stages = {structure: self.settings.stage(structure)
                        for structure in self.folder.structures}
        if threshold is not None:
            FusionAccumulator(self.fusion, (1, 1, 1), threshold)  # checks the value now
            self._stages["liver"] = self._stages["liver"].replace(
                **{"inference.threshold": float(threshold)})

    @property
    def threshold(self) -> float:
        """The fused liver's cut (see the class's ``threshold``)."""
        return self._stages["liver"].inference.threshold

    def _network(self, plane, structure, network):
        key = (plane, structure, network)
        if key not in self._models:
            path = self.folder.path(*key)
            model = load_network(path)  # shared with this folder's other segmenters
            size = self._stages[structure].image_size
            if tuple(model.inputs[0].shape[1:3]) != (size, size):
                raise ShapeError(
                    f"the network takes {tuple(model.inputs[0].shape[1:3])} slices but the model "
                    f"folder's settings say {size}×{size}: the folder mixes models", path)
            self._models[key] = model
        return self._models[key]

    def segment(self, volume, keep_probabilities: bool = True) -> Segmentation:
        """Segment a :class:`~liverseg.io.Volume` (canonical ``(z, y, x)`` HU) into 0/1/2.

        ``keep_probabilities``: also return the fused probabilities (soft fusion only); off,
        they are freed as soon as they are thresholded.
        """
        hu = check_finite(np.asarray(volume.array, np.float32), volume.path)
        if hu.ndim != 3 or min(hu.shape) < 2:
            raise ShapeError(f"expected a 3D CT volume, got shape {hu.shape}", volume.path)
        seconds = {}
        tic = time.perf_counter()
        image = preprocess(hu, self.settings.preprocess, source=volume.path)
        seconds["preprocess"] = time.perf_counter() - tic
        inference = self.settings.inference
        keep = keep_probabilities and self.fusion == "soft"

        fused = self._fused(image, hu, "liver", seconds)
        tic = time.perf_counter()
        liver = largest_component(fused.result())
        seconds["liver_component"] = time.perf_counter() - tic
        probabilities = {"liver": fused.probability()} if keep else {}
        del fused
        label = liver.astype(np.uint8) * LIVER
        if inference.lesions and "lesion" in self.folder.structures and liver.any():
            lesions, probability = self.find_lesions(image, hu, liver, seconds=seconds,
                                                     keep_probability=keep)
            label[lesions] = LESION
            if keep:
                probabilities["lesion"] = probability
            del lesions, probability
        del image, hu
        tic = time.perf_counter()
        label = postprocess_label(label, fill=inference.fill,
                                  min_lesion_size=inference.min_lesion_size,
                                  spacing=volume.spacing)
        seconds["postprocess"] = time.perf_counter() - tic
        return Segmentation(label, probabilities, {k: round(v, 3) for k, v in seconds.items()})

    def find_lesions(self, image: np.ndarray, hu: np.ndarray, liver: np.ndarray, planes=None,
                     seconds: dict | None = None, keep_probability: bool = False):
        """The lesions inside ``liver`` (bool ``(z, y, x)``) found by the lesion networks of
        ``planes`` (default: the segmenter's) on the liver's view (:mod:`liverseg.lesion_view`),
        fused; the liver's holes are filled first (as ``inference.fill`` says), so a lesion
        the liver networks left out is looked at and may be found; and, with
        ``keep_probability`` (soft fusion), their fused probability (float32, 0 outside the
        view), else ``None``. ``image``: preprocessed; ``hu``: HU."""
        inference = self.settings.inference
        if inference.fill is not None:  # a lesion the liver stage left as a hole is liver's
            liver = fill_holes(liver, per_slice=inference.fill == "slice")
        view = lesion_view(image, hu, liver, inference.liver_margin, inference.lesion_view)
        fused = self._fused(view.image, view.hu, "lesion", {} if seconds is None else seconds,
                            region=view.region, planes=planes)
        lesions = view.paste(fused.result()) & liver
        probability = view.paste(fused.probability()) if keep_probability else None
        return lesions, probability

    def _fused(self, image, hu, structure, seconds, region=None,
               planes=None) -> FusionAccumulator:
        accumulator = FusionAccumulator(self.fusion, image.shape,
                                        self._stages[structure].inference.threshold)
        for plane in planes or self.planes:
            tic = time.perf_counter()
            accumulator.add(self.predict_plane(image, hu, plane, structure, region))
            seconds[f"{structure}_{plane}"] = time.perf_counter() - tic
        return accumulator

    def predict_plane(self, image: np.ndarray, hu: np.ndarray, plane: str,
                      structure: str = "liver", region: np.ndarray | None = None) -> np.ndarray:
        """``(z, y, x)`` float16 probability of ``structure`` from the networks of one plane.

        ``image`` is the preprocessed volume (the networks' input), ``hu`` the same in HU.
        With a boolean ``region`` only the slices that cut it are predicted (0 elsewhere):
        the lesion networks need not look at slices without liver.
        """
        from liverseg.predict import predict_priors, predict_tuned

        localizer = self._network(plane, structure, "localizer")
        tuner = self._network(plane, structure, "tuner")
        s = self._stages[structure]  # the lesion networks have settings of their own
        size, batch = s.image_size, s.inference.batch_size
        slices, hu_slices = to_slices(image, plane), to_slices(hu, plane)
        out = np.zeros(slices.shape, np.float16)
        first, stop = 0, len(slices)
        if region is not None:
            cut = np.flatnonzero(to_slices(region, plane).any(axis=(1, 2)))
            first, stop = (cut[0], cut[-1] + 1) if len(cut) else (0, 0)
        starts = range(first, stop, self.chunk)
        for start in tqdm(starts, desc=f"{structure} {plane}", unit="chunk",
                          disable=not self.progress, leave=False):
            part = slice(start, min(start + self.chunk, stop))
            x = to_model_size(slices[part], size)
            priors = predict_priors(localizer, x, to_model_size(hu_slices[part], size),
                                    s.prior, batch)
            probability = predict_tuned(tuner, x, priors, batch)
            out[part] = from_model_size(probability, slices.shape[1:])
        return from_slices(out, plane)


def segment_file(input_path, output_path, model_dir, planes=None, fusion=None,
                 progress: bool = True, threshold: float | None = None) -> dict:
    """Read a CT (NIfTI/NRRD file or DICOM folder), segment it, write the label NIfTI.

    The label is written in the input's own geometry (it overlays the input in 3D Slicer or
    ITK-SNAP), atomically: on any error no output file exists. Returns a summary: paths,
    liver and lesion volumes in mL, seconds per stage.
    """
    from liverseg.io import read_volume, write_volume

    segmenter = Segmenter(model_dir, planes, fusion, progress=progress,  # check the model first
                          threshold=threshold)
    tic = time.perf_counter()
    volume = read_volume(input_path)
    read_seconds = time.perf_counter() - tic
    result = segmenter.segment(volume, keep_probabilities=False)
    tic = time.perf_counter()
    write_volume(result.label, output_path, like=volume)
    seconds = {"read": round(read_seconds, 3), **result.seconds,
               "write": round(time.perf_counter() - tic, 3)}
    return {"input": str(input_path), "output": str(Path(output_path)),
            "model": str(segmenter.folder.root), "planes": list(segmenter.planes),
            "fusion": segmenter.fusion, "threshold": segmenter.threshold,
            "shape_zyx": list(result.label.shape),
            **result.volumes_ml(volume.spacing), "seconds": seconds}
