"""The diagnosis of each initialization: its runs on a grid of c (plain SGD in the study's engine, or any optimizer
through the same grid walk) and the edge sharpnesses measured at θ₀."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from helpers.curvature.slicing import slice_size
from helpers.data.images import Data
from helpers.diagnosis.edges import (ADAM_FAMILY, EDGES, PLAIN_SGD, OptimizerFactory, OptimizerIdentity,
                                     critical_lr, default_edge, first_update, make_optimizer, momentum_scale,
                                     preconditioned_sharpness)
from helpers.diagnosis.preparation import (built, check_deterministic, check_second_derivatives, checked_loss,
                                           prepared)
from helpers.diagnosis.walk import OptimizerRuns
from helpers.rules import HELD, not_recovered
from helpers.sweeps.config import Training
from helpers.sweeps.engine import run_model, walk_grid
from helpers.sweeps.problem import Problem, batch_order, initial_sharpness
from helpers.sweeps.schema import RUN_COLUMNS


def held_divergent(runs: pd.DataFrame, held: float | None = HELD) -> pd.DataFrame:
    """``runs`` with every run whose L_T/L_0 ≥ ``held`` (None: never) marked divergent at its last step."""
    if held is None:
        return runs
    runs = runs.copy()
    last = runs.groupby(["seed", "c"]).step.transform("max") == runs.step
    high = last & ~runs.diverged & not_recovered(runs.loss, runs.loss0, held)
    runs.loc[high, "diverged"] = True
    return runs


@dataclass(frozen=True)
class Request:
    """What :func:`diagnose` was asked, checked: the model (one module, or a ``builder`` called per seed), the data
    and loss, the device, the batch order (None: seeded permutations), the optimizer and its edge, the held rule,
    quick or not, and whether to show progress."""

    model: torch.nn.Module | None
    builder: Callable[[], torch.nn.Module] | None
    data: Data
    loss: object
    device: torch.device
    batches: list[torch.Tensor] | None
    optimizer: OptimizerFactory | None = None
    edge: str | None = None
    held: float | None = HELD
    quick: bool = False
    progress: bool = True


def _sgd_seed(training: Training, request: Request, net: torch.nn.Module, seed: int) -> pd.DataFrame:
    """One initialization's runs with plain SGD in the study's engine, the model checked first (randomness, second
    derivatives)."""
    data = request.data
    fn = checked_loss(request.loss, net, data.x, data.y)
    check_deterministic(net, data.x[:8])
    check_second_derivatives(net, data.x[:2])
    with sdpa_kernel([SDPBackend.MATH]):   # the one attention kernel with second derivatives everywhere
        return run_model(training, net, data, seed, request.device, loss=fn, batches=request.batches).runs


def edges_at(training: Training, request: Request, net: torch.nn.Module, seed: int, fn,
             probe: torch.optim.Optimizer) -> tuple[str, dict[str, float]]:
    """The edge that is the unit of c (``request.edge``, or the optimizer's own; ``probe``: one the factory built,
    whose settings are read) and every edge sharpness measurable at θ₀ on the sharpness subset: ``critical`` always;
    with second derivatives, ``lambda_H0`` (λ^H_0), ``hessian`` for SGD and ``preconditioned`` for Adam and AdamW
    (quick: λ^H_0 only where it is the unit)."""
    data = request.data
    xs, ys = data.x[: training.n_sharpness], data.y[: training.n_sharpness]
    edge = request.edge or default_edge(probe)
    if edge not in EDGES:
        raise ValueError(f"unknown edge {edge!r}; choose one of {EDGES}")
    if edge == "hessian":
        momentum_scale(probe)  # SGD's only: a clear error for another optimizer, before any measurement
    found = {"critical": critical_lr(net, fn, xs, ys, first_update(net, request.optimizer, fn, xs, ys)).sharpness}
    try:
        check_second_derivatives(net, data.x[:2])
    except ValueError:
        if edge != "critical":
            raise
        return edge, found
    if not request.quick or edge == "hessian":
        found["lambda_H0"] = float(initial_sharpness(training, net, data, seed, fn).eigenvalue[0])
    if isinstance(probe, torch.optim.SGD) and "lambda_H0" in found:
        found["hessian"] = found["lambda_H0"] * momentum_scale(probe)
    if isinstance(probe, ADAM_FAMILY):
        problem = Problem.of(net, 1, fn, data, training.n_sharpness, slice_size(net, xs[:1]))
        found["preconditioned"] = preconditioned_sharpness(problem.hessian(problem.params0), probe, seed)
    if edge not in found:
        raise ValueError(f"edge={edge!r} is not defined for {OptimizerIdentity.of(probe)}")
    return edge, found


def _optimizer_seed(training: Training, request: Request, net: torch.nn.Module, seed: int
                    ) -> tuple[pd.DataFrame, str, dict[str, float], OptimizerIdentity]:
    """One initialization's runs with the request's optimizer at η = c/s (s: the edge sharpness), walked by the
    engine's :func:`~helpers.sweeps.engine.walk_grid`; the edge, every edge measured, and the optimizer."""
    data = request.data
    fn = checked_loss(request.loss, net, data.x, data.y)
    check_deterministic(net, data.x[:8])
    probe = make_optimizer(request.optimizer, copy.deepcopy(net).parameters(), 1.0)
    with sdpa_kernel([SDPBackend.MATH]):
        edge, found = edges_at(training, request, net, seed, fn, probe)
        order = request.batches or batch_order(len(data.x), training.batch_size, training.steps, seed)
        train = OptimizerRuns(net, request.optimizer, fn, data.x, data.y, order, found[edge], seed, len(data.x),
                              request.held, training.diverge_loss)
        records, _ = walk_grid(training, train, 1)
    return pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS)), edge, found, OptimizerIdentity.of(probe)


def all_seeds(training: Training, seeds: tuple[int, ...], request: Request
               ) -> tuple[pd.DataFrame, list[dict], int, OptimizerIdentity, str]:
    """Every initialization's runs on the grid of ``training`` (the held rule applied), edges, frozen tensors, the
    optimizer and the unit of c."""
    from tqdm import tqdm

    tables, edges, frozen, identity, unit = [], [], 0, PLAIN_SGD, "hessian"
    for seed in tqdm(seeds, desc="initializations", disable=not request.progress, leave=False):
        source = built(request.builder, seed) if request.builder is not None else request.model
        net, frozen = prepared(source, request.device)
        if request.optimizer is None:
            tables.append(_sgd_seed(training, request, net, seed))
            s0 = float(tables[-1]["sharpness0"].iloc[0])
            edges.append({"lambda_H0": s0, "hessian": s0})
        else:
            runs, unit, found, identity = _optimizer_seed(training, request, net, seed)
            tables.append(runs)
            edges.append(found)
    return held_divergent(pd.concat(tables, ignore_index=True), request.held), edges, frozen, identity, unit
