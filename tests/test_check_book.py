"""scripts/check_book.py: each defect class is caught on a small page built like MyST-NB's, and a clean page passes
(code inputs and math, where pipes, brackets and braces belong, are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_book", ROOT / "scripts" / "check_book.py")
check_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_book)


def page(body: str) -> str:
    return f"""<html><head><script>var x = {{'a': [1, 2, 3]}};</script></head><body>
<nav>menu | item</nav><main id="main-content" class="bd-main">{body}</main><footer>[1, 2, 3]</footer></body></html>"""


def cell(source: str, output: str) -> str:
    return f"""<div class="cell docutils container"><div class="cell_input docutils container">
<div class="highlight-ipython3 notranslate"><div class="highlight"><pre>{source}</pre></div></div></div>
<div class="cell_output docutils container">{output}</div></div>"""


def stream(text: str) -> str:
    return (f'<div class="output stream highlight-myst-ansi notranslate"><div class="highlight"><pre>{text}</pre>'
            "</div></div>")


CLEAN = page(
    "<h1>A chapter</h1><p>The loss rises for $c &gt; 2$ in 12 of 12 networks (Table 1).</p>"
    '<span class="math notranslate nohighlight">\\(\\{x : |x| \\le 1\\}, [0, 1, 2]\\)</span>'
    + cell("t = {'a': [1.0, 2.0, 3.0]}\nprint(t | other)", stream("largest difference: 1.2e-07"))
    + "<table><tr><td>c_loss</td><td>2.30</td></tr></table><p>Widths 64, 128 and 256; the interval [0, 1].</p>")


def test_a_clean_page_passes():
    assert check_book.defects(CLEAN) == []


@pytest.mark.parametrize("body, kind", [
    ("<p>| claim | verdict |</p><p>|---|---|</p><p>| c_loss | reproduced |</p>", "raw table"),
    (cell("show()", stream("| claim | verdict |\n|:---|---:|\n| a | b |")), "raw table"),
    ("<p>The widths were [64.0, 128.0, 256.0] here.</p>", "raw container"),
    ("<p>Constants: {'c_loss': 2.3, 'c_max': 8.1}.</p>", "raw container"),
    ("<li>networks ['d2 w64', 'd4 w128']</li>", "raw container"),
    (cell("print(x)", stream("c: [1.0, 1.9, 2.1, 3.0, 3.9]")), "raw container"),
    ("<p>the mean is np.float64(2.3)</p>", "raw container"),
    (cell("print(t)", stream("\n".join(f"{i} 2.30" for i in range(61)))), "long output"),
    (cell("t", "<table>" + "<tr><td>1</td></tr>" * 61 + "</table>"), "long output"),
    (cell("x", stream("&lt;object object at 0x7f3a2c&gt;")), "stray"),
    (cell("x", stream("UserWarning: something")), "stray"),
])
def test_each_defect_class_is_caught(body, kind):
    found = check_book.defects(page(body))
    assert found and all(line.startswith(kind) for line in found), found


def test_an_output_of_a_screen_passes():
    body = cell("print(t)", stream("\n".join(f"{i} 2.30" for i in range(check_book.MAX_OUTPUT_LINES - 1))))
    assert check_book.defects(page(body)) == []


def test_main_fails_on_a_folder_with_a_defective_page(tmp_path, capsys):
    (tmp_path / "good.html").write_text(CLEAN)
    assert check_book.main(str(tmp_path)) == 0
    (tmp_path / "bad.html").write_text(page("<p>[1.0, 2.0, 3.0]</p>"))
    assert check_book.main(str(tmp_path)) == 1
    assert "bad.html" in capsys.readouterr().err
    assert check_book.main(str(tmp_path / "none")) == 1
