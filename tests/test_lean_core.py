"""A lean core: the library trains, segments and evaluates without the book's packages, and the
report chapter runs without Keras (issue "One system under the book"). Each check runs in a
fresh process whose imports of the missing packages fail, as on a machine without them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: a prelude that makes ``packages`` impossible to import in the process it opens
BLOCK = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
sys.meta_path.insert(0, Missing())
sys.path.insert(0, {root!r})
"""

#: the ``book`` extra (papermill, jupyter, jupyter-book, ipywidgets) and what they bring
BOOK_PACKAGES = ("papermill", "jupyter_book", "ipywidgets", "myst_nb", "notebook",
                 "jupyterlab", "jupyter_server", "nbclient")


def _run(code: str, blocked, tmp_path) -> str:
    prelude = BLOCK.format(blocked=tuple(blocked), root=str(ROOT))
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_train_segment_and_evaluate_without_the_book_packages(tmp_path):
    code = """
import json
from liverseg.datasets import synthetic
from liverseg.evaluation import evaluate_files
from liverseg.inference.volume import Segmenter
from liverseg.io import write_volume
from liverseg.train import train_system
from tests.conftest import tiny_profile

settings = tiny_profile(n_cases=5, planes=("axial",), **{  # the liver cascade: seconds
    "train.epochs": 1, "self_training.iterations": 0, "inference.lesions": False})
model = train_system(settings, "run", progress=False)
case = synthetic.make_case((777, 0), shape=settings.phantom_shape)
label = Segmenter(model, progress=False).segment(case.image).label
write_volume(label, "label.nii.gz", like=case.image)
write_volume(case.label, "reference.nii.gz", like=case.image)
scores = evaluate_files("label.nii.gz", "reference.nii.gz")
import sys
print(json.dumps({"shape": list(label.shape), "liver": "liver" in scores,
                  "loaded": sorted(m for m in BLOCKED if m in sys.modules)}))
"""
    out = json.loads(_run(code, BOOK_PACKAGES, tmp_path).splitlines()[-1])
    assert out == {"shape": [16, 32, 32], "liver": True, "loaded": []}


def test_the_report_chapter_runs_without_keras(tmp_path):
    """Every code cell of the report chapter (but the Colab one) in a process where Keras,
    TensorFlow and JAX cannot be imported, on a run folder without results files."""
    notebook = json.loads((ROOT / "book" / "report.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    cells = [cell for cell in cells if "google.colab" not in cell]
    code = ("\n".join(cells).replace('profile = ""', 'profile = "smoke"')
            .replace('run_dir = "runs/latest"', 'run_dir = "run"'))
    _run(code + "\nprint('report:', chapter.results_path.is_file())",
         ("keras", "tensorflow", "jax"), tmp_path)
    assert (tmp_path / "run" / "results" / "report.json").is_file()
