"""The calibration's jobs: for one architecture × optimizer, a row per seed (quick diagnosis, range test, training at
each suggestion) and the grid of training runs; and training at the fitted rule's suggestions."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.diagnosis.calibration.protocol import OPTIMIZERS, SHIPPED, SHIPPED_PROTOCOL, Protocol, task
from helpers.diagnosis.calibration.store import load
from helpers.diagnosis.calibration.table import (fit_rule, mean_losses, observed_boundaries, rows_with_outcomes,
                                                 suggest, unstable)
from helpers.diagnosis.diagnose import diagnose
from helpers.diagnosis.tasks import Task, range_test, train_run
from helpers.diagnosis.zoo import FIT
from helpers.sweeps.config import c_grid


def trained(t: Task, p: Protocol, optimizer: str, lr: float, seed: int) -> dict:
    """One training run's outcome: lr, held-out loss and accuracy (NaN when diverged), diverged (the study's rule: a
    minibatch loss not finite or above 1e5, :func:`helpers.rules.diverged`), the training loss before and after,
    seconds."""
    r = train_run(t, lr, steps=p.steps, batch_size=p.batch_size, seed=seed, optimizer=OPTIMIZERS[optimizer])
    return dict(lr=lr, loss=r["final_test_loss"], accuracy=r["test_accuracy"], diverged=bool(r["diverged"]),
                train_loss0=r["initial_train_loss"], train_loss=r["final_train_loss"], seconds=round(r["cost_s"], 2))


def diagnosed(t: Task, p: Protocol, optimizer: str, seed: int) -> dict:
    """The quick diagnosis of one seed: edges, constants, their learning rates, the built-in suggestion, seconds."""
    start = time.perf_counter()
    report = diagnose(t.build, t.x[: p.n_diagnose], t.y[: p.n_diagnose], t.loss, batch_size=p.batch_size,
                      steps=p.diagnose_steps, seeds=(seed,), c_values=c_grid(p.c_x[1], p.c_x[2], p.c_x[0]),
                      quick=True, optimizer=None if optimizer == "sgd" else OPTIMIZERS[optimizer], progress=False)
    row, bounds = report.per_seed.iloc[0], observed_boundaries(report).iloc[0]
    return dict(edge=report.edge, sharpness=float(row.sharpness0), lambda_H0=float(row.lambda_H0),
                critical=float(row.critical), preconditioned=float(row.preconditioned), c_loss=float(row.c_loss),
                c_max=float(row.c_max), censored=bool(row.censored), c_loss_filled=bool(row.c_loss_filled),
                lr_loss=float(bounds.lr_loss), lr_max=float(bounds.lr_max),
                eta_default=report.suggested_lr(), diagnose_s=round(time.perf_counter() - start, 2))


def ranged(t: Task, p: Protocol, optimizer: str, seed: int) -> dict:
    """The range test's suggestion and seconds."""
    low, high = p.span(optimizer)
    r = range_test(t, batch_size=p.batch_size, seed=seed, start_lr=low, end_lr=high, num_iter=p.range_iters,
                   optimizer=OPTIMIZERS[optimizer])
    return dict(eta_range_test=r["lr"], range_test_s=round(r["cost_s"], 2))


def extend(ladder: list[float], runs: list[dict], first: list[float], steps: int = 3) -> list[float]:
    """Learning rates to add to a factor-4 ladder: below it when its best is the lowest, else above it while some
    seed is stable (not :func:`unstable`) at its top; at most ``steps`` factors of 4 beyond the ``first`` ladder."""
    means = mean_losses(runs)
    if means.idxmin() == min(ladder) and min(ladder) > min(first) / 4.0 ** steps:
        return [min(ladder) / 4]
    top = [r for r in runs if r["lr"] == max(ladder)]
    if any(not unstable(r) for r in top) and max(ladder) < max(first) * 4.0 ** steps:
        return [max(ladder) * 4]
    return []


