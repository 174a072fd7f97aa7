"""A matplotlib figure that shows itself in a notebook without pyplot.

The library draws its figures on :class:`NotebookFigure` rather than through ``pyplot``, so
drawing one neither opens a window nor joins pyplot's global list of figures, and it still
shows as a PNG when a notebook cell returns or ``display``\\s it, also before pyplot's inline
backend is loaded (IPython's figure formatter exists only after the first pyplot figure).
:func:`cascade_panels` draws the networks chapter's slice, probability, Grad-CAM and prior.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A ``matplotlib.figure.Figure`` with a PNG representation for IPython."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def cascade_panels(image, probability, grad_cam, prior, reference=None, cam_layer: str = "",
                   figsize: tuple[float, float] = (13.0, 3.4)) -> NotebookFigure:
    """The first stage of the cascade on one slice, in four panels left to right: the CT
    slice, the localization network's probability, its Grad-CAM and the bounding-box prior made
    from both (each an ``(H, W)`` array), with the outline of ``reference`` (an ``(H, W)``
    mask, e.g. the liver) on every panel, to see where each map puts the organ. ``cam_layer``
    names the explained layer in the Grad-CAM panel's title."""
    panels = [(image, "slice", "gray"), (probability, "probability", "magma"),
              (grad_cam, f"Grad-CAM ({cam_layer})" if cam_layer else "Grad-CAM", "jet"),
              (prior, "bounding-box prior", "gray")]
    fig = NotebookFigure(figsize=figsize)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, wspace=0.08)
    for ax, (panel, title, cmap) in zip(fig.subplots(1, len(panels)), panels):
        ax.imshow(panel, cmap=cmap)
        if reference is not None:
            ax.contour(reference, levels=[0.5], colors="lime", linewidths=0.7)
        ax.set_title(title)
        ax.axis("off")
    return fig
