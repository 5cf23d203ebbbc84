"""The diagnosis's default call on models beyond ``07``'s two: the eight architectures of :mod:`helpers.diagnosis.zoo`,
and 07's CNN and Transformer beside them, on the calibration's data (Fashion-MNIST, the fortunes text;
:class:`helpers.diagnosis.calibration.Protocol`). Per model: whether the default grid
(:func:`helpers.diagnosis.diagnose.bracketing`) found both edges for every initialization, and the wall time of the
quick and the full diagnosis against ``torch-lr-finder``'s range test, plain SGD, one run each; the median and range of
the ratios over the zoo.

Writes ``benchmarks/results/diagnose_zoo.md``. Run: ``.venv/bin/python -m benchmarks.diagnose_zoo``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.machine import describe_machine, write_results
from helpers.diagnosis.calibration import Protocol, task
from helpers.chapters.parameters import chapter_parameters
from helpers.core.device import default_device
from helpers.diagnosis.diagnose import diagnose
from helpers.diagnosis.tasks import Task, range_test
from helpers.diagnosis.zoo import ZOO, CharTransformer, SmallCNN

RESULTS = Path(__file__).parent / "results" / "diagnose_zoo.md"


def edges_found(report) -> str:
    """Both edges, or which one the default grid did not find."""
    missing = []
    if report.censored.any():
        missing.append(f"no divergence for {int(report.censored.sum())} seed(s)")
    never_rose = report.per_seed["c_loss_filled"].to_numpy(bool)
    if never_rose.any():
        missing.append(f"no loss rise for {int(never_rose.sum())} seed(s)")
    return "both" if not missing else "; ".join(missing)


CHAPTER_MODELS = ("07-cnn", "07-transformer")
"""``07``'s two models, on the calibration's data sizes."""


def chapter_task(name: str, p: Protocol) -> Task:
    """``07``'s CNN (on the image models' data) or character Transformer (on the text models'), at 07's sizes."""
    q = chapter_parameters("07_choosing_a_learning_rate")
    if name == "07-cnn":
        return replace(task("mlp", p), build=lambda: SmallCNN(q.cnn_channels))
    t = task("transformer", p)
    vocab = int(max(t.x.max(), t.y.max())) + 1
    return replace(t, build=lambda: CharTransformer(vocab, p.text_length, q.text_d_model, layers=q.text_layers))


def measure(name: str, p: Protocol, kinds: tuple[str, ...] = ("quick", "full")) -> dict:
    t = chapter_task(name, p) if name in CHAPTER_MODELS else task(name, p)
    x, y = t.x[: p.n_diagnose], t.y[: p.n_diagnose]
    out = {"model": name}
    start = time.perf_counter()
    range_test(t, batch_size=p.batch_size, seed=0, num_iter=p.range_iters)
    out["range"] = time.perf_counter() - start
    for kind, quick in (("quick", True), ("full", False)):
        if kind not in kinds:
            continue
        start = time.perf_counter()
        report = diagnose(t.build, x, y, t.loss, batch_size=p.batch_size, quick=quick, progress=False)
        out[kind], out[f"{kind}_edges"] = time.perf_counter() - start, edges_found(report)
        out[f"{kind}_grid"] = f"{report.c_values[0]:.3g} … {report.c_values[-1]:.3g}"
    return out


def table(rows: list[dict], p: Protocol) -> list[str]:
    lines = ["# The default diagnosis on the zoo, against the range test", "", describe_machine(default_device()), "",
             "Each model of `helpers.diagnosis.zoo` (and 07's two) on the calibration's data: "
             f"the diagnosis on {p.n_diagnose} "
             f"examples (batch {p.batch_size}, default grid, plain SGD; quick: one seed, λ^H on ≤ 512, no c_sharp; "
             f"full: seeds 0–2 with c_sharp), the range test on {p.n_train} examples ({p.range_iters} steps). One "
             "run each, one thread.", "",
             "| model | range test (s) | quick (s) | ratio | edges found (quick) | grid (quick) | full (s) | ratio | "
             "edges found (full) |", "| --- " * 9 + "|"]
    for r in rows:
        cells = [f"{r['model']}", f"{r['range']:.2f}"]
        for kind in ("quick", "full"):
            cells += ([f"{r[kind]:.1f}", f"{r[kind] / r['range']:.1f}×", r[f"{kind}_edges"]] if kind in r else
                      ["not run", "—", "—"])
            if kind == "quick":
                cells.append(r.get("quick_grid", "—"))
        lines.append("| " + " | ".join(cells) + " |")
    for kind in ("quick", "full"):
        ratios = [r[kind] / r["range"] for r in rows if r["model"] in ZOO and kind in r]
        if ratios:
            lines.append(f"\n{kind}: median {statistics.median(ratios):.1f}× the range test "
                         f"({min(ratios):.1f}–{max(ratios):.1f}×) over {len(ratios)} models of the zoo.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=[*ZOO, *CHAPTER_MODELS])
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table goes")
    parser.add_argument("--kinds", nargs="*", default=["quick", "full"], choices=["quick", "full"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    p = Protocol()
    rows = []
    for name in args.models:
        rows.append(measure(name, p, tuple(args.kinds)))
        print(rows[-1], flush=True)
        write_results(args.out, table(rows, p))   # after each model: a long run keeps what it measured


if __name__ == "__main__":
    main()
