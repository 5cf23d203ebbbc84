"""How far the shipped results move when another CPU recomputes them: the spread that the recompute tests allow.

The shipped store was computed on a 2-core AMD EPYC, the calibration on a 2-core Intel Xeon. A float32 result
depends on the order in which the kernels add, and that order depends on the instruction set they pick (AVX-512 on
the Xeon, AVX2 on the EPYC). This script recomputes what the recompute tests recompute — the cheapest shipped unit
of every chapter and the calibration's row mlp × SGD × seed 0 — once per *kernel variant*, each in a fresh process
with torch's, MKL's and oneDNN's instruction sets capped by their own environment variables (so one machine
produces the numbers that other CPUs would), and tabulates the largest difference from the shipped numbers.

Writes ``benchmarks/results/cross_machine.md``. Run: ``.venv/bin/python -m benchmarks.cross_machine`` (about
ten minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine, write_results

RESULTS = Path(__file__).parent / "results" / "cross_machine.md"

VARIANTS = {
    "native": {},
    "torch AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "MKL AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "all AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "MKL compatible": {"MKL_CBWR": "COMPATIBLE"},
}
COLUMNS = ("sharpness0", "loss0", "loss", "batch_loss", "sharpness")


def unit_differences() -> dict:
    """Per chapter: whether the constants equal the shipped ones, and the largest relative difference per column
    over the steps that did not diverge."""
    import tempfile

    from helpers.chapters.sweeps import SWEEPS
    from helpers.sweeps.engine import compute_unit
    from helpers.analysis.phases import critical_constants
    from helpers.sweeps.schema import SWEEP
    from tests.test_shipped import cheapest, shipped_only

    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        store = shipped_only(Path(scratch))
        for chapter in sorted(SWEEPS):
            config, seed = cheapest(chapter, store)
            a, b = store.load(config, seed).runs, compute_unit(config, seed, device="cpu").runs
            same_runs = list(zip(a.c, a.step)) == list(zip(b.c, b.step))
            row = dict(same_runs=same_runs)
            if same_runs:
                alive = ~a.diverged.to_numpy()
                for name in COLUMNS:
                    x, y = a[name][alive].to_numpy(float), b[name][alive].to_numpy(float)
                    both = np.isfinite(x) & np.isfinite(y)
                    row[name] = float(np.max(np.abs(y[both] - x[both]) / np.abs(x[both]))) if both.any() else 0.0
            k = [critical_constants(t.assign(**{SWEEP: "x"})).iloc[0] for t in (a, b)]
            row["constants_equal"] = all(k[0][n] == k[1][n] or (math.isnan(k[0][n]) and math.isnan(k[1][n]))
                                         for n in ("c_loss", "c_sharp", "c_max"))
            out[chapter] = row
    return out


def calibration_differences() -> dict:
    """The calibration row mlp × SGD × seed 0 recomputed: constants equal, the range test's suggestion in steps of
    its own grid, the held-out loss at each suggestion relative to the stored one."""
    import torch

    from helpers.diagnosis.calibration import SHIPPED, Protocol, diagnosed, load, ranged, task, trained

    rows, _, _ = load(SHIPPED)
    stored = rows[(rows.model == "mlp") & (rows.optimizer == "sgd") & (rows.seed == 0)].iloc[0]
    p = Protocol()
    t = task("mlp", p)
    torch.set_num_threads(1)
    fresh = diagnosed(t, p, "sgd", 0)
    low, high = p.span("sgd")
    ratio = (high / low) ** (1 / (p.range_iters - 1))
    eta = ranged(t, p, "sgd", 0)["eta_range_test"]
    out = dict(constants_equal=all(fresh[n] == stored[n] for n in ("c_loss", "c_max", "censored")),
               sharpness=abs(fresh["sharpness"] / stored.sharpness - 1),
               range_steps=abs(math.log(eta / stored.eta_range_test) / math.log(ratio)))
    for name in ("range_test", "default"):
        loss = trained(t, p, "sgd", stored[f"eta_{name}"], 0)["loss"]
        out[f"loss_{name}"] = (abs(loss / stored[f"loss_{name}"] - 1) if math.isfinite(stored[f"loss_{name}"])
                               else (0.0 if math.isnan(loss) else math.inf))
    return out


def measure() -> None:
    print(json.dumps(dict(units=unit_differences(), calibration=calibration_differences())))


def run_variant(env: dict) -> dict:
    result = subprocess.run([sys.executable, "-m", "benchmarks.cross_machine", "--measure"], env={**os.environ, **env},
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict]) -> list[str]:
    import torch

    lines = ["# Recomputed on other kernels: the spread the recompute tests allow", "",
             describe_machine(torch.device("cpu")), "",
             "Each variant is a fresh process with the instruction sets of torch (`ATEN_CPU_CAPABILITY`), MKL "
             "(`MKL_ENABLE_INSTRUCTIONS`, `MKL_CBWR`) and oneDNN (`ONEDNN_MAX_CPU_ISA`) capped as named. Shipped "
             "units: the cheapest unit of each chapter (computed on an AMD EPYC), largest relative difference over "
             "the steps that did not diverge. Calibration: the row mlp × SGD × seed 0 (computed on an Intel Xeon).",
             "", "| variant | units: constants equal | λ^H_0 | L_0, L_t, batch loss | λ^H_t | calibration: constants "
             "equal | λ^H_0 | range test (grid steps) | loss at the range test's η |", "| --- " * 9 + "|"]
    for name, r in results.items():
        units = r["units"].values()
        losses = max(max(u.get(c, math.inf) for c in ("loss0", "loss", "batch_loss")) for u in units)
        cal = r["calibration"]
        lines.append(f"| {name} | {sum(u['constants_equal'] for u in units)} of {len(units)} | "
                     f"{max(u.get('sharpness0', math.inf) for u in units):.1e} | {losses:.1e} | "
                     f"{max(u.get('sharpness', math.inf) for u in units):.1e} | "
                     f"{'yes' if cal['constants_equal'] else 'no'} | "
                     f"{cal['sharpness']:.1e} | {cal['range_steps']:.2f} | {cal['loss_range_test']:.1e} |")
    worst = max(r["calibration"]["loss_range_test"] for r in results.values())
    lines += ["", f"Largest relative change of the calibration's held-out loss: {worst:.1e}; a fresh-clone CI run on "
              "a 2-core AMD EPYC measured 6.1e-3 (0.51265 against the stored 0.51578)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", action="store_true", help="measure once in this process, print JSON")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    if args.measure:
        measure()
        return
    results = {name: run_variant(VARIANTS[name]) for name in args.variants}
    write_results(RESULTS, table(results))


if __name__ == "__main__":
    main()
