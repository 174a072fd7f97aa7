"""The tuning network in tables: its layers with the part of the paper each implements, and
its parameter count beside the paper's.

The paper describes the tuning network (Fig. 8) in prose and gives one number for its size
(§3.4, :data:`PAPER_TUNER_PARAMETERS`). :func:`layer_table` lists a built network layer by
layer, so a reader can match every layer to a sentence of the paper; :func:`parameter_counts`
and :func:`parameter_table` set a configuration's parameter count beside the paper's, since
the paper gives neither the widths nor the depth that would fix it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import keras

from liverseg.config import Profile, TuningConfig
from liverseg.experiments.tables import markdown_table
from liverseg.models.tuning import build_tuning_net

PAPER_TUNER_PARAMETERS = (38_059_141, 38_056_069, 3_072)
"""The paper's parameter count of its 512 × 512 tuning network (§3.4): total, trainable,
non-trainable."""

ROLES = {
    "DilatedStem": "parallel dilated 3×3 convolutions (§3.4)",
    "ResidualBlock": "residual block (Fig. 11)",
    "ImagePatches": "the slice cut into this level's patches, stacked as channels (§3.4)",
    "ConvBox": "ROI prior → attention map for this level's skip (Fig. 12)",
    "ASPP": "atrous spatial pyramid pooling (§3.5, Figs. 9–10)",
    "Multiply": "skip connection gated by the ConvBox map",
    "UpSampling2D": "bilinear upsampling",
    "MaxPooling2D": "2 × 2 max pooling",
    "Concatenate": "concatenation",
    "InputLayer": "input",
}
"""What each kind of layer of :func:`~liverseg.models.build_tuning_net` does, in the paper's
terms; the 1 × 1 convolutions are told apart by name (:func:`layer_role`)."""


def layer_role(layer: keras.layers.Layer) -> str:
    """The part of the paper a layer of the tuning network implements ("" if none is known).

    The tuning network's 1 × 1 convolutions are of two kinds, told apart by the names
    :func:`~liverseg.models.build_tuning_net` gives them: ``patches<l>_proj`` projects the
    patches of level ``l``, ``level_<k>`` is a side output.
    """
    if layer.name.endswith("_proj"):
        return "1 × 1 convolution of the patches to the pooled features' width"
    if layer.name.startswith("level_"):
        return "side output (sigmoid), the multi-level loss's input"
    return ROLES.get(type(layer).__name__, "")


def layer_table(model: keras.Model) -> str:
    """A Markdown table of a built network, one row per layer in ``model.layers`` order: its
    name, kind, output shape ``(H, W, C)`` (batch left out), parameter count and role
    (:func:`layer_role`)."""
    rows = [(f"`{layer.name}`", type(layer).__name__, tuple(layer.output.shape[1:]),
             f"{layer.count_params():,}", layer_role(layer)) for layer in model.layers]
    return markdown_table(["layer", "kind", "output (H, W, C)", "parameters", "role"], rows,
                          right=(3,))


def parameter_counts(config: Profile | TuningConfig | None = None,
                     **changes) -> tuple[int, int, int]:
    """``(total, trainable, non_trainable)`` weights of the tuning network of ``config`` (a
    profile, its ``tuning`` part, or ``None`` for the paper configuration) with the
    :class:`~liverseg.config.TuningConfig` fields ``changes`` changed
    (``parameter_counts(residual_merge="concat")``), counted as the paper counts them: batch
    normalization's moving statistics are the non-trainable ones. Builds the network (for the
    paper configuration, 38 M weights: a few seconds and about 150 MB)."""
    if isinstance(config, Profile):
        config = config.tuning
    net = build_tuning_net(dataclasses.replace(config or TuningConfig(), **changes))
    trainable = sum(_size(w) for w in net.trainable_weights)
    fixed = sum(_size(w) for w in net.non_trainable_weights)
    return trainable + fixed, trainable, fixed


def excess_percent(counts: Sequence[int], paper: Sequence[int] = PAPER_TUNER_PARAMETERS) -> float:
    """How many per cent the total of ``counts`` lies above ``paper``'s (negative: below)."""
    return 100 * (counts[0] / paper[0] - 1)


def parameter_table(counts: Mapping[str, Sequence[int]],
                    paper: Sequence[int] | None = PAPER_TUNER_PARAMETERS) -> str:
    """A Markdown table of ``name → (total, trainable, non_trainable)`` counts, the paper's row
    first (``paper=None`` leaves it out), each total's excess over the paper's last."""
    rows = {"paper": paper, **counts} if paper is not None else dict(counts)
    columns = ["", "total", "trainable", "non-trainable"]
    if paper is not None:
        columns.append("above the paper")
    body = []
    for name, (total, trainable, fixed) in rows.items():
        cells = [name, f"{total:,}", f"{trainable:,}", f"{fixed:,}"]
        if paper is not None:
            cells.append("–" if name == "paper" else
                         f"{excess_percent((total, trainable, fixed), paper):+.1f} %")
        body.append(cells)
    return markdown_table(columns, body, right=tuple(range(1, len(columns))))


def _size(weight) -> int:
    size = 1
    for n in weight.shape:
        size *= int(n)
    return size
