"""Engine benchmark: the sweep engine against the paper's algorithm on the same sweep.

The paper's algorithm trains the runs one after the other and estimates the sharpness at every step by 20
power iterations from a random start. The engine warm-starts Lanczos from the previous step's eigenvector and
stops on the residual. Both are compared with a converged reference (Lanczos, residual ≤ 1e-6·λ). Writes
``benchmarks/results/engine.md``. Run: ``.venv/bin/python -m benchmarks.engine``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.machine import describe_machine, write_results
from helpers.nets.build import ModelSpec
from helpers.sweeps.config import SweepConfig
from helpers.core.device import default_device
from helpers.sweeps.engine import run_unit
from helpers.sweeps.problem import load_sweep_data
from helpers.analysis.phases import critical_constants

RESULTS = Path(__file__).parent / "results" / "engine.md"
WIDTHS = (128, 512)
C_VALUES = (1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0, 11.31, 16.0, 22.63, 32.0)
METHODS = {"paper: loop, 20 power iterations": dict(sharpness="power"),
           "engine: Lanczos, warm start, tol 1e-3": dict(sharpness="lanczos", lanczos_tol=1e-3),
           "engine: Lanczos, warm start, tol 1e-2": dict(sharpness="lanczos", lanczos_tol=1e-2),
           "reference: Lanczos, tol 1e-6": dict(sharpness="lanczos", lanczos_tol=1e-6)}


def timed(config: SweepConfig, data, device) -> tuple[pd.DataFrame, float, float]:
    """Run one unit; return its table, wall seconds and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    table = run_unit(config, 0, data, device).runs
    return table, time.perf_counter() - wall, time.process_time() - cpu


def constants(table: pd.DataFrame, config: SweepConfig) -> tuple:
    k = critical_constants(table.assign(depth=config.model.depth, width=config.model.width)).iloc[0]
    return (k.c_loss, k.c_sharp, k.c_max)


def main() -> None:
    device = default_device()
    base = SweepConfig(model=ModelSpec("fcn", 4, 128), n_train=5120, n_sharpness=2048, steps=10,
                       c_values=C_VALUES, seeds=(0,))
    data = load_sweep_data(base, device)
    rows = []
    for width in WIDTHS:
        runs = {}
        for name, options in METHODS.items():
            config = replace(base.with_model(width=width), **options)
            runs[name] = (config, *timed(config, data, device))
        ref_config, ref, _, _ = runs["reference: Lanczos, tol 1e-6"]
        paper_wall = runs["paper: loop, 20 power iterations"][2]
        for name, (config, table, wall, cpu) in runs.items():
            merged = table.merge(ref, on=["c", "step"], suffixes=("", "_ref")).dropna(subset=["sharpness_ref"])
            error = (merged.sharpness - merged.sharpness_ref).abs() / merged.sharpness_ref
            rows.append(dict(width=width, method=name, wall=wall, cpu=cpu, speedup=paper_wall / wall,
                             err0=abs(table.sharpness0[0] - ref.sharpness0[0]) / ref.sharpness0[0],
                             err_median=float(np.nanmedian(error)), err_max=float(np.nanmax(error)),
                             products=table.products[table.step > 0].mean(), runs=table.c.nunique(),
                             same=constants(table, config) == constants(ref, ref_config),
                             constants=constants(table, config)))
    lines = ["# Engine benchmark", "", describe_machine(device), "",
             f"One sweep: FCN depth 4, MSE, Fashion-MNIST ({base.n_train} training examples, the loss measured on all "
             f"of them), sharpness on {base.n_sharpness} examples, batch {base.batch_size}, T = {base.steps}, "
             f"c ∈ {list(C_VALUES)} scanned upward to the first divergence, one initialization. Sharpness errors "
             "are relative to the reference at the same (c, step); the first column of errors is λ^H_0's.", "",
             "| width | method | runs | wall (s) | CPU (s) | speed-up vs paper | HVPs per step | error of λ^H_0 "
             "| median error | max error | (c_loss, c_sharp, c_max) | same constants as reference |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        k = ", ".join(f"{v:g}" for v in r["constants"])
        lines.append(f"| {r['width']} | {r['method']} | {r['runs']} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                     f"{r['speedup']:.2f} | {r['products']:.1f} | {r['err0']:.1e} | {r['err_median']:.1e} | "
                     f"{r['err_max']:.1e} | ({k}) | {'yes' if r['same'] else 'no'} |")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
