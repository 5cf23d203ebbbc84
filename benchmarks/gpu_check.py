"""The CUDA path of the engine on paper-scale settings, against the CPU results that ship in ``store/``.

Three parts, each skipped (and said so) once the time budget is spent:

1. 03's widest FCNs at the study's settings (depth 2, widths 512 and 2048; c = 2^(0.1k), λ^H on 2,048 examples,
   runs stacked 16 at a time as the GPU path does): every constant against the shipped unit computed on a CPU, and
   the wall time of each against the CPU's recorded one;
2. a Myrtle-5 CNN unit at width 64 (the study's CNN width; no CPU counterpart) and a depth-2 width-4096 FCN: time
   and constants;
3. one unit at stack 1 against stack 16 on the GPU: constants identical (the claim of ``tests/test_stack.py``).

Writes a table naming the device to ``benchmarks/results/gpu_check.md`` (``--dry-run``: seconds-sized settings on
whatever device there is, into a scratch file). Run through ``bash scripts/gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from benchmarks.machine import describe_machine, write_results
from helpers.nets.build import ModelSpec
from helpers.chapters.parameters import chapter_parameters
from helpers.chapters.sweeps import chapter_sweeps, unique_configs
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.core.device import default_device
from helpers.sweeps.engine import compute_unit
from helpers.analysis.phases import critical_constants
from helpers.sweeps.schema import SWEEP
from helpers.sweeps.store import ResultsStore

RESULTS = Path(__file__).parent / "results" / "gpu_check.md"
NAMES = ("c_loss", "c_sharp", "c_max")


def constants(runs) -> tuple[float, ...]:
    row = critical_constants(runs.assign(**{SWEEP: "x"})).iloc[0]
    return tuple(float(row[n]) for n in NAMES)


def same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def shown(k: tuple[float, ...]) -> str:
    return " / ".join("—" if math.isnan(v) else f"{v:.3g}" for v in k)


def shipped_fcns(dry_run: bool) -> list[tuple[SweepConfig, int]]:
    """(configuration, seed) of part 1: 03's depth-2 FCNs at widths 512 and 2048, three seeds each."""
    if dry_run:
        tiny = SweepConfig(model=ModelSpec("fcn", 2, 16), n_train=256, n_sharpness=64, batch_size=64, steps=3,
                           c_values=c_grid(4.0, 1.0))
        return [(tiny, 0)]
    configs = unique_configs(chapter_sweeps(chapter_parameters("03_phase_diagrams")))
    wanted = [c for c in configs if c.model.arch == "fcn" and c.model.depth == 2 and c.model.width in (512, 2048)
              and c.model.parameterization == "sp"]
    return [(c, s) for c in sorted(wanted, key=lambda c: c.model.width) for s in (0, 1, 2)]


def extra_units(dry_run: bool) -> list[tuple[SweepConfig, int]]:
    """Part 2: a Myrtle-5 unit at width 64 with 03's CNN-panel settings, and a depth-2 FCN at width 4096."""
    if dry_run:
        return [(SweepConfig(model=ModelSpec("myrtle", 5, 2), n_train=64, n_sharpness=32, batch_size=32, steps=2,
                             c_values=c_grid(3.0, 1.0)), 0)]
    configs = unique_configs(chapter_sweeps(chapter_parameters("03_phase_diagrams")))
    conv = next(c for c in configs if c.model.arch == "myrtle")
    fcn = next(c for c in configs if c.model.arch == "fcn" and c.model.depth == 2 and c.model.width == 2048)
    return [(conv.with_model(width=64), 0), (fcn.with_model(width=4096), 0)]


def describe(config: SweepConfig) -> str:
    m = config.model
    return f"{m.arch} d{m.depth} w{m.width}, n_sharpness {config.n_sharpness}, {len(config.c_values)} c"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="seconds-sized settings; write a scratch table")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds of compute before parts are skipped")
    parser.add_argument("--out", type=Path, default=None, help="where the table goes")
    args = parser.parse_args()
    out = args.out or (Path("/tmp/gpu_check_dry_run.md") if args.dry_run else RESULTS)
    device = default_device()
    started = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - started)
    lines = ["# The CUDA path against the shipped CPU results", "", describe_machine(device), "",
             "Part 1: the shipped units (computed on a CPU) recomputed here, runs stacked as the device's default. "
             "Constants c_loss / c_sharp / c_max.", "",
             "| unit | seed | constants here | constants shipped | equal | seconds here | seconds shipped |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    store = ResultsStore(Path("/tmp/gpu_check_results"))
    equal = total = 0
    for config, seed in shipped_fcns(args.dry_run):
        if left() <= 0:
            lines.append(f"| {describe(config)} | {seed} | skipped: time budget spent | | | | |")
            continue
        fresh = compute_unit(config, seed, device=device).runs
        shipped = store.load(config, seed)
        k = constants(fresh)
        if shipped is None:
            lines.append(f"| {describe(config)} | {seed} | {shown(k)} | not shipped | — | "
                         f"{fresh.seconds.iloc[0]:.1f} | — |")
            continue
        ks = constants(shipped.runs)
        equal, total = equal + same(k, ks), total + 1
        lines.append(f"| {describe(config)} | {seed} | {shown(k)} | {shown(ks)} | {'yes' if same(k, ks) else 'NO'} | "
                     f"{fresh.seconds.iloc[0]:.1f} | {shipped.runs.seconds.iloc[0]:.1f} |")
    lines += ["", f"Constants equal to the shipped CPU ones: {equal} of {total} units.", "",
              "Part 2: units with no CPU counterpart.", "", "| unit | constants | seconds |", "| --- | --- | --- |"]
    for config, seed in extra_units(args.dry_run):
        if left() <= 0:
            lines.append(f"| {describe(config)} | skipped: time budget spent | |")
            continue
        fresh = compute_unit(config, seed, device=device).runs
        lines.append(f"| {describe(config)} | {shown(constants(fresh))} | {fresh.seconds.iloc[0]:.1f} |")
    lines += ["", "Part 3: one unit, stack 1 against stack 16 on this device.", ""]
    config, seed = shipped_fcns(args.dry_run)[0]
    if left() > 0:
        one, sixteen = (compute_unit(config.updated(stack=s), seed, device=device).runs for s in (1, 16))
        lines.append(f"{describe(config)}, seed {seed}: stack 1 {shown(constants(one))} ({one.seconds.iloc[0]:.1f} s), "
                     f"stack 16 {shown(constants(sixteen))} ({sixteen.seconds.iloc[0]:.1f} s): "
                     f"{'identical' if same(constants(one), constants(sixteen)) else 'DIFFERENT'}.")
    else:
        lines.append("Skipped: time budget spent.")
    lines += ["", f"Wall time of the check: {time.perf_counter() - started:.0f} s."]
    write_results(out, lines)
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
