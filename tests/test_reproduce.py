"""`liverseg reproduce`: chapters run in order with papermill, skipped when done, and the first
failing chapter stops the run naming its cell."""

from __future__ import annotations

import json

import nbformat
import pytest

from liverseg.reproduce import ChapterError, chapters, reproduce

PARAMETERS = ('dataset = "synthetic"\ndata_dir = ""\nprofile = "demo"\n'
              'backend = "tensorflow"\nrun_dir = "runs"')


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def _writes(name):
    return (f"from pathlib import Path\n"
            f"Path(run_dir, '{name}.txt').write_text(profile + ' ' + dataset)")


@pytest.fixture
def book(tmp_path):
    root = tmp_path / "src"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: book/first\n  - file: book/second\n"
                                   "  - file: book/third\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    _notebook(root / "book" / "first.ipynb", _writes("first"))
    _notebook(root / "book" / "second.ipynb", "x = 1", "raise RuntimeError('boom')")
    _notebook(root / "book" / "third.ipynb", _writes("third"))
    return root


def test_chapters_follow_the_toc(book):
    assert [c.name for c in chapters(book)] == ["first", "second", "third"]


def test_a_failing_chapter_stops_the_run_and_names_its_cell(book, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ChapterError) as caught:
        reproduce(out, root=book, profile="smoke", render=False, progress=False)
    message = str(caught.value)
    assert "'second'" in message and "cell 3 (`raise RuntimeError" in message
    assert "RuntimeError: boom" in message
    assert (out / "first.txt").read_text() == "smoke synthetic"
    assert not (out / "third.txt").exists()  # nothing after the failure ran
    assert (out / "done" / "first.json").is_file() and not (out / "done" / "second.json").exists()
    executed = nbformat.read(out / "book" / "second.ipynb", as_version=4)  # kept to inspect
    assert any(o.get("ename") == "RuntimeError"
               for c in executed.cells for o in c.get("outputs", []))

    _notebook(book / "book" / "second.ipynb", _writes("second"))  # fixed
    (out / "first.txt").unlink()
    summary = reproduce(out, root=book, profile="smoke", render=False, progress=False)
    assert summary["chapters"]["first"] == "done before" and not (out / "first.txt").exists()
    assert (out / "second.txt").is_file() and (out / "third.txt").is_file()
    stamp = json.loads((out / "done" / "third.json").read_text())
    assert stamp["key"]["parameters"]["profile"] == "smoke" and stamp["seconds"] > 0

    # other parameters run a chapter again, as does force
    reproduce(out, root=book, profile="demo", only=["first"], render=False, progress=False)
    assert (out / "first.txt").read_text() == "demo synthetic"
    with pytest.raises(ValueError, match="unknown chapters"):
        reproduce(out, root=book, only=["nope"], render=False, progress=False)


def test_a_partial_run_is_not_rendered_and_says_why(book, tmp_path):
    summary = reproduce(tmp_path / "run", root=book, only=["first"], progress=False)
    assert summary["html"] is None and "second, third" in summary["not_rendered"]


def test_skipped_chapters_are_left_to_another_run_on_the_same_folder(book, tmp_path, capfd):
    _notebook(book / "book" / "second.ipynb", _writes("second"))
    out = tmp_path / "run"
    summary = reproduce(out, root=book, skip=["second"], render=False, progress=False)
    assert summary["chapters"]["second"] == "not run" and not (out / "second.txt").exists()
    assert "without encryption" not in capfd.readouterr().err  # no kernel warning per chapter
    assert (out / "first.txt").is_file() and (out / "third.txt").is_file()
    summary = reproduce(out, root=book, only=["second"], render=False, progress=False)
    assert (out / "second.txt").is_file() and summary["chapters"]["third"] == "not run"
    summary = reproduce(out, root=book, render=False, progress=False)
    assert set(summary["chapters"].values()) == {"done before"}
    with pytest.raises(ValueError, match="unknown chapters"):
        reproduce(out, root=book, skip=["nope"], render=False, progress=False)


def test_without_the_book_extra_the_book_and_the_viewer_say_how_to_install_it(book, tmp_path,
                                                                              monkeypatch):
    import importlib
    import sys

    from liverseg.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "papermill", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"liverseg\[book\]"):
        reproduce(tmp_path / "run", root=book, profile="smoke", render=False, progress=False)
    assert not (tmp_path / "run").exists()  # nothing half-made
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.delitem(sys.modules, "liverseg.viewer", raising=False)
    with pytest.raises(MissingExtraError, match="ipywidgets"):
        importlib.import_module("liverseg.viewer")
