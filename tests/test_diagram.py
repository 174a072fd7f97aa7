"""The tuning network's block diagram follows the settings it is drawn from."""

from liverseg import config
from liverseg.models.diagram import tuning_net_diagram


def _texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


def test_the_diagram_draws_each_level_patch_input_gate_and_output_of_the_settings():
    paper = _texts(tuning_net_diagram())
    assert sum("ConvBox" in t for t in paper) == 4
    assert sorted(t.split("\n")[0] for t in paper if t.startswith("level_")) == [
        "level_1", "level_2", "level_3", "level_4"]
    assert [t for t in paper if "tiles" in t and "\n" in t] == [
        "2×2 tiles\n→ 256² × 4", "4×4 tiles\n→ 128² × 16", "8×8 tiles\n→ 64² × 64"]
    assert any("Res 1024 + ASPP 256 (rates 6,12,18)" in t for t in paper)

    smoke = config.profile("smoke").tuning
    bare = smoke.__class__(**{**smoke.to_dict(), "use_convbox": False, "deep_supervision": False,
                              "use_aspp": False, "patch_arrangement": "space_to_depth"})
    texts = _texts(tuning_net_diagram(bare))
    assert not any("ConvBox" in t for t in texts)
    assert [t.split("\n")[0] for t in texts if t.startswith("level_")] == ["level_1"]
    assert not any("ASPP" in t for t in texts)
    assert sum("pixel blocks" in t for t in texts) == len(smoke.patch_levels)
