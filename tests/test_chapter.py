"""The chapter harness: parameters over environment, one place for a chapter's paths, and
chapters short enough to read."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from liverseg.experiments import chapter as harness
from liverseg.experiments.chapter import SHARED_NETWORKS, open_chapter

ROOT = Path(__file__).resolve().parents[1]
MAX_CODE_LINES = 60


def _code_lines(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum(1 for cell in cells if cell["cell_type"] == "code"
               for line in "".join(cell["source"]).splitlines()
               if line.strip() and not line.strip().startswith("#"))


def _chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{entry['file']}.ipynb" for entry in toc["chapters"]]


def test_a_parameter_beats_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERSEG_PROFILE", "paper")
    opened = open_chapter("x", profile="smoke", run_dir=str(tmp_path), keras=False)
    assert opened.settings.name == "smoke"


def test_the_environment_is_the_default_then_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERSEG_PROFILE", "smoke")
    assert open_chapter("x", run_dir=str(tmp_path), keras=False).settings.name == "smoke"
    monkeypatch.delenv("LIVERSEG_PROFILE")
    assert open_chapter("x", run_dir=str(tmp_path), keras=False).settings.name == "demo"


def test_paths_dataset_changes_and_shared_networks(tmp_path, capsys):
    opened = open_chapter("fusion", "smoke", "lits", "/data/lits", run_dir=str(tmp_path),
                          keras=False, **{"train.epochs": 2})
    assert opened.store == tmp_path / "store"
    assert opened.results_path == tmp_path / "results" / "fusion.json"
    assert opened.settings.dataset == "lits" and opened.settings.train.epochs == 2
    assert opened.data_dir == "/data/lits" and opened.backend is None
    assert open_chapter("y", "smoke", run_dir=str(tmp_path), keras=False).data_dir is None
    for name, value in SHARED_NETWORKS.items():
        section, field = name.split(".")
        assert getattr(getattr(opened.shared, section), field) == value
    assert "fusion: profile smoke on lits" in capsys.readouterr().out


def test_an_unknown_profile_or_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="nosuch"):
        open_chapter("x", "nosuch", run_dir=str(tmp_path), keras=False)
    with pytest.raises(ValueError, match="backend must be one of"):
        open_chapter("x", "smoke", backend="theano", run_dir=str(tmp_path))


@pytest.mark.keras
def test_keras_already_running_on_another_backend_is_refused(tmp_path):
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    with pytest.raises(ValueError, match=f"restart the kernel to use '{other}'"):
        open_chapter("x", "smoke", backend=other, run_dir=str(tmp_path))
    opened = open_chapter("x", "smoke", backend=keras.backend.backend(), run_dir=str(tmp_path))
    assert opened.backend == keras.backend.backend()


def test_save_writes_the_settings_beside_the_results(tmp_path):
    opened = open_chapter("data", "smoke", run_dir=str(tmp_path), keras=False)
    path = opened.save({"dice": np.float32(0.5), "counts": np.arange(3), "where": tmp_path})
    saved = json.loads(path.read_text())
    assert path == tmp_path / "results" / "data.json"
    assert saved["settings"]["name"] == "smoke" and saved["chapter"] == "data"
    assert saved["dice"] == 0.5 and saved["counts"] == [0, 1, 2] and saved["where"] == str(tmp_path)
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        opened.save({"bad": object()})
    assert json.loads(path.read_text())["dice"] == 0.5  # the earlier file is left whole


def test_every_chapter_opens_with_the_harness_and_stays_short():
    for notebook in _chapters():
        cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
        parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        assert 'profile = ""' in "".join(parameters["source"]), notebook.name
        opening = "".join(cells[cells.index(parameters) + 1]["source"])
        assert f'open_chapter("{notebook.stem}", profile, dataset, data_dir, backend, run_dir' \
            in opening, notebook.name
        text = "".join("".join(c["source"]) for c in cells)
        assert "os.environ" not in text, notebook.name  # the harness reads the environment
        assert _code_lines(notebook) <= MAX_CODE_LINES, (notebook.name, _code_lines(notebook))


def test_the_harness_imports_no_keras():
    source = Path(harness.__file__).read_text()
    assert "\nimport keras" not in source and "\nfrom keras" not in source


def test_nbval_sanitizes_times_and_warnings_but_not_numbers():
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval" / "sanitize.cfg").read_text())
    assert len(patterns) == 4

    def clean(text):
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    first = ("WARNING:tensorflow:5 out of the last 12 calls to <function f at 0x7f15873>\n"
             "4 networks, Dice 0.732; 9 s\n")
    again = "4 networks, Dice 0.732; 12 s\n"
    assert clean(first) == clean(again) == "4 networks, Dice 0.732; <seconds> s\n"
    assert clean("phantoms:   0%|   | 0/5 [00:01<?, ?case/s]") == clean(
        "phantoms:   0%|   | 0/5 [00:00<?, ?case/s]")
    assert clean("Dice 0.732; 9 s\n") != clean("Dice 0.733; 9 s\n")
