"""The networks chapter's tables and figure: the tuning network's layers with their roles, its
parameter count beside the paper's, and the four panels of the localization stage."""

import numpy as np
import pytest

from liverseg import config
from liverseg.figures import cascade_panels
from liverseg.models import build_tuning_net, summary


@pytest.fixture(scope="module")
def smoke_tuning():
    return config.profile("smoke").tuning


@pytest.fixture(scope="module")
def smoke_net(smoke_tuning):
    return build_tuning_net(smoke_tuning)


def _rows(table: str) -> list[list[str]]:
    lines = table.splitlines()
    assert set(lines[1]) <= set("|-:")  # the rule under the header
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_parameter_counts_are_kerass_split_into_trainable_and_batch_norm_statistics(smoke_tuning):
    total, trainable, fixed = summary.parameter_counts(smoke_tuning, batch_norm=True)
    net = build_tuning_net(config.TuningConfig(**{**smoke_tuning.to_dict(), "batch_norm": True}))
    assert total == net.count_params() == trainable + fixed
    statistics = [w for w in net.weights if w.path.endswith(("moving_mean", "moving_variance"))]
    assert fixed == sum(int(np.prod(w.shape)) for w in statistics) > 0
    plain = summary.parameter_counts(config.profile("smoke"), batch_norm=False)  # a profile
    assert plain[0] == plain[1] + plain[2] < total
    assert 0 < plain[2] < fixed  # ASPP keeps its batch normalization


def test_the_papers_count_adds_up():
    total, trainable, fixed = summary.PAPER_TUNER_PARAMETERS
    assert total == trainable + fixed


def test_the_layer_table_has_one_row_per_layer_and_a_role_for_each(smoke_net):
    rows = _rows(summary.layer_table(smoke_net))
    assert [row[0] for row in rows] == [f"`{layer.name}`" for layer in smoke_net.layers]
    assert [row[1] for row in rows] == [type(layer).__name__ for layer in smoke_net.layers]
    assert all(row[4] for row in rows), [row[0] for row in rows if not row[4]]
    assert sum(int(row[3].replace(",", "")) for row in rows) == smoke_net.count_params()
    roles = {row[0]: row[4] for row in rows}
    assert "side output" in roles["`level_1`"] and "patches" in roles["`patches2_proj`"]
    assert roles["`image`"] == roles["`prior`"] == "input"


def test_the_parameter_table_sets_each_count_beside_the_papers():
    paper = summary.PAPER_TUNER_PARAMETERS
    larger = (round(paper[0] * 1.05), round(paper[0] * 1.05) - 3_072, 3_072)
    assert summary.excess_percent(larger) == pytest.approx(5.0, abs=1e-4)
    rows = _rows(summary.parameter_table({"ours": larger}))
    assert rows == [["paper", "38,059,141", "38,056,069", "3,072", "–"],
                    ["ours", f"{larger[0]:,}", f"{larger[1]:,}", "3,072", "+5.0 %"]]
    assert _rows(summary.parameter_table({"ours": larger}, paper=None)) == [
        ["ours", f"{larger[0]:,}", f"{larger[1]:,}", "3,072"]]


def test_the_cascade_panels_show_each_map_with_the_reference_outline():
    image = np.random.default_rng(0).normal(size=(32, 32))
    reference = np.zeros((32, 32))
    reference[8:20, 10:24] = 1
    fig = cascade_panels(image, reference * 0.9, reference * 0.5, reference, reference, "bottleneck")
    assert [ax.get_title() for ax in fig.axes] == [
        "slice", "probability", "Grad-CAM (bottleneck)", "bounding-box prior"]
    assert all(ax.images and ax.collections for ax in fig.axes)  # the map and the outline
    assert fig._repr_png_().startswith(b"\x89PNG")
    bare = cascade_panels(image, image, image, image)
    assert bare.axes[2].get_title() == "Grad-CAM" and not any(ax.collections for ax in bare.axes)