def refinements(runs: list[dict], seeds: tuple[int, ...]) -> list[tuple[float, int]]:
    """(lr, seed) runs that refine the grid: the factor-2 neighbours of the best mean learning rate for every seed,
    and for each seed the geometric midpoint of its largest stable and first unstable learning rate."""
    done = {(r["lr"], r["seed"]) for r in runs}
    best = mean_losses(runs).idxmin()
    wanted = [(lr, s) for lr in (best / 2, best * 2) for s in seeds]
    for s in seeds:
        mine = sorted((r for r in runs if r["seed"] == s), key=lambda r: r["lr"])
        bad = [r["lr"] for r in mine if unstable(r)]
        if bad:
            stable = [r["lr"] for r in mine if r["lr"] < bad[0] and not unstable(r)]
            if stable and bad[0] / stable[-1] > 2.5:
                wanted.append((math.sqrt(bad[0] * stable[-1]), s))
    return [w for w in dict.fromkeys(wanted) if w not in done]


def grid_runs(t: Task, p: Protocol, optimizer: str, seeds: tuple[int, ...]) -> list[dict]:
    """The grid of training runs (module docstring, step 3). Above two unstable learning rates in a row a seed's
    ladder is not run further (recorded ``skipped``, with ``diverged`` set so that it counts as unusable; never as a
    loss, never as the first unstable learning rate)."""
    runs: list[dict] = []

    def run(lr: float, seed: int) -> None:
        mine = sorted((r for r in runs if r["seed"] == seed and r["lr"] < lr), key=lambda r: r["lr"])
        if len(mine) >= 2 and all(unstable(r) for r in mine[-2:]):
            runs.append(dict(lr=lr, seed=seed, loss=math.nan, accuracy=math.nan, diverged=True, skipped=True,
                             train_loss0=math.nan, train_loss=math.nan, seconds=0.0))
        else:
            runs.append(dict(trained(t, p, optimizer, lr, seed), seed=seed, skipped=False))

    first = p.first_ladder(optimizer)
    ladder = list(first)
    for lr in ladder:
        for seed in seeds:
            run(lr, seed)
    while extra := extend(ladder, runs, first):
        ladder += extra
        for lr in sorted(extra):
            for seed in seeds:
                run(lr, seed)
    for lr, seed in sorted(refinements(runs, seeds)):
        run(lr, seed)
    return runs


def calibrate(model: str, optimizer: str, p: Protocol = SHIPPED_PROTOCOL, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """One architecture × optimizer: a row per seed (diagnosis, range test, training at both suggestions) and the
    grid of runs."""
    start = time.perf_counter()
    t = task(model, p)
    rows = []
    for seed in seeds:
        row = dict(model=model, optimizer=optimizer, seed=seed, held_out=model not in FIT,
                   **diagnosed(t, p, optimizer, seed), **ranged(t, p, optimizer, seed))
        for name in ("default", "range_test"):
            outcome = trained(t, p, optimizer, row[f"eta_{name}"], seed)
            row[f"loss_{name}"] = outcome["loss"]
        rows.append(row)
    runs = grid_runs(t, p, optimizer, seeds)
    return dict(model=model, optimizer=optimizer, protocol=asdict(p), rows=rows, runs=runs,
                seconds=round(time.perf_counter() - start, 1), threads=torch.get_num_threads(),
                torch=torch.__version__)


def fitted_runs(optimizer: str, folder: Path = SHIPPED, p: Protocol = SHIPPED_PROTOCOL) -> dict:
    """Fit the rule on the stored rows and train at its suggestion for every row of ``optimizer`` (module
    docstring, step 4)."""
    rows, runs, _ = load(folder)
    table = rows_with_outcomes(rows, runs)
    table = table[table.optimizer == optimizer]
    rule = {optimizer: fit_rule(table)[optimizer]}
    table["eta_fitted"] = suggest(table, rule)
    tasks: dict[str, Task] = {}
    out = []
    for row in table.itertuples():
        t = tasks.setdefault(row.model, task(row.model, p))
        out.append(dict(trained(t, p, row.optimizer, float(row.eta_fitted), row.seed), model=row.model,
                        optimizer=row.optimizer, seed=row.seed))
    return dict(rule=rule, runs=out)
