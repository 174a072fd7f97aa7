"""Run the book's chapters with papermill into a run folder, then render it as a book.

``liverseg reproduce`` (and ``make book`` / ``make test``) executes every chapter of the
book's ``_toc.yml`` once, in order, with the same parameters (dataset, data folder, profile,
backend, run folder), into ``RUN/book/``; the chapters keep their trained networks in
``RUN/store`` and their numbers in ``RUN/results``. A chapter already executed with the same
parameters and the same source is skipped (``force`` runs it again); the first chapter that
raises stops the run with the cell and the error, and its partly executed notebook is kept
for inspection. The executed notebooks are then rendered by Jupyter Book without executing
them again (``RUN/_build/html``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from liverseg.errors import LiversegError, MissingExtraError, MissingFileError
from liverseg.io.atomic import atomic_write_text

DONE = "done"  # RUN/done/<chapter>.json: parameters and source hash of a finished chapter


class ChapterError(LiversegError):
    """A chapter raised: names the chapter, the cell and the error."""


@dataclasses.dataclass(frozen=True)
class Chapter:
    name: str  # e.g. "networks"
    source: Path  # the notebook in the repository


def book_root() -> Path:
    """The folder of ``_toc.yml`` in a source checkout (the repository root)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "_toc.yml").is_file():
        raise MissingFileError("no _toc.yml: `liverseg reproduce` runs from a source checkout "
                               "(git clone) of liverseg", root)
    return root


def chapters(root: str | os.PathLike | None = None) -> list[Chapter]:
    """The notebook chapters of the book's ``_toc.yml``, in order."""
    import yaml

    root = Path(root) if root else book_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = []
    for entry in toc.get("chapters", []):
        path = root / f"{entry['file']}.ipynb"
        if path.is_file():
            found.append(Chapter(path.stem, path))
    return found


