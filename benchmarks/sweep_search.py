"""Sweep-search benchmark: one sweep at the study's settings, computed three ways.

(a) the study's algorithm, implemented here independently of the engine: runs one after the other, a full scan of
    the c grid up to the first divergence, λ^H_t at every step by 20 power iterations on forward-over-reverse
    Hessian-vector products (``torch.func.jvp`` of ``torch.func.grad``), one process;
(b) the engine's full scan (``search="scan"``: warm-started Lanczos at every step of every run);
(c) the engine's default (``search="first-rise"``: λ^H at every step of every run up to the first whose sharpness
    rose, loss-only runs after it: the same constants as (b) by construction).

Reports wall time, Hessian-vector products, the constants of each initialization and every disagreement with (b).
Writes ``benchmarks/results/sweep_search.md``. Run: ``.venv/bin/python -m benchmarks.sweep_search`` (the study's
settings; ``--widths``, ``--seeds``, ``--methods`` shrink it).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch
from torch.func import functional_call, grad, jvp

from benchmarks.machine import describe_machine, write_results
from helpers.nets.build import ModelSpec, build_model
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.data.images import Data
from helpers.core.device import default_device
from helpers.sweeps.engine import run_unit
from helpers.sweeps.problem import batch_order, load_sweep_data
from helpers.nets.losses import mse
from helpers.analysis.phases import critical_constants

RESULTS = Path(__file__).parent / "results" / "sweep_search.md"


def study_unit(config: SweepConfig, seed: int, data: Data) -> tuple[pd.DataFrame, int]:
    """The study's algorithm for one initialization; returns its table and the number of Hessian-vector products."""
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=seed, device=data.x.device)
    names = [n for n, _ in model.named_parameters()]
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]
    products = 0

    def loss_of(theta: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mse(functional_call(model, theta, (x,)), y)

    def sharpness(theta: dict, gen: torch.Generator) -> float:
        nonlocal products
        v = {n: torch.randn(theta[n].shape, generator=gen).to(theta[n].device) for n in names}
        eig = 0.0
        for _ in range(20):
            norm = math.sqrt(sum(float((t * t).sum()) for t in v.values()))
            v = {n: t / norm for n, t in v.items()}
            hv = jvp(lambda th: grad(loss_of)(th, xs, ys), (theta,), (v,))[1]
            products += 1
            eig = sum(float((v[n] * hv[n]).sum()) for n in names)
            v = hv
        return eig

    gen = torch.Generator().manual_seed(seed)
    sharpness0 = sharpness(theta0, gen)
    loss0 = float(loss_of(theta0, data.x, data.y))
    batches = batch_order(len(data), config.batch_size, config.steps, seed)
    rows = []
    for c in config.c_values:
        theta, lr = {n: t.clone() for n, t in theta0.items()}, c / sharpness0
        rows.append(dict(c=c, step=0, loss=loss0, sharpness=sharpness0, diverged=False))
        diverged = False
        for step, index in enumerate(batches, start=1):
            g = grad(loss_of)(theta, data.x[index], data.y[index])
            batch_loss = float(loss_of(theta, data.x[index], data.y[index]))
            theta = {n: theta[n] - lr * g[n] for n in names}
            loss = float(loss_of(theta, data.x, data.y))
            diverged = not (math.isfinite(batch_loss) and batch_loss <= config.diverge_loss
                            and math.isfinite(loss) and loss <= config.diverge_loss)
            rows.append(dict(c=c, step=step, loss=loss, diverged=diverged,
                             sharpness=math.nan if diverged else sharpness(theta, gen)))
            if diverged:
                break
        if diverged:
            break
    table = pd.DataFrame(rows).assign(seed=seed, loss0=loss0, sharpness0=sharpness0)
    return table, products


def engine_unit(config: SweepConfig, seed: int, data: Data, device) -> tuple[pd.DataFrame, int]:
    table = run_unit(config, seed, data, device).runs
    # λ^H_0 is measured once per unit; every run's step-0 row repeats its products
    return table, int(table[table.step >= 1].products.sum() + table[table.step == 0].products.iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--x-step", type=float, default=0.1)
    parser.add_argument("--methods", default="abc", help="any of a, b, c")
    args = parser.parse_args()
    device = default_device()
    base = SweepConfig(model=ModelSpec("fcn", 4, args.widths[0]), n_train=5120, n_sharpness=2048, steps=10,
                       batch_size=512, c_values=c_grid(8.0, args.x_step), seeds=tuple(range(args.seeds)))
    data = load_sweep_data(base, device)
    methods = {"a": ("(a) study: full scan, 20 power iterations, fwd-over-rev",
                     lambda cfg, s: study_unit(cfg, s, data)),
               "b": ("(b) engine: full scan, Lanczos", lambda cfg, s: engine_unit(cfg.updated(search="scan"), s,
                                                                                  data, device)),
               "c": ("(c) engine: first-rise (default)", lambda cfg, s: engine_unit(cfg, s, data, device))}
    rows, found = [], {}
    for width in args.widths:
        config = base.with_model(width=width)
        for key in args.methods:
            name, unit = methods[key]
            start, products, tables = time.perf_counter(), 0, []
            for seed in config.seeds:
                table, used = unit(config, seed)
                tables.append(table.assign(seed=seed))
                products += used
            wall = time.perf_counter() - start
            k = critical_constants(pd.concat(tables).assign(depth=4, width=width)).set_index("seed")
            found[width, key] = k
            rows.append(dict(width=width, key=key, method=name, wall=wall, products=products))
            print(f"width {width} {name}: {wall:.1f} s, {products} products", flush=True)
    lines = ["# Sweep-search benchmark", "", describe_machine(device), "",
             f"FCN SP depth 4, MSE, Fashion-MNIST ({base.n_train} training examples; the loss on all of them), "
             f"λ^H on {base.n_sharpness}, batch {base.batch_size}, T = {base.steps}, c = 2^x for x = 0, "
             f"{args.x_step:g}, … up to the first divergence, {args.seeds} initializations per width.", "",
             "| width | method | wall (s) | Hessian-vector products | speed-up vs (b) | speed-up vs (a) |",
             "| --- | --- | --- | --- | --- | --- |"]
    walls = {(r["width"], r["key"]): r["wall"] for r in rows}
    for r in rows:
        ref_b, ref_a = walls.get((r["width"], "b")), walls.get((r["width"], "a"))
        ratio = lambda ref, wall=r["wall"]: f"{ref / wall:.2f}" if ref else "–"
        lines.append(f"| {r['width']} | {r['method']} | {r['wall']:.1f} | {r['products']} | {ratio(ref_b)} | "
                     f"{ratio(ref_a)} |")
    lines += ["", "Constants per initialization (c_loss, c_sharp, c_max) and disagreements with (b):", "",
              "| width | seed | " + " | ".join(methods[m][0] for m in args.methods) + " |",
              "| --- | --- | " + " | ".join("---" for _ in args.methods) + " |"]
    disagreements = {m: {"c_loss": 0, "c_sharp": 0, "c_max": 0, "total": 0} for m in args.methods}
    for width in args.widths:
        for seed in range(args.seeds):
            cells = []
            for m in args.methods:
                k = found[width, m].loc[seed]
                cells.append(f"{k.c_loss:g}, {k.c_sharp:g}, {k.c_max:g}")
                if "b" in args.methods:
                    ref = found[width, "b"].loc[seed]
                    disagreements[m]["total"] += 1
                    for name in ("c_loss", "c_sharp", "c_max"):
                        disagreements[m][name] += int(k[name] != ref[name])
            lines.append(f"| {width} | {seed} | " + " | ".join(cells) + " |")
    if "b" in args.methods:
        lines += ["", "| method | initializations | c_loss differs from (b) | c_sharp differs | c_max differs |",
                  "| --- | --- | --- | --- | --- |"]
        for m in args.methods:
            d = disagreements[m]
            lines.append(f"| {methods[m][0]} | {d['total']} | {d['c_loss']} | {d['c_sharp']} | {d['c_max']} |")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
