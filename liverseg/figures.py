"""A matplotlib figure that shows itself in a notebook without pyplot.

The library draws its figures on :class:`NotebookFigure` rather than through ``pyplot``, so
drawing one neither opens a window nor joins pyplot's global list of figures, and it still
shows as a PNG when a notebook cell returns or ``display``\\s it, also before pyplot's inline
backend is loaded (IPython's figure formatter exists only after the first pyplot figure).
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
