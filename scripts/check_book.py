"""Fail when a built page shows something that must not reach a reader.

Run after ``jupyter-book build``: ``python scripts/check_book.py [_build/html]``. The defect classes, each reported
with the page and the offending line:

- ``stray``: an object's default repr (``<... at 0x...>``) or a Python warning;
- ``raw table``: a Markdown table left as ``|``-text instead of rendered;
- ``raw container``: a Python list, dict or array printed into prose (``[0.5, 1.0, 2.0]``, ``{'a': 1}``);
- ``long output``: a cell output longer than a screen (more than :data:`MAX_OUTPUT_LINES` lines or table rows).

Code cells' inputs and math are not checked: pipes, brackets and braces belong there.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

MAX_OUTPUT_LINES = 60
STRAY = re.compile(r" at 0x[0-9a-f]+>|\b\w*Warning\b: ")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?"
CONTAINER = re.compile(
    rf"\[\s*{NUMBER}\s*(?:,\s*{NUMBER}\s*){{2,}}\]"      # a list of three or more numbers
    r"|\[\s*'[^']*'\s*,\s*'"                            # a list of strings
    r"|\{\s*['\"][^'\"]*['\"]\s*:"                      # a dict
    r"|\b(?:array|np\.float\d+|np\.int\d+)\(")          # numpy reprs
SKIPPED = ("cell_input", "math", "highlight", "headerlink", "toctree-wrapper")
VOID = {"br", "hr", "img", "input", "link", "meta", "area", "base", "col", "embed", "source", "track", "wbr"}


class _Page(HTMLParser):
    """Collects a page's text outside code inputs and math (``prose`` lines) and each cell output's line and row
    counts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skipped, opens an output)
        self.prose: list[str] = [""]
        self.outputs: list[list] = []  # per cell output: [its text, its table rows]
        self.main = False

    def _skipping(self) -> bool:
        return any(skipped for _, skipped, _ in self.stack)

    def _in_output(self) -> bool:
        return any(output for *_, output in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "main":
            self.main = True
        if tag in VOID:
            if tag == "br":
                self.prose.append("")
            return
        skipped = tag in ("script", "style", "nav", "header", "footer", "code") or any(
            name.startswith(SKIPPED) for name in classes)
        output = "cell_output" in classes and not self._in_output()
        if output:
            self.outputs.append(["", 0])
        if tag == "tr" and self._in_output():
            self.outputs[-1][1] += 1
        if tag in ("p", "div", "li", "tr", "pre", "h1", "h2", "h3", "h4", "td", "th", "dt", "dd", "caption"):
            self.prose.append("")
        self.stack.append((tag, skipped, output))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            top, *_ = self.stack.pop()
            if top == tag:
                break
        if tag in ("p", "div", "li", "tr", "pre", "td", "th"):
            self.prose.append("")

    def handle_data(self, data: str) -> None:
        if self._in_output():
            self.outputs[-1][0] += data
        if not self.main or self._skipping() and not self._in_pre_output():
            return
        parts = data.split("\n")
        self.prose[-1] += parts[0]
        self.prose.extend(parts[1:])

    def _in_pre_output(self) -> bool:
        """Text printed by a cell (a ``<pre>`` in an output) is checked even though it is highlighted."""
        return self._in_output() and any(tag == "pre" for tag, *_ in self.stack)


def defects(html_text: str) -> list[str]:
    """Every defect of one page, a line each: ``<class>: <the offending text>``."""
    page = _Page()
    page.feed(html_text)
    lines = [line.strip() for line in page.prose if line.strip()]
    found = [f"stray: {line}" for line in lines if STRAY.search(line)]
    found += [f"raw table: {lines[i - 1] if i else ''} / {line}" for i, line in enumerate(lines)
              if TABLE_RULE.match(line)]
    found += [f"raw container: {_excerpt(line, CONTAINER)}" for line in lines if CONTAINER.search(line)]
    sizes = [(len(text.strip("\n").splitlines()), rows) for text, rows in page.outputs]
    found += [f"long output: a cell output of {lines} lines and {rows} table rows (at most {MAX_OUTPUT_LINES})"
              for lines, rows in sizes if max(lines, rows) > MAX_OUTPUT_LINES]
    return found


def _excerpt(line: str, pattern: re.Pattern, width: int = 60) -> str:
    start = pattern.search(line).start()
    return line[max(0, start - width // 2): start + width]


def main(folder: str = "_build/html") -> int:
    pages = sorted(Path(folder).glob("*.html"))
    pages = [page for page in pages if page.name not in ("genindex.html", "search.html", "py-modindex.html")]
    if not pages:
        print(f"check_book: no pages in {folder}", file=sys.stderr)
        return 1
    found = {page.name: defects(page.read_text(errors="replace")) for page in pages}
    found = {name: lines for name, lines in found.items() if lines}
    for name, lines in found.items():
        print(f"{name}:\n  " + "\n  ".join(lines), file=sys.stderr)
    print(f"check_book: {len(pages)} pages, {len(found)} with defects "
          "(stray output, raw tables, raw containers, long outputs)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
