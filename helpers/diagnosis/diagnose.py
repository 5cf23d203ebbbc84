"""The early phase diagram of any PyTorch model, as a learning-rate diagnosis.

``diagnose(model, x, y)`` measures, for each initialization, the sharpness λ^H_0 and the study's three constants
c_loss, c_sharp and c_max of the first ``steps`` steps of training at η = c/λ^H_0 — the same engine, search and
rules as the sweeps of the book — and returns a :class:`Diagnosis` that reads them as learning rates::

    from helpers.diagnosis.diagnose import diagnose
    report = diagnose(lambda: MyNet(), x, y, loss="xent", batch_size=256)
    print(report)                  # λ^H_0 and the phases as learning rates, per seed
    low, high = report.suggested_range()
    report.phase(3e-2)             # "loss catapult", ...

With ``optimizer=`` (a factory such as ``lambda p: torch.optim.Adam(p)``) the runs are that optimizer's and the
grid is in units of its own edge (:mod:`helpers.diagnosis.edges`): η = c/s, with s = λ^H_0 scaled by SGD's momentum,
Adam's preconditioned sharpness, or the critical sharpness along the optimizer's first update; c = 2 is the edge on a
quadratic for each. Without it, plain SGD through the study's engine (the only case with c_sharp).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from helpers.analysis.phases import critical_constants
from helpers.core.device import resolve_device
from helpers.data.images import Data
from helpers.diagnosis.edges import EDGES, OptimizerFactory, check_factory
from helpers.diagnosis.preparation import as_tensors, describe_loss
from helpers.diagnosis.result import Diagnosis
from helpers.diagnosis.seeds import Request, all_seeds
from helpers.nets.losses import Loss
from helpers.rules import CONSTANTS, HELD
from helpers.sweeps.config import Training, c_grid


def _per_seed(runs: pd.DataFrame, quick: bool, edges: list[dict[str, float]], grid: tuple[float, ...]
              ) -> pd.DataFrame:
    """One row per initialization: the unit of c, the constants and their flags, every edge measured."""
    constants = critical_constants(runs)
    if quick:
        constants = constants.assign(c_sharp=np.nan, c_sharp_filled=False)
    sharpness0 = runs.groupby("seed")["sharpness0"].first().rename("sharpness0").reset_index()
    per_seed = sharpness0.merge(constants[["seed", *CONSTANTS, "c_loss_filled", "c_sharp_filled", "censored"]],
                                on="seed")
    for name in ("lambda_H0", *EDGES):
        per_seed[name] = [e.get(name, math.nan) for e in edges]
    if per_seed["c_max"].isna().any():
        bad = per_seed.loc[per_seed["c_max"].isna(), "seed"].tolist()
        raise ValueError(f"training diverged at the smallest c = {min(grid)} for seeds {bad}: start the grid lower")
    return per_seed


def diagnose(model: torch.nn.Module | Callable[[], torch.nn.Module], x, y=None, loss: str | Loss = "mse", *,
             batch_size: int | None = None, steps: int = 10, seeds: Sequence[int] = (0, 1, 2),
             c_values: Sequence[float] | None = None, n_sharpness: int = 2048, sharpness: str = "lanczos",
             held: float | None = HELD, quick: bool = False, progress: bool = True,
             optimizer: OptimizerFactory | None = None, edge: str | None = None,
             device: str | torch.device | None = None) -> Diagnosis:
    """The early phase diagram of ``model`` trained by plain SGD (no momentum, no weight decay), or by ``optimizer``,
    on (``x``, ``y``): the edge sharpness s and c_loss, c_sharp, c_max per initialization, at η = c/s.

    Args:
        model: a zero-argument callable that builds a freshly initialized model (called once per seed under
            ``torch.manual_seed(seed)``, the caller's random state restored after), or a module, whose own
            initialization is then the only one; either way the diagnosis trains a copy. Its trainable parameters
            are trained and enter λ^H; frozen ones stay as they are. BatchNorm uses batch statistics as in
            training; dropout of every kind is off.
        x, y: tensors, or a ``DataLoader`` as ``x`` (all its batches, and its batch size unless ``batch_size`` is
            given).
        loss: as PyTorch names it — ``"mse"`` is ``nn.MSELoss`` (the mean of (f − y)², targets shaped like the
            output), ``"xent"`` is ``nn.CrossEntropyLoss`` (class labels [B] or one-hot targets) — or
            ``"half_mse"``, the study's ½·mean (f − y)² (half the sharpness, twice the learning rates), or any
            callable (outputs, targets) → scalar, e.g. the ``nn.MSELoss()`` you train with; the summary names it.
        batch_size: None trains by full-batch gradient descent, otherwise SGD over seeded permutations.
        steps: T, the length of each run.
        seeds: the initializations (one with a module, or with ``quick``).
        c_values: the grid of c (default: the study's 2^x, x = 0, 0.1, …, 6, extended by :func:`bracketing` until
            both edges are inside it, within c = 2^-10 … 2^16), walked upward until the first divergence: the loss
            not finite or above 1e5 (:data:`~helpers.rules.DIVERGE_LOSS`) at any step, or (``held``) still
            ≥ held·L_0 after the last step.
        n_sharpness: λ^H is measured on the first ``n_sharpness`` examples.
        sharpness: the estimator of λ^H, ``"lanczos"`` or the study's ``"power"`` iteration.
        held: the held rule's multiple of L_0 (None: off).
        quick: one seed, λ^H on at most 512 examples, no c_sharp (only c_loss and c_max), and with ``optimizer``
            no λ^H_0 beside another edge.
        progress: a progress bar over initializations.
        optimizer: a factory params → ``torch.optim.Optimizer`` (its learning rate is set per run, e.g.
            ``lambda p: torch.optim.SGD(p, lr=0, momentum=0.9)``); c is then in units of ``edge`` and c_sharp is
            not measured. Without it: plain SGD in the study's engine, s = λ^H_0.
        edge: ``"hessian"``, ``"preconditioned"`` or ``"critical"`` (default: the optimizer's own,
            :mod:`helpers.diagnosis.edges`).
        device: where to train (default: CUDA when available).
    """
    builder, seeds, grid = _checked(model, seeds, c_values, quick, optimizer)
    x, y, batch_size = as_tensors(x, y, batch_size)
    target, n = resolve_device(device), len(x)
    training = Training(n_sharpness=min(min(n_sharpness, 512) if quick else n_sharpness, n),
                        batch_size=batch_size or n, steps=steps, c_values=grid, sharpness=sharpness,
                        search="loss" if quick or optimizer is not None else "first-rise",
                        divergence="minibatch or measurement")  # the walk of OptimizerRuns uses both losses too
    request = Request(None if builder else model, builder, Data(x.to(target), y.to(target), y.to(target), "user"),
                      loss, target, None if batch_size else [torch.arange(n)] * steps, optimizer, edge, held, quick,
                      progress)
    training, (runs, edges, frozen, identity, unit) = _bracketed(training, seeds, request, extend=c_values is None)
    per_seed = _per_seed(runs, quick or optimizer is not None, edges, training.c_values)
    return Diagnosis(per_seed, training.c_values, runs, steps, held=held, frozen=frozen, quick=quick,
                     optimizer=identity, edge=unit, loss=describe_loss(loss))


def _checked(model, seeds: Sequence[int], c_values: Sequence[float] | None, quick: bool,
             optimizer: OptimizerFactory | None) -> tuple[Callable | None, tuple[int, ...], tuple[float, ...]]:
    """The builder (None for a module), the seeds to diagnose and the grid, or one clear error."""
    if not (isinstance(model, torch.nn.Module) or callable(model)):
        raise TypeError(f"model must be a torch.nn.Module or a zero-argument callable that builds one, got "
                        f"{type(model).__name__}")
    if optimizer is not None:
        check_factory(optimizer)
    builder = model if not isinstance(model, torch.nn.Module) else None
    seeds = tuple(seeds)[:1] if builder is None or quick else tuple(seeds)
    if not len(seeds):
        raise ValueError("seeds is empty: give at least one initialization seed")
    grid = tuple(c_grid(6.0, 0.1)) if c_values is None else tuple(float(c) for c in c_values)
    if not grid:
        raise ValueError("c_values is empty: give at least one c")
    return builder, seeds, grid


LOWEST, HIGHEST = 2.0 ** -10, 2.0 ** 16
"""The bounds of the default grid's extension: c = 2^-10 … 2^16 (η from ~1e-3 to ~6e4 times 1/λ^H_0)."""


def bracketing(runs: pd.DataFrame, grid: tuple[float, ...]) -> tuple[float, ...] | None:
    """The default grid extended where it did not bracket both edges (None where it did, or where the bounds
    :data:`LOWEST`, :data:`HIGHEST` are reached): 6 octaves lower (step 0.1 in x) when some initialization diverged
    at its first c or its loss rose there already, 4 octaves higher when some initialization did not diverge.
    :func:`diagnose` walks a lower grid again from its bottom, and a higher one only above the old top, for the
    initializations that had not diverged."""
    constants = critical_constants(runs)
    x_low, x_high = math.log2(grid[0]), math.log2(grid[-1])
    lower = (constants.c_max.isna() | (constants.c_loss == grid[0])).any() and x_low - 0.1 >= math.log2(LOWEST) - 0.01
    higher = constants.censored.any() and x_high + 0.1 <= math.log2(HIGHEST) + 0.01
    if not (lower or higher):
        return None
    below = c_grid(x_low - 0.1, 0.1, min(x_low - 0.1, max(x_low - 6.0, math.log2(LOWEST)))) if lower else ()
    above = c_grid(max(x_high + 0.1, min(x_high + 4.0, math.log2(HIGHEST))), 0.1, x_high + 0.1) if higher else ()
    return tuple(sorted(set(below) | set(grid) | set(above)))


def _bracketed(training: Training, seeds: tuple[int, ...], request: Request, extend: bool) -> tuple[Training, tuple]:
    """Every initialization walked on the grid of ``training`` (:func:`~helpers.diagnosis.seeds.all_seeds`), and
    with ``extend`` again on the grids :func:`bracketing` widens it to; the final settings and walk."""
    walked = all_seeds(training, seeds, request)
    while extend and (wider := bracketing(walked[0], training.c_values)) is not None:
        if wider[0] < training.c_values[0]:   # a walk starts at the bottom: all of it again
            training = replace(training, c_values=wider)
            walked = all_seeds(training, seeds, request)
            continue
        # above the old top, only the initializations that did not diverge: each run depends on θ₀, c and the batch
        # order alone, so walking the new c's on their own adds exactly the runs a walk of the whole grid would
        runs = walked[0]
        open_seeds = tuple(critical_constants(runs).query("censored").seed.astype(int))
        above = tuple(c for c in wider if c > training.c_values[-1])
        more = all_seeds(replace(training, c_values=above), open_seeds, request)[0]
        runs = pd.concat([runs, more], ignore_index=True).sort_values(["seed", "c", "step"], ignore_index=True)
        training, walked = replace(training, c_values=wider), (runs, *walked[1:])
    return training, walked


