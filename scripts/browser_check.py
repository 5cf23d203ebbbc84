"""Open every page of a built book in headless Chromium, check what only a browser shows, and save screenshots.

``python scripts/browser_check.py [_build/html] [--shots DIR]``; needs Chromium (Debian: ``apt-get install
chromium``) and Playwright's Python package (``pip install -e '.[browser]'``; its own browser download is not
used). On each page, after MathJax has typeset:

- a displayed equation wider than its column (clipped, or scrolled sideways);
- a figure shown at less than :data:`MIN_SCALE` of its pixel width (legends and ticks too small to read);
- a table wider than the text column;
- text a reader sees that was never rendered: a ``{glue}`` role, a raw ``|``-table or ``$``-math.

Full-page screenshots go to ``--shots`` (default ``_build/screenshots``), one PNG a page, for a person to look at.
Exits 1 when a page has a defect.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MIN_SCALE = 0.5  # a 12-inch figure (helpers.analysis.plots.BOOK_FIGURE_WIDTH) fills the column at 55 %
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PROBE = """(minScale) => {
  const found = [];
  const column = document.querySelector("#main-content article, #main-content") || document.body;
  const width = column.getBoundingClientRect().width;
  for (const eq of document.querySelectorAll("mjx-container[display='true']")) {
    const box = eq.getBoundingClientRect();
    if (eq.scrollWidth > eq.clientWidth + 2 || box.width > width + 2)
      found.push(`equation wider than the column (${Math.round(eq.scrollWidth)} px of ${Math.round(width)}): ` +
                 (eq.getAttribute("aria-label") || eq.textContent).slice(0, 60));
  }
  for (const img of document.querySelectorAll("#main-content img")) {
    if (img.naturalWidth > 200 && img.width / img.naturalWidth < minScale)
      found.push(`figure shown at ${Math.round(100 * img.width / img.naturalWidth)} % of its width: ` +
                 img.src.split("/").pop());
  }
  for (const table of document.querySelectorAll("#main-content table")) {
    if (table.getBoundingClientRect().width > width + 2)
      found.push(`table wider than the column (${Math.round(table.getBoundingClientRect().width)} px)`);
  }
  const text = (column.innerText || "").split("\\n");
  for (const line of text) {
    if (/\\{glue(:\\w+)?\\}`/.test(line)) found.push(`unrendered glue: ${line.slice(0, 80)}`);
    if (/^\\s*\\|.*\\|\\s*$/.test(line) && /-{3}/.test(line)) found.push(`raw table: ${line.slice(0, 80)}`);
  }
  return found;
}"""


def check(folder: Path, shots: Path) -> dict[str, list[str]]:
    """Each page's defects (pages without any left out); screenshots written to ``shots``."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    pages = [p for p in sorted(folder.glob("*.html")) if p.name not in ("genindex.html", "search.html")]
    found = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        view = browser.new_page(viewport={"width": 1280, "height": 900})
        for page in pages:
            view.goto(page.resolve().as_uri(), wait_until="load")
            view.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)",
                                   timeout=30_000)
            view.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
            view.screenshot(path=str(shots / f"{page.stem}.png"), full_page=True)
            defects = view.evaluate(PROBE, MIN_SCALE)
            if defects:
                found[page.name] = defects
        browser.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="_build/html")
    parser.add_argument("--shots", default=None, help="where the screenshots go (default: _build/screenshots)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    shots = Path(args.shots) if args.shots else folder.parent / "screenshots"
    found = check(folder, shots)
    for name, lines in found.items():
        print(f"{name}:\n  " + "\n  ".join(lines), file=sys.stderr)
    print(f"browser_check: {len(list(shots.glob('*.png')))} pages in Chromium, {len(found)} with defects; "
          f"screenshots in {shots}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
