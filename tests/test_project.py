"""The project's own contract: one list of pins, a table of contents of real pages, no import side effects."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers.core import device as device_module
from tests.chapters import chapters, parameters_cell_values

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_single_list_of_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements.txt" in pip_section
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins


def test_toc_lists_only_pages_that_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in [toc] + toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    assert files
    for name in files:
        assert any((ROOT / "book" / f"{name}{ext}").exists() for ext in (".md", ".ipynb", ".py")), name


def test_every_chapter_has_one_parameters_cell_and_imports_from_helpers():
    assert chapters()
    for path in chapters():
        assert parameters_cell_values(path)
        assert "from helpers." in path.read_text() and "import *" not in path.read_text()


def test_importing_helpers_changes_no_global_state():
    code = ("import torch; s = torch.random.get_rng_state(); d = torch.get_default_dtype();"
            "import helpers, helpers.data.images, helpers.nets.models, helpers.nets.build, helpers.nets.losses,"
            " helpers.curvature.operators;"
            "assert torch.equal(s, torch.random.get_rng_state()) and d == torch.get_default_dtype()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_is_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_module.default_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_module.default_device().type == "cpu"
    assert device_module.resolve_device("cpu") == torch.device("cpu")


def test_seeds_must_be_integers():
    with pytest.raises(TypeError, match="seed must be an int"):
        device_module.generator(1.5)
    assert torch.equal(torch.randn(3, generator=device_module.generator(4)),
                       torch.randn(3, generator=device_module.generator(4)))


def test_no_source_file_names_a_device_by_hand():
    for path in helpers_files() + list((ROOT / "book").glob("*.md")):
        assert ".cuda()" not in path.read_text(), path


def helpers_files() -> list[Path]:
    """Every module of ``helpers``, its subpackages included."""
    return sorted((ROOT / "helpers").rglob("*.py"))


def module_name(path: Path) -> str:
    """``helpers/sweeps/engine.py`` → ``helpers.sweeps.engine``; a package's ``__init__.py`` → the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def helpers_imports() -> dict[str, set[str]]:
    """Module → the ``helpers`` modules it imports (anywhere in the file, function-level imports included)."""
    graph = {}
    for path in helpers_files():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
                found.add(node.module if node.module != "helpers" else "helpers.__init__")
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("helpers.")}
        graph[module_name(path)] = found - {module_name(path)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in a directed graph as a list of nodes, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_helpers_has_no_import_cycle():
    graph = helpers_imports()
    assert "helpers.sweeps.backends" in graph["helpers.sweeps.compute"]
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


LAYERS = (("core",), ("rules",), ("data",), ("nets",), ("curvature",), ("sweeps",), ("analysis",),
          ("chapters", "diagnosis"))
"""The floors of ``helpers``, bottom first: a module imports from its own subpackage or from a lower floor only;
the book (``chapters``) and the diagnosis tool share the top floor and do not import each other."""


def floor(module: str) -> tuple[int, str]:
    """A ``helpers`` module's floor and wing: ``helpers.sweeps.engine`` → (5, "sweeps"). The package's ``__init__``
    (only ``__version__``) sits below every floor, ``__main__`` above."""
    part = module.split(".")[1]
    if part == "__init__":
        return -1, part
    if part == "__main__":
        return len(LAYERS), part
    return next(i for i, names in enumerate(LAYERS) if part in names), part


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import in ``graph`` that goes to a higher floor or to the other wing of the same floor."""
    wrong = []
    for module, imported in sorted(graph.items()):
        (level, wing) = floor(module)
        for other in sorted(imported):
            other_level, other_wing = floor(other)
            if other_level > level or (other_level == level and other_wing != wing):
                wrong.append(f"{module} → {other}")
    return wrong


def test_the_layer_check_finds_an_upward_import():
    assert upward_imports({"helpers.nets.uv": {"helpers.analysis.phases"}}) == \
        ["helpers.nets.uv → helpers.analysis.phases"]
    assert upward_imports({"helpers.chapters.chapter": {"helpers.diagnosis.diagnose"}})
    assert not upward_imports({"helpers.sweeps.engine": {"helpers.rules", "helpers.sweeps.problem",
                                                         "helpers.__init__"}})


def test_helpers_is_layered_and_every_module_lives_on_a_floor():
    graph = helpers_imports()
    assert sorted(p.name for p in (ROOT / "helpers").glob("*.py")) == ["__init__.py", "__main__.py", "rules.py"]
    assert {floor(m)[1] for m in graph} == {name for names in LAYERS for name in names} | {"__init__", "__main__"}
    assert not upward_imports(graph), upward_imports(graph)


def test_the_repository_is_found_from_the_package_whatever_a_module_s_depth():
    from helpers.core.paths import REPOSITORY
    from helpers.diagnosis.calibration import SHIPPED
    from helpers.sweeps.store import shipped_root

    assert (REPOSITORY / "pyproject.toml").is_file() and (REPOSITORY / "helpers" / "rules.py").is_file()
    assert SHIPPED.is_dir() and any(SHIPPED.glob("*.json"))
    assert len(list(shipped_root().glob("fcn-*"))) > 100


def test_models_validate_against_the_registry_at_construction():
    from helpers.nets.build import REGISTRY, ModelSpec

    with pytest.raises(ValueError, match=r"arch='myrtle' has depths \[5, 7, 10\], got depth=4"):
        ModelSpec("myrtle", depth=4)
    with pytest.raises(ValueError, match="parameterizations"):
        ModelSpec("resnet", depth=18, parameterization="ntp")
    assert set(REGISTRY) == {"fcn", "myrtle", "resnet", "uv"}


def test_setup_stops_within_seconds_with_the_fix_when_the_data_is_missing(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH without apt-get: the package cannot be installed from here
    bin_dir.mkdir()
    for tool in ("ls", "id", "dirname", "cat", "python3", "bash"):
        (bin_dir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "fortunes").write_text("A fortune.\n%\n")
    env = {"PATH": str(bin_dir), "EARLY_DYNAMICS_DATA": str(tmp_path / "data"),
           "FASHION_MNIST_SYSTEM_DIR": str(tmp_path / "none"), "EARLY_DYNAMICS_TEXT": str(tmp_path / "text")}
    start = time.perf_counter()
    run = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert time.perf_counter() - start < 30
    assert run.returncode == 1
    assert "To fix, run:  sudo apt-get install dataset-fashion-mnist" in run.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("folder", ["empty", "fortunes-min only"])
def test_setup_stops_with_the_fix_when_the_text_corpus_is_missing(tmp_path, folder):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ls", "id", "dirname", "cat", "python3", "bash"):
        (bin_dir / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    (tmp_path / "text").mkdir()
    if folder == "empty":
        env = {"PATH": str(bin_dir), "EARLY_DYNAMICS_TEXT": str(tmp_path / "text")}
    else:  # the package's folder holding only what fortunes-min puts there: not the book's corpus
        for name in ("fortunes", "literature", "riddles"):
            (tmp_path / "text" / name).write_text("A fortune.\n%\n")
        env = {"PATH": str(bin_dir), "FORTUNES_SYSTEM_DIR": str(tmp_path / "text")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_data.sh")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert run.returncode == 1
    assert "To fix, run:  sudo apt-get install fortunes" in run.stderr


def test_ruff_finds_nothing():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("where", ["data root", "system folder"])
def test_the_data_check_passes_when_either_place_has_the_files(tmp_path, where):
    folder = tmp_path / ("data/FashionMNIST/raw" if where == "data root" else "system")
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "fortunes").write_text("A fortune.\n%\n")
    env = {**os.environ, "EARLY_DYNAMICS_DATA": str(tmp_path / "data"),
           "FASHION_MNIST_SYSTEM_DIR": str(tmp_path / "system"), "EARLY_DYNAMICS_TEXT": str(tmp_path / "text")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_data.sh")], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr


def test_every_bibliography_key_is_defined_once():
    import re

    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M)
    assert keys and len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def labels_and_references(text: str) -> tuple[set[str], set[str]]:
    """The figure and equation labels a chapter defines and the ones its prose refers to."""
    labels = set(re.findall(r"^\s*name: (fig-[\w-]+)", text, flags=re.M))
    labels |= set(re.findall(r"^\$\$\s*\((eq-[\w-]+)\)", text, flags=re.M))
    return labels, set(re.findall(r"\{(?:numref|eq|ref)\}`([\w-]+)`", text))


def test_the_label_check_finds_an_unreferenced_figure():
    text = "```{code-cell}\n---\nmystnb:\n  figure:\n    name: fig-a\n---\n```\n$$\nx\n$$ (eq-b)\nSee {eq}`eq-b`."
    labels, references = labels_and_references(text)
    assert labels - references == {"fig-a"}


def test_every_figure_and_equation_is_referenced_and_every_reference_defined():
    for page in sorted((ROOT / "book").glob("*.md")):
        labels, references = labels_and_references(page.read_text())
        assert labels <= references, f"{page.name}: never referenced: {sorted(labels - references)}"
        assert references <= labels, f"{page.name}: referenced but not defined: {sorted(references - labels)}"


def test_every_chapter_that_reproduces_the_study_cites_it():
    for page in sorted((ROOT / "book").glob("0*.md")):
        text = page.read_text()
        if "**Reproduces**" in text:
            assert "{cite}`kalra2023phase`" in text, page.name
    bib = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M))
    cited = {key for page in (ROOT / "book").glob("*.md")
             for keys in re.findall(r"\{cite\}`([^`]+)`", page.read_text()) for key in keys.split(",")}
    assert cited <= bib, sorted(cited - bib)


def test_a_stray_repr_in_a_notebook_cell_fails_under_nbval_unless_a_semicolon_hides_it(tmp_path):
    """The root conftest.py applies to notebooks in book/ (nbval's items), not only to tests/."""
    import nbformat

    (tmp_path / "book").mkdir()
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    cells = [nbformat.v4.new_code_cell("object()"), nbformat.v4.new_code_cell("object();"),
             nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "book" / "x.ipynb")
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:xdist", "-p", "no:cacheprovider",
                          "-rA", "book"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "FAILED book/x.ipynb::Cell 0" in run.stdout, run.stdout
    assert "PASSED book/x.ipynb::Cell 1" in run.stdout and "PASSED book/x.ipynb::Cell 2" in run.stdout, run.stdout
    assert "output that must not reach the book" in run.stdout


def test_no_function_in_helpers_is_longer_than_60_lines():
    long = []
    for path in helpers_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{module_name(path)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_no_module_in_helpers_is_longer_than_250_lines():
    long = [f"{module_name(p)} ({n} lines)" for p in helpers_files() if (n := len(p.read_text().splitlines())) > 250]
    assert not long, long


def test_only_the_public_diagnose_takes_more_than_8_parameters():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT / "helpers"), "--select", "PLR0913",
                          "--config", "lint.pylint.max-args = 8", "--output-format", "concise"],
                         capture_output=True, text=True)
    found = [line for line in run.stdout.splitlines() if "PLR0913" in line]
    assert len(found) == 1 and "helpers/diagnosis/diagnose.py" in found[0], run.stdout
    assert "def diagnose(" in (ROOT / "helpers/diagnosis/diagnose.py").read_text().splitlines()[
        int(found[0].split(":")[1]) - 1]


