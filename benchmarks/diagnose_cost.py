"""What a diagnosis costs against the learning-rate range test, on the models of ``07_choosing_a_learning_rate`` at
its defaults: ``diagnose(quick=True)`` (one seed, λ^H on at most 512 examples, no c_sharp), the full ``diagnose`` as
the chapter runs it, and ``torch-lr-finder``'s range test; and the same quick diagnosis and range test with Adam (the
diagnosis on the chapter's grid for the optimizers' own edges). Wall time, median of ``--repeats`` runs.

Writes ``benchmarks/results/diagnose_cost.md``. Run: ``.venv/bin/python -m benchmarks.diagnose_cost``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.machine import describe_machine, write_results
from helpers.chapters.parameters import chapter_parameters
from helpers.sweeps.config import c_grid
from helpers.data.images import load_dataset
from helpers.core.device import default_device
from helpers.diagnosis.diagnose import diagnose
from helpers.diagnosis.tasks import Task, adam, label_loss, next_token_loss, range_test
from helpers.diagnosis.zoo import CharTransformer, SmallCNN
from helpers.data.text import char_sequences, load_corpus

RESULTS = Path(__file__).parent / "results" / "diagnose_cost.md"


def models(p) -> dict:
    """The chapter's two models with their training data and loss."""
    fashion = load_dataset("fashion-mnist", size=p.cnn_n_train, seed=0)
    text = char_sequences(load_corpus(), p.text_length, p.text_n_train, seed=0)
    none = (fashion.x[:0], fashion.labels[:0])   # no held-out data: the range test and the diagnosis need none
    return {"cnn": Task(lambda: SmallCNN(p.cnn_channels), fashion.x, fashion.labels, none, label_loss),
            "transformer": Task(lambda: CharTransformer(len(text.vocab), p.text_length, p.text_d_model,
                                                        layers=p.text_layers), text.x, text.y, none, next_token_loss)}


def seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name: str, t: Task, p, grid, repeats: int) -> str:
    """One model's table row: the range test, the quick diagnosis and the chapter's diagnosis."""
    build, x, y, loss = t.build, t.x, t.y, t.loss
    common = dict(batch_size=p.batch_size, steps=p.diagnose_steps, c_values=grid, progress=False)
    range_s = seconds(lambda: range_test(t, batch_size=p.batch_size, seed=0, num_iter=p.range_iters),
                      repeats)
    quick_s = seconds(lambda: diagnose(build, x[: p.n_diagnose], y[: p.n_diagnose], loss, quick=True, **common),
                      repeats)
    adam_range_s = seconds(lambda: range_test(t, batch_size=p.batch_size, seed=0, start_lr=1e-6,
                                              end_lr=1.0, num_iter=p.range_iters, optimizer=adam), repeats)
    edge_grid = c_grid(p.edge_c_x[1], p.edge_c_x[2], p.edge_c_x[0])
    adam_s = seconds(lambda: diagnose(build, x[: p.n_diagnose], y[: p.n_diagnose], loss, quick=True, optimizer=adam,
                                      **{**common, "c_values": edge_grid}), repeats)
    full_s = seconds(lambda: diagnose(build, x[: p.n_diagnose], y[: p.n_diagnose], loss, seeds=p.diagnose_seeds,
                                      n_sharpness=p.n_sharpness, **common), 1)
    return (f"| {name} | {range_s:.2f} | {quick_s:.2f} | {quick_s / range_s:.1f}× | {full_s:.1f} | "
            f"{full_s / range_s:.0f}× | {adam_range_s:.2f} | {adam_s:.2f} | {adam_s / adam_range_s:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    p = chapter_parameters("07_choosing_a_learning_rate")
    grid = c_grid(p.c_x_max, p.c_x_step, p.c_x_min)
    lines = ["# Diagnosis against the range test", "", describe_machine(default_device()), "",
             "The models and data of `07_choosing_a_learning_rate` at its defaults; median wall time of "
             f"{args.repeats} runs.", "",
             "| model | range test (s) | diagnose quick=True (s) | ratio | diagnose as in 07 (s) | ratio | "
             "Adam: range test (s) | Adam: diagnose quick=True (s) | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, t in models(p).items():
        lines.append(row(name, t, p, grid, args.repeats))
        print(lines[-1], flush=True)
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
