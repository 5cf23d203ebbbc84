"""Reading the book's chapters: which files are chapters, and the defaults of their parameters cell."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
PARAMETERS_CELL = re.compile(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", re.S)


def chapters() -> list[Path]:
    """The executable chapters: MyST notebooks whose front matter names a kernel."""
    out = []
    for path in sorted(BOOK.glob("*.md")):
        text = path.read_text()
        if text.startswith("---") and "kernelspec:" in text.split("---")[1]:
            out.append(path)
    return out


def parameter_defaults(chapter: Path) -> dict:
    """The names and default values set in a chapter's parameters cell."""
    cells = PARAMETERS_CELL.findall(chapter.read_text())
    assert len(cells) == 1, f"{chapter.name}: expected one parameters cell, found {len(cells)}"
    namespace: dict = {}
    exec(cells[0], {}, namespace)
    return namespace
