"""Reading the book's chapters: which files are chapters, their generated notebooks, and outputs that must not be
in a built page."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
STRAY = re.compile(r" at 0x[0-9a-f]+>|\b\w*Warning\b: ")


def executable_pages() -> list[Path]:
    """The executable pages: MyST notebooks whose front matter names a kernel (the chapters and the status page)."""
    out = []
    for path in sorted(BOOK.glob("*.md")):
        text = path.read_text()
        if text.startswith("---") and "kernelspec:" in text.split("---")[1]:
            out.append(path)
    return out


def chapters() -> list[Path]:
    """The chapters: the executable pages that have parameters (``helpers.chapters.parameters.DEFAULTS``, the one
    list)."""
    from helpers.chapters.parameters import DEFAULTS

    return [BOOK / f"{name}.md" for name in DEFAULTS]


def notebook_cells(chapter: Path) -> list[dict]:
    """The cells of a chapter's generated ``.ipynb`` (made from the text file by jupytext in setup)."""
    notebook = chapter.with_suffix(".ipynb")
    assert notebook.exists(), "run scripts/setup.sh to generate the chapters' notebooks"
    return json.loads(notebook.read_text())["cells"]


def parameters_cell_values(chapter: Path) -> dict:
    """The names and values the chapter's tagged ``parameters`` cell sets (it is executed on its own)."""
    cells = [c for c in notebook_cells(chapter) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{chapter.name}: expected one parameters cell, found {len(cells)}"
    namespace: dict = {}
    exec("".join(cells[0]["source"]), {}, namespace)
    return namespace


def output_text(output: dict) -> str:
    """The text a cell output shows: a stream's text, or the plain-text and HTML forms of a result."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return "".join(text) if isinstance(text, list) else text
    data = output.get("data", {})
    parts = [data.get(kind, "") for kind in ("text/plain", "text/html", "text/markdown")]
    return "\n".join("".join(p) if isinstance(p, list) else p for p in parts)


def stray_outputs(outputs: list[dict]) -> list[str]:
    """Outputs that must not reach a page: an object's default repr (``<… at 0x…>``) or a Python warning."""
    return [line for output in outputs for line in output_text(output).splitlines() if STRAY.search(line)]
