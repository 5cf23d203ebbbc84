"""Early-training runs: SGD (full-batch gradient descent when the batch is the whole training subset) at
η = c/λ^H_0 over a grid of c, the loss recorded after every step and the sharpness where the definitions need it.

One *unit* is one initialization θ₀: λ^H_0 is measured once, then the grid of c is walked upward until the first
divergent run. Runs of one unit share θ₀ and the batch order; ``stack`` of them train together as one stack of
models (:mod:`helpers.curvature.stacking`: one Hessian-vector product serves the whole stack).

Two searches (``SweepConfig.search``), both giving the study's c_loss, c_sharp and c_max:

- ``scan``: every run measures λ^H_t at every step (or at ``measure_at``) and L_t at every step.
- ``first-rise``: runs measure λ^H_t, in ascending c, each until its λ^H_t/λ^H_0 has risen, until some run has
  risen: c_sharp is then the smallest such c, since every run below it was measured at every step and none rose;
  later runs train without it. L_t is computed while c_loss is undecided, and at every run's last step (whether θ_T
  diverged). The training arithmetic is the same as the scan's and every run that could change an answer is
  measured, so the constants are the scan's.
- ``loss``: as ``first-rise`` without the sharpness: c_loss and c_max only.
"""

from __future__ import annotations

import functools
import time

import pandas as pd
import torch

from helpers import __version__
from helpers.nets.build import build_model
from helpers.sweeps.config import SweepConfig, Training
from helpers.curvature.operators import Eigen
from helpers.data.images import Data
from helpers.core.device import processor_name, resolve_device
from helpers.nets.losses import Loss, get_loss
from helpers.rules import rises
from helpers.sweeps.problem import (INITIAL_SHARPNESS, Initialization, SharpnessCache, batch_order, initial_sharpness,
                                    load_sweep_data, start_key)
from helpers.sweeps.training import Policy, train_chunk
from helpers.sweeps.schema import INTERPOLATION_COLUMNS, RUN_COLUMNS, Unit
from helpers.curvature.slicing import slice_size

GPU_STACK = 16


def _rose(records: list[dict], name: str, epsilon: float = 0.0) -> bool:
    """Whether a run's ``name``_t/``name``_0 (1 ≤ t ≤ T, before any divergence) rose, by the two-decimal rule."""
    return rises([r[name] / r[f"{name}0"] for r in records if r["step"] >= 1 and not r["diverged"]], epsilon)


def walk_grid(config: Training, train, size: int) -> tuple[list[dict], list[dict]]:
    """Walk the grid of c upward in chunks of ``size`` runs until the first divergent run; ``train(chunk, policy)``
    trains one chunk. ``first-rise`` measures the sharpness until a run's has risen and L_t until one's loss has
    (see the module's docstring); ``scan`` measures everything."""
    records, segments = [], []
    loss_found = sharp_found = False
    for first in range(0, len(config.c_values), size):
        chunk = list(config.c_values[first : first + size])
        if config.search == "scan":
            policy = Policy()
        else:
            policy = Policy(sharpness="never" if sharp_found or config.search == "loss" else "until risen",
                            loss="last step" if loss_found else "until c_loss")
        new, segment = train(chunk, policy)
        stop = min((r["c"] for r in new if r["diverged"]), default=None)
        kept = [c for c in chunk if stop is None or c < stop]
        runs = {c: [r for r in new if r["c"] == c] for c in kept}
        loss_found = loss_found or any(_rose(runs[c], "loss") for c in kept)
        sharp_found = sharp_found or any(_rose(runs[c], "sharpness", config.rise_epsilon) for c in kept)
        records += [r for r in new if stop is None or r["c"] <= stop]
        segments += [r for r in segment if stop is None or r["c"] <= stop]
        if stop is not None:
            break
    return records, segments


def stack_size(config: Training, device: torch.device) -> int:
    """How many runs train together: ``config.stack``, else one on a CPU and :data:`GPU_STACK` on a GPU."""
    return config.stack or (1 if device.type == "cpu" else GPU_STACK)


