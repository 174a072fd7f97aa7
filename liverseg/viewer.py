"""Look through a CT volume and its liver / lesion masks, plane by plane.

Two views of the same drawing, used by the data-preparation chapter (``book/data_preparation``):

* :func:`slice_viewer` — an ipywidgets viewer for a running notebook (Jupyter, Colab, VS Code):
  a plane drop-down (axial / coronal / sagittal), a slice slider, and toggles for the reference
  and the predicted masks, drawn as contours or as translucent colours.
* :func:`static_views` — a matplotlib figure of the three planes through the centre of the
  liver with the same overlays, for the rendered book (widgets need a live kernel; an executed
  notebook keeps no widget state, so the book shows this figure instead).

Contract shared by both:

* ``image`` is a canonical ``(z, y, x)`` array (HU for CT; :mod:`liverseg.io`), a
  :class:`~liverseg.io.Volume` (its ``spacing`` is used unless ``spacing`` is given) or a
  :class:`~liverseg.datasets.base.Case` (its image, and its label as the ``reference``).
* ``reference`` and ``prediction`` are label volumes of the image's shape with the values of
  :mod:`liverseg.labels` (0 background, 1 liver, 2 lesion; booleans are liver masks). The liver
  is drawn where ``label >= 1`` (lesions lie inside it) and the lesions where ``label == 2``.
  Threshold probability maps first.
* ``spacing`` is the ``(z, y, x)`` voxel size in mm (default 1 mm): each slice is drawn with
  the pixel aspect of its plane, so a 5 mm-thick coronal slice is not squashed.
* Slices are cut by :func:`liverseg.datasets.planes.to_slices`: axial slice ``k`` is
  ``z = k`` in radiological view; coronal (``y = k``) and sagittal (``x = k``) slices have the
  head at the top.
* Colours: reference liver green, reference lesion red (solid); predicted liver blue,
  predicted lesion orange (dashed contours).
* Bad input raises :class:`ValueError` (:class:`~liverseg.errors.ShapeError` or
  :class:`~liverseg.errors.InvalidDataError`) that names the argument and the problem.
"""

from __future__ import annotations

import io
import math
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from liverseg.datasets.planes import PLANES, check_plane, plane_spacing, to_slices
from liverseg.errors import InvalidDataError, MissingExtraError, ShapeError
from liverseg.figures import NotebookFigure
from liverseg.labels import BACKGROUND, LESION, LIVER

try:
    import ipywidgets as widgets
except ImportError as error:  # the core install has no widgets
    raise MissingExtraError("the slice viewer needs ipywidgets, of the book extra: "
                            f"pip install 'liverseg[book]' ({error})") from None

__all__ = ["OVERLAYS", "SliceViewer", "SliceView", "slice_viewer", "static_views"]

#: How masks are drawn: outlines, or translucent colours over the image.
OVERLAYS = ("contour", "fill")
#: The default grey-level window in HU: a soft-tissue window (level 40, width 400).
HU_WINDOW = (-160.0, 240.0)

# (source, structure) -> colour; reference solid, prediction dashed.
_COLOURS = {("reference", "liver"): "#32cd32", ("reference", "lesion"): "#ff2020",
            ("prediction", "liver"): "#1e90ff", ("prediction", "lesion"): "#ffa500"}
_LINESTYLES = {"reference": "solid", "prediction": "dashed"}
_FILL_ALPHA = 0.4


class SliceView(NamedTuple):
    """What a viewer shows: the plane, the slice index, the 2D arrays drawn and the title."""

    plane: str
    index: int
    image: np.ndarray  # (h, w) slice of the image
    reference: np.ndarray | None  # (h, w) labels, None when there is no reference
    prediction: np.ndarray | None
    aspect: float  # pixel height / pixel width, from the spacing
    title: str


class _Volumes(NamedTuple):
    image: np.ndarray
    masks: dict  # "reference" / "prediction" -> uint8 (z, y, x) labels
    spacing: tuple[float, float, float]
    window: tuple[float, float]


def slice_viewer(image, reference=None, prediction=None, spacing=None, *, plane: str = "axial",
                 index: int | None = None, window=HU_WINDOW, overlay: str = "contour",
                 width: float = 5.5) -> "SliceViewer":
    """An interactive viewer of ``image`` with its masks (see the module doc for the inputs).

    Args:
        image, reference, prediction, spacing: see the module doc.
        plane: the plane shown first.
        index: the slice shown first (default: through the centre of the liver of the
            reference, else of the prediction, else the middle slice).
        window: ``(low, high)`` grey levels shown black and white (default: soft-tissue HU
            window); ``None``: the 1st and 99th percentiles of the image (for preprocessed,
            z-scored volumes).
        overlay: ``"contour"`` or ``"fill"`` (changeable in the viewer).
        width: width of the drawn slice in inches (at 100 dpi).
    Returns:
        a :class:`SliceViewer`, an ipywidgets box that displays itself in a notebook.
    Raises:
        ValueError: bad shapes, spacing, labels, window, plane, index or overlay.
    """
    volumes = _prepare(image, reference, prediction, spacing, window)
    return SliceViewer(volumes, plane=plane, index=index, overlay=overlay, width=width)


