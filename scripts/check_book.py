"""Fail when a built page shows output that must not reach a reader: an object's default repr or a Python warning.

Run after ``jupyter-book build``: ``python scripts/check_book.py [_build/html]``.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

STRAY = re.compile(r" at 0x[0-9a-f]+>|\b\w*Warning\b: ")


def stray_lines(page: Path) -> list[str]:
    """The lines of a page's text (tags removed, entities decoded) that hold a stray repr or warning."""
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(errors="replace")))
    return [line.strip() for line in text.splitlines() if STRAY.search(line)]


def main(folder: str = "_build/html") -> int:
    pages = sorted(Path(folder).glob("*.html"))
    if not pages:
        print(f"check_book: no pages in {folder}", file=sys.stderr)
        return 1
    found = {page.name: stray_lines(page) for page in pages}
    found = {name: lines for name, lines in found.items() if lines}
    for name, lines in found.items():
        print(f"{name}:\n  " + "\n  ".join(lines), file=sys.stderr)
    print(f"check_book: {len(pages)} pages, {len(found)} with stray output")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