def unit_batches(config: Training, n: int, seed: int) -> list[torch.Tensor]:
    """The seeded batch order of a unit's runs: one index tensor per step, for T steps (or up to the transient cap)."""
    return batch_order(n, config.batch_size, max(config.steps, config.transient_cap or 0), seed)


def run_model(config: Training, model: torch.nn.Module, data: Data, seed: int,
              device: str | torch.device | None = None, loss: Loss | None = None,
              batches: list[torch.Tensor] | None = None, start: Eigen | None = None) -> Unit:
    """One initialization θ₀ (``model``'s parameters): measure λ^H_0 (unless ``start`` gives it) and walk the grid of
    c (:func:`walk_grid`). ``loss`` replaces the config's named loss; ``batches`` (one index tensor per step)
    replaces the seeded batch order."""
    target = resolve_device(device)
    data = data.to(target)
    loss = loss or get_loss(config.loss)
    start = start or initial_sharpness(config, model, data, seed, loss)
    if batches is None:
        batches = unit_batches(config, len(data), seed)
    size = stack_size(config, target)
    slices = slice_size(model, data.x[:1], size)  # one slicing for every run of the unit, however many train at once
    init = Initialization(config, model, data, loss, seed, start, [b.to(target) for b in batches], slices)
    records, segments = walk_grid(config, functools.partial(train_chunk, init), size)
    run_columns = list(RUN_COLUMNS) + (["movement"] if config.record_movement else [])
    runs = pd.DataFrame.from_records(records, columns=run_columns).sort_values(["c", "step"], ignore_index=True)
    columns = list(INTERPOLATION_COLUMNS) + (["end_step"] if config.transient_cap is not None else [])
    segment_table = pd.DataFrame.from_records(segments, columns=columns)
    return Unit(runs, segment_table.sort_values(["c", "tau"], ignore_index=True))


def run_unit(config: SweepConfig, seed: int, data: Data, device: str | torch.device | None = None,
             cache: SharpnessCache | None = None) -> Unit:
    """One initialization of the config's model on ``data``: see :func:`run_model`. The model is drawn from ``seed``
    (or the config's ``init_seed``), the batch order from ``seed`` (or its ``batch_seed``). ``cache`` holds λ^H_0
    already measured at this θ₀ on this data and receives the one measured here."""
    target = resolve_device(device)
    data = data.to(target)
    init = seed if config.init_seed is None else config.init_seed
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=init, device=target,
                        reference_x=data.x[: config.n_sharpness])
    measure = lambda: initial_sharpness(config.training, model, data, init)  # noqa: E731 -- one θ₀, one λ^H_0
    start = cache.get(start_key(config, init, target), measure) if cache is not None else measure()
    batches = None if config.batch_seed is None else unit_batches(config.training, len(data), config.batch_seed)
    return run_model(config.training, model, data, seed, target, start=start, batches=batches)


def compute_unit(config: SweepConfig, seed: int, data: Data | None = None,
                 device: str | torch.device | None = None, cache: SharpnessCache | None = INITIAL_SHARPNESS) -> Unit:
    """One unit's tables, the runs marked with their provenance (:data:`~helpers.sweeps.schema.PROVENANCE_COLUMNS`).
    Without ``data`` the sweep's own subset is loaded and λ^H_0 is looked up in ``cache`` first."""
    target = resolve_device(device)
    started = time.perf_counter()
    if data is None:
        unit = run_unit(config, seed, load_sweep_data(config, target), target, cache=cache)
    else:
        unit = run_unit(config, seed, data, target)
    runs = unit.runs.assign(device=target.type, version=__version__, threads=torch.get_num_threads(),
                            seconds=round(time.perf_counter() - started, 3), stack=stack_size(config, target),
                            processor=processor_name(target))
    return Unit(runs, unit.interpolation)