def test_the_study_s_divergence_threshold_is_written_once():
    literal = [f"{module_name(p)}:{i}" for p in helpers_files() if p.name != "rules.py"
               for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"=\s*1e5\b", line)]
    assert not literal, literal


def test_no_column_list_of_the_sweep_parameters_is_written_by_hand():
    # the parameter columns and the sweep key come from the configuration dataclasses (helpers/sweeps/schema.py) only
    for path in helpers_files():
        text = path.read_text()
        assert "MODEL_KEYS" not in text and ("PARAMETER_COLUMNS = {" not in text), path.name


def test_pip_install_declares_every_package_that_helpers_imports():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in project["dependencies"]}
    declared |= {re.split(r"[<>=!\[ ]", d)[0].lower() for group in project["optional-dependencies"].values()
                 for d in group}
    distribution = {"yaml": "pyyaml", "torch_lr_finder": "torch-lr-finder", "myst_nb": "jupyter-book",
                    "IPython": "ipython"}
    imported = set()
    for path in (ROOT / "helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "helpers"}
    missing = {name for name in third_party if distribution.get(name, name) not in declared}
    assert not missing, f"helpers imports {sorted(missing)}, which pyproject.toml does not declare"


def test_chapters_glue_only_through_chapter():
    for page in sorted((ROOT / "book").glob("*.md")):
        text = page.read_text()
        assert "myst_nb" not in text and not re.search(r"^\s*glue\(", text, flags=re.M), page.name


def test_figures_are_drawn_at_a_size_the_book_shows_readably():
    """No figure wider than the book's column takes at readable type, and no text size set below the book style's
    (explicit sizes in points under 10 were what made legends unreadable in the browser)."""
    from helpers.analysis.plots import BOOK_FIGURE_WIDTH, BOOK_STYLE

    sources = sorted(ROOT.glob("book/*.md")) + sorted((ROOT / "helpers").rglob("*.py"))
    wide, small = [], []
    for path in sources:
        text = path.read_text()
        wide += [f"{path.name}: {w}" for w in re.findall(r"figsize=\((\d+(?:\.\d+)?)", text)
                 if float(w) > BOOK_FIGURE_WIDTH]
        small += [f"{path.name}: {s}" for s in re.findall(r"(?:fontsize|labelsize)=(\d+(?:\.\d+)?)", text)
                  if float(s) < min(BOOK_STYLE.values())]
    assert not wide, f"figures wider than {BOOK_FIGURE_WIDTH} in: {wide}"
    assert not small, f"text smaller than the book style's: {small}"


def test_the_version_is_one_number_in_the_package_the_book_and_the_citation():
    import helpers

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert config["sphinx"]["config"]["version"] == config["sphinx"]["config"]["release"] == helpers.__version__
    assert f"helpers {helpers.__version__} " in config["html"]["extra_footer"]
    assert citation["version"] == helpers.__version__
    assert f"## {helpers.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_the_api_page_documents_every_module_of_helpers():
    import pkgutil

    import helpers

    listed = set(re.findall(r"^\.\. automodule:: (\S+)$", (ROOT / "book" / "api.md").read_text(), re.M))
    modules = {m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers.")
               if not m.ispkg and not m.name.endswith("__main__")}
    assert modules <= listed, f"not on book/api.md: {sorted(modules - listed)}"
    assert listed <= modules | {"helpers.rules"}, f"not modules: {sorted(listed - modules)}"