def book_tool(module: str):
    """Import one of the ``book`` extra's packages, or say how to install it.

    Raises:
        MissingExtraError: the package is not installed (``pip install 'liverseg[book]'``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(f"running the book needs {module}, of the book extra: "
                                f"pip install 'liverseg[book]' ({error})") from None


def reproduce(
    out: str | os.PathLike,
    *,
    dataset: str = "synthetic",
    data_dir: str | os.PathLike | None = None,
    profile: str = "demo",
    backend: str | None = None,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    force: bool = False,
    render: bool = True,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    timeout: int | None = None,
) -> dict:
    """Execute the chapters into ``out`` and render the book; return a summary.

    Args:
        out: the run folder (created; an earlier run's finished chapters are kept).
        dataset, data_dir, profile, backend: the chapters' parameters (``backend`` default:
            ``KERAS_BACKEND`` or ``"tensorflow"``).
        only: chapter names to run (default: all); the others are rendered if already done.
        skip: chapter names not to run now (e.g. run in another process on the same ``out``:
            chapters that share no stored network may run side by side).
        force: run chapters again even when already done with these parameters.
        render: build the HTML book from the executed chapters (skipped, and said so in the
            summary, while some chapter has not run yet).
        root: the book's root folder (default: this checkout's).
        timeout: seconds a cell may run (``None``: no limit).
    Raises:
        ChapterError: a chapter raised (the message names the chapter, the cell and the error).
        ValueError: ``only`` or ``skip`` names an unknown chapter.
    """
    papermill = book_tool("papermill")
    root = Path(root) if root else book_root()
    out = Path(out).resolve()
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    found = chapters(root)
    unknown = sorted(set(only or ()).union(skip) - {c.name for c in found})
    if unknown:
        raise ValueError(f"unknown chapters {unknown}; the book has {[c.name for c in found]}")
    parameters = {"dataset": dataset, "data_dir": str(data_dir or ""), "profile": profile,
                  "backend": backend, "run_dir": str(out)}
    (out / "book").mkdir(parents=True, exist_ok=True)
    (out / DONE).mkdir(exist_ok=True)
    summary = {"run": str(out), "parameters": parameters, "chapters": {}}
    for chapter in found:
        target = out / "book" / chapter.source.name
        stamp = out / DONE / f"{chapter.name}.json"
        key = {"parameters": parameters, "source_sha1": _sha1(chapter.source)}
        if (only and chapter.name not in only) or chapter.name in skip:
            summary["chapters"][chapter.name] = "not run"
            continue
        if not force and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
            summary["chapters"][chapter.name] = "done before"
            continue
        stamp.unlink(missing_ok=True)
        tic = time.perf_counter()
        if progress:
            print(f"liverseg reproduce: {chapter.name} ({profile}, {dataset})", file=sys.stderr)
        try:  # the parameters, not the environment, decide the chapter's run
            papermill.execute_notebook(
                str(chapter.source), str(target), parameters=parameters,
                cwd=str(out / "book"), kernel_name="python3", progress_bar=progress,
                execution_timeout=timeout, log_output=False,
                # the kernel's own log lines (ipykernel 7: "running over TCP without
                # encryption", a local kernel's normal state; "KeyboardInterrupt caught" as
                # it is shut down) are noise between the chapters
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        except papermill.PapermillExecutionError as error:
            raise ChapterError(
                f"chapter {chapter.name!r} stopped at {_failed_cell(target)}: "
                f"{error.ename}: {error.evalue} (executed notebook: {target})",
                chapter.source) from None
        _hide_injected_parameters(target)
        seconds = round(time.perf_counter() - tic, 1)
        atomic_write_text(stamp, json.dumps({"key": key, "seconds": seconds}, indent=1))
        summary["chapters"][chapter.name] = {"seconds": seconds}
    missing = [c.name for c in found if _run_with(out / DONE / f"{c.name}.json") != parameters]
    if render and missing:  # e.g. --chapters on a new run folder, or with other parameters
        summary["html"] = None
        summary["not_rendered"] = ("chapters not run with these parameters yet: "
                                   + ", ".join(missing))
    elif render:
        summary["html"] = str(render_book(out, root))
    return summary


def render_book(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Render the executed chapters of ``out/book`` as a Jupyter Book in ``out/_build/html``,
    without executing them again; warnings are errors. Returns the HTML folder."""
    import yaml

    root = Path(root) if root else book_root()
    out = Path(out)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    atomic_write_text(out / "_config.yml", yaml.safe_dump(config, sort_keys=False))
    shutil.copyfile(root / "_toc.yml", out / "_toc.yml")
    for path in (root / "book").iterdir():  # the book's text, references and style
        if path.suffix in (".md", ".bib", ".png", ".svg"):
            shutil.copyfile(path, out / "book" / path.name)
    if (root / "book" / "_static").is_dir():
        shutil.copytree(root / "book" / "_static", out / "book" / "_static", dirs_exist_ok=True)
    missing = [c.name for c in chapters(root) if not (out / "book" / c.source.name).is_file()]
    if missing:
        raise MissingFileError(f"chapters not executed yet: {', '.join(missing)}", out / "book")
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", "-W", "-n",
               "--keep-going", "--path-output", str(out), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise LiversegError(f"the book did not build:\n{done.stdout[-4000:]}{done.stderr[-4000:]}",
                            out)
    return out / "_build" / "html"


def _hide_injected_parameters(executed: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the rendered chapter shows its
    own parameters cell and prints the profile and backend it ran with."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, executed)


def _failed_cell(executed: Path) -> str:
    """``"cell N (first line)"`` of the cell that raised, N counting the chapter's own cells
    (not the parameters papermill injected)."""
    import nbformat

    added = {"injected-parameters", "papermill-error-cell-tag"}  # papermill's own cells
    cells = [c for c in nbformat.read(executed, as_version=4).cells
             if not added & set(c.metadata.get("tags", []))]
    for number, cell in enumerate(cells, 1):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return f"cell {number} (`{first.strip()[:60]}`)"
    return "an unknown cell"


def _run_with(stamp: Path) -> dict | None:
    """The parameters a chapter's finished run used (``None`` if it has not finished)."""
    try:
        return json.loads(stamp.read_text())["key"]["parameters"]
    except (OSError, ValueError, KeyError):
        return None


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()
