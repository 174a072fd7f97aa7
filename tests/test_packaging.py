"""The install files agree with each other and the front door is wired up."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["book"] + extras["dev"]
    # tensorflow vs tensorflow-cpu is a platform marker choice; conda lists the CPU build.
    return {_name(r): r.split(";")[0].strip() for r in requirements if "platform_machine != " not in r}


def _conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    return {_name(r): r.strip() for r in pip if not r.startswith("-e")}


def test_the_core_install_leaves_the_book_to_its_extra():
    """``pip install liverseg`` trains, segments and evaluates; the book's tools are the
    ``book`` extra, which ``make`` and environment.yml install."""
    core = {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
            ["dependencies"]}
    assert not core & {"papermill", "jupyter", "jupyter-book", "ipywidgets"}, core
    assert '.[book,dev]"' in (ROOT / "Makefile").read_text()
    assert "-e .[book,dev]" in (ROOT / "environment.yml").read_text()


def test_environment_yml_lists_the_same_packages_and_pins_as_pyproject():
    pyproject, conda = _pyproject_requirements(), _conda_requirements()
    assert pyproject.keys() == conda.keys(), pyproject.keys() ^ conda.keys()
    for name, requirement in pyproject.items():
        assert requirement.replace(" ", "") == conda[name].replace(" ", ""), name


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme


def test_every_chapter_in_the_toc_exists_and_notebooks_have_no_outputs():
    import json

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    for stem in files:
        matches = list(ROOT.glob(stem + ".*"))
        assert matches, f"{stem} in _toc.yml has no file"
    for notebook in (ROOT / "book").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, notebook


def test_colab_buttons_and_install_cells_name_the_same_repository():
    import json

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] == url
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for entry in toc["chapters"]:
        path = ROOT / f"{entry['file']}.ipynb"
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        first = "".join(code[0]["source"])
        assert "google.colab" in first and f"git+{url}@" in first, path.name
        assert "remove-cell" in code[0]["metadata"].get("tags", []), path.name
        later = "".join("".join(c["source"]) for c in code[1:])
        assert "from liverseg" not in first and "import liverseg" not in first
        assert "liverseg" in later  # the install comes before the chapter's first import of it


def test_directive_fences_are_valid_myst():
    """A backtick in a fence's info string (``{admonition} A `title` ``) ends the fence in
    CommonMark: the box is rendered as plain text, with no warning from the book build."""
    import json

    pages = [(md, md.read_text().splitlines()) for md in (ROOT / "book").glob("*.md")]
    for notebook in (ROOT / "book").glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        pages += [(notebook, "".join(c["source"]).splitlines())
                  for c in cells if c["cell_type"] == "markdown"]
    bad = [(str(page.name), line) for page, lines in pages for line in lines
           if line.startswith("```{") and "`" in line[3:]]
    assert not bad, bad