def static_views(image, reference=None, prediction=None, spacing=None, *, center=None,
                 window=HU_WINDOW, overlay: str = "contour", title: str | None = None,
                 figsize=(11.0, 4.2)):
    """A figure of the axial, coronal and sagittal slices through one point, with the masks.

    Args:
        image, reference, prediction, spacing: see the module doc.
        center: the ``(z, y, x)`` voxel the three slices go through (default: the centre of
            the liver of the reference, else of the prediction, else of the volume).
        window, overlay: as for :func:`slice_viewer`.
        title: the figure's title (default: none).
        figsize: ``(width, height)`` in inches.
    Returns:
        a :class:`matplotlib.figure.Figure` with one axes per plane, in :data:`PLANES` order,
        made without pyplot (nothing global, no second display): a notebook shows it as a PNG
        when it is a cell's value, whatever the matplotlib backend; ``fig.savefig`` saves it.
    Raises:
        ValueError: as :func:`slice_viewer`, or a ``center`` outside the volume.
    """
    volumes = _prepare(image, reference, prediction, spacing, window)
    _check_overlay(overlay)
    shape = volumes.image.shape
    if center is None:
        center = _liver_center(volumes)
    center = tuple(int(c) for c in center)
    if len(center) != 3 or not all(0 <= c < n for c, n in zip(center, shape)):
        raise InvalidDataError(f"center {center} is not a voxel of the (z, y, x) volume of "
                               f"shape {shape}")
    fig = NotebookFigure(figsize=figsize, dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, plane, index in zip(axes, PLANES, center):
        _draw(ax, _view(volumes, plane, index), overlay, volumes.window)
    _legend(fig, volumes.masks, overlay, columns=4)
    if title:
        fig.suptitle(title)
    return fig


class SliceViewer(widgets.VBox):
    """The widget :func:`slice_viewer` returns: controls above the drawn slice.

    Attributes (ipywidgets; set their ``value`` to drive the viewer from code):
        plane_control: ``Dropdown`` of :data:`PLANES`.
        slice_control: ``IntSlider`` of the slice index, ``0 … n - 1`` of the current plane.
        reference_control, prediction_control: ``Checkbox`` overlay toggles (disabled when
            that mask was not given).
        overlay_control: ``ToggleButtons`` of :data:`OVERLAYS`.
        image_widget: ``Image`` holding the PNG of the current drawing.
        figure: the matplotlib figure last drawn.
    """

    def __init__(self, volumes: _Volumes, *, plane: str, index: int | None, overlay: str,
                 width: float):
        check_plane(plane)
        _check_overlay(overlay)
        self._volumes = volumes
        self._width = float(width)
        n = to_slices(volumes.image, plane).shape[0]
        if index is None:
            index = _center_index(volumes, plane)
        if not (isinstance(index, (int, np.integer)) and 0 <= index < n):
            raise InvalidDataError(f"index {index!r} is outside the {n} {plane} slices "
                                   f"(0 … {n - 1})")
        self.plane_control = widgets.Dropdown(options=PLANES, value=plane, description="plane")
        self.slice_control = widgets.IntSlider(value=int(index), min=0, max=n - 1,
                                               description="slice")
        self.reference_control = widgets.Checkbox(
            value="reference" in volumes.masks, disabled="reference" not in volumes.masks,
            description="reference", indent=False)
        self.prediction_control = widgets.Checkbox(
            value="prediction" in volumes.masks, disabled="prediction" not in volumes.masks,
            description="prediction", indent=False)
        self.overlay_control = widgets.ToggleButtons(options=OVERLAYS, value=overlay)
        self.image_widget = widgets.Image(format="png")
        self.figure = None
        self._paused = False
        # A new plane keeps the slice through the liver's centre, not the old index.
        self.plane_control.observe(self._on_plane, names="value")
        for control in (self.slice_control, self.reference_control, self.prediction_control,
                        self.overlay_control):
            control.observe(self._redraw, names="value")
        rows = [widgets.HBox([self.plane_control, self.slice_control]),
                widgets.HBox([self.reference_control, self.prediction_control,
                              self.overlay_control])]
        super().__init__(rows + [self.image_widget])
        self._redraw()

    def current(self) -> SliceView:
        """The slice shown now, with the masks that are switched on."""
        view = _view(self._volumes, self.plane_control.value, self.slice_control.value)
        return view._replace(
            reference=view.reference if self.reference_control.value else None,
            prediction=view.prediction if self.prediction_control.value else None)

    def _on_plane(self, change) -> None:
        plane = change["new"]
        n = to_slices(self._volumes.image, plane).shape[0]
        index = _center_index(self._volumes, plane)
        self._paused = True  # one drawing for the new plane, not one per slider change
        try:  # the value must stay inside [min, max] at every step
            if index > self.slice_control.max:
                self.slice_control.max = n - 1
                self.slice_control.value = index
            else:
                self.slice_control.value = index
                self.slice_control.max = n - 1
        finally:
            self._paused = False
        self._redraw()

    def _redraw(self, change=None) -> None:
        if self._paused:
            return
        view = self.current()
        h, w = view.image.shape
        ratio = min(max(h * view.aspect / w, 0.25), 2.5)  # physical height / width
        fig = Figure(figsize=(self._width, self._width * ratio + 0.6), dpi=100,
                     layout="constrained")
        ax = fig.subplots()
        _draw(ax, view, self.overlay_control.value, self._volumes.window)
        shown = {k: v for k, v in self._volumes.masks.items()
                 if getattr(self, f"{k}_control").value}
        _legend(fig, shown, self.overlay_control.value, columns=2)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.figure = fig
        self.image_widget.value = buffer.getvalue()


def preprocessing_steps(case, config=None, *, figsize=(11.0, 3.6)):
    """The axial slice through the middle of a case's liver three ways: HU over [−1000, 1000],
    clipped to the window of ``config`` (a :class:`~liverseg.preprocess.PreprocessConfig`;
    default the paper's), and fully preprocessed (window, median filter, z-score) as the
    networks see it. Returns a figure made without pyplot, as :func:`static_views`."""
    from liverseg.preprocess import PreprocessConfig, preprocess, window

    config = config or PreprocessConfig()
    hu = np.asarray(case.image.array, np.float32)
    liver = np.nonzero(np.asarray(case.label) >= LIVER)[0]
    if not len(liver):
        raise InvalidDataError(f"case {case.case_id} has no liver to centre the slice on")
    k = int(np.median(liver))
    low, high = config.window or (float(hu.min()), float(hu.max()))
    panels = [(hu[k], "HU, full range", {"vmin": -1000, "vmax": 1000}),
              (window(hu[k], low, high), f"window [{low:g}, {high:g}]", {}),
              (preprocess(hu, config, source=case.image.path)[k], "window, median, z-score", {})]
    fig = NotebookFigure(figsize=figsize, dpi=100, layout="constrained")
    for ax, (image, title, scale) in zip(fig.subplots(1, 3), panels):
        ax.imshow(image, cmap="gray", **scale)
        ax.set_title(title)
        ax.axis("off")
    return fig


def _prepare(image, reference, prediction, spacing, window) -> _Volumes:
    """Unwrap and check the inputs (module doc)."""
    if hasattr(image, "image") and hasattr(image, "label"):  # a Case
        reference = image.label if reference is None else reference
        image = image.image
    if hasattr(image, "array") and hasattr(image, "spacing"):  # a Volume
        spacing = image.spacing if spacing is None else spacing
        image = image.array
    array = np.asarray(image)
    if array.ndim != 3:
        raise ShapeError(f"image must be a (z, y, x) volume, got an array of shape {array.shape}")
    if min(array.shape) == 0:
        raise ShapeError(f"image has an empty axis: shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InvalidDataError(f"image must be numeric, got dtype {array.dtype}")
    masks = {}
    for name, mask in (("reference", reference), ("prediction", prediction)):
        if mask is not None:
            masks[name] = _check_labels(name, mask, array.shape)
    return _Volumes(array, masks, _check_spacing(spacing), _check_window(window, array))


def _check_labels(name: str, mask, shape) -> np.ndarray:
    if hasattr(mask, "array"):  # a Volume of labels
        mask = mask.array
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ShapeError(f"{name} has shape {mask.shape} but the image has shape {tuple(shape)}; "
                         "a mask must match the image voxel for voxel")
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if mask.dtype.kind not in "iuf":
        raise InvalidDataError(f"{name} must be a label volume, got dtype {mask.dtype}")
    values = np.unique(mask)
    if not np.isin(values, (BACKGROUND, LIVER, LESION)).all():
        shown = values[:8].tolist() + (["…"] if len(values) > 8 else [])
        raise InvalidDataError(f"{name} has values {shown}; expected labels 0 background, "
                               "1 liver, 2 lesion (threshold a probability map first)")
    return mask.astype(np.uint8)


def _check_spacing(spacing) -> tuple[float, float, float]:
    if spacing is None:
        return (1.0, 1.0, 1.0)
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InvalidDataError(f"spacing must be three numbers (z, y, x) in mm, got "
                               f"{spacing!r}") from None
    if len(values) != 3:
        raise ShapeError(f"spacing must be three numbers (z, y, x) in mm, got {len(values)}: "
                         f"{spacing!r}")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise InvalidDataError(f"spacing must be positive and finite (mm), got {values}")
    return values


def _check_window(window, array: np.ndarray) -> tuple[float, float]:
    if window is None:
        step = max(1, round((array.size / 1e6) ** (1 / 3)))  # about a million voxels suffice
        sample = array[::step, ::step, ::step].astype(np.float64).ravel()
        finite = sample[np.isfinite(sample)]
        if finite.size == 0:
            return (0.0, 1.0)
        low, high = (float(v) for v in np.percentile(finite, (1, 99)))
        return (low, high) if high > low else (low, low + 1.0)
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise InvalidDataError(f"window must be (low, high) or None, got {window!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidDataError(f"window must be finite with low < high, got {window!r}")
    return (low, high)


def _check_overlay(overlay: str) -> None:
    if overlay not in OVERLAYS:
        raise InvalidDataError(f"overlay must be one of {OVERLAYS}, got {overlay!r}")


def _liver_center(volumes: _Volumes) -> tuple[int, int, int]:
    """The median ``(z, y, x)`` voxel of the reference liver, else of the predicted one, else
    the middle of the volume."""
    for name in ("reference", "prediction"):
        mask = volumes.masks.get(name)
        if mask is not None and mask.any():
            return tuple(int(np.median(i)) for i in np.nonzero(mask >= LIVER))
    return tuple(n // 2 for n in volumes.image.shape)


def _center_index(volumes: _Volumes, plane: str) -> int:
    return _liver_center(volumes)[PLANES.index(plane)]  # axial: z, coronal: y, sagittal: x


def _view(volumes: _Volumes, plane: str, index: int) -> SliceView:
    check_plane(plane)
    stack = to_slices(volumes.image, plane)
    n = stack.shape[0]
    if not 0 <= index < n:
        raise InvalidDataError(f"index {index} is outside the {n} {plane} slices (0 … {n - 1})")
    masks = {name: to_slices(mask, plane)[index] for name, mask in volumes.masks.items()}
    _, row_mm, col_mm = plane_spacing(volumes.spacing, plane)
    return SliceView(plane, int(index), stack[index], masks.get("reference"),
                     masks.get("prediction"), row_mm / col_mm,
                     f"{plane} slice {index} / {n - 1}")


def _structures(labels: np.ndarray):
    yield "liver", labels >= LIVER
    yield "lesion", labels == LESION


def _draw(ax, view: SliceView, overlay: str, window: tuple[float, float]) -> None:
    low, high = window
    ax.imshow(view.image, cmap="gray", vmin=low, vmax=high, aspect=view.aspect,
              interpolation="nearest")
    for source in ("reference", "prediction"):
        labels = getattr(view, source)
        if labels is None:
            continue
        if overlay == "fill":  # one translucent layer per source; the lesions over the liver
            rgba = np.zeros(labels.shape + (4,), dtype=np.float32)
            for structure, mask in _structures(labels):
                rgba[mask] = (*_rgb(_COLOURS[source, structure]), _FILL_ALPHA)
            ax.imshow(rgba, aspect=view.aspect, interpolation="nearest")
            continue
        for structure, mask in _structures(labels):
            if mask.any() and not mask.all():  # a constant mask has no outline
                ax.contour(mask.astype(np.float32), levels=[0.5],
                           colors=[_COLOURS[source, structure]], linewidths=1.0,
                           linestyles=_LINESTYLES[source])
    ax.set_title(view.title)
    ax.set_axis_off()


def _rgb(colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def _legend(fig, masks: dict, overlay: str, columns: int) -> None:
    if not masks:
        return
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for source in ("reference", "prediction"):
        if source not in masks:
            continue
        for structure in ("liver", "lesion"):
            colour, label = _COLOURS[source, structure], f"{source} {structure}"
            if overlay == "fill":
                handles.append(Patch(facecolor=colour, alpha=_FILL_ALPHA, label=label))
            else:
                handles.append(Line2D([], [], color=colour, linestyle=_LINESTYLES[source],
                                      label=label))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(columns, len(handles)),
               frameon=False, fontsize="small")
