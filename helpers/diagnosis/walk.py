"""The grid of c walked with any torch optimizer: from one initialization θ₀, one run per c at η = c/s (s: the
optimizer's edge sharpness, :mod:`helpers.diagnosis.edges`), T steps each on the same minibatches, in ascending c until
the first divergent run. Each run is the optimizer itself (``optimizer.step()`` on a copy of the model), so momentum
buffers, Adam's moments and weight decay act as in training. L_t is measured on the first ``n_measure`` examples
(all of them in the diagnosis, as in the engine) after every step while c_loss is undecided, then after the last
step only; the sharpness is not tracked (c_sharp is the study's constant of plain SGD only). The table has the
engine's run columns, so :func:`helpers.analysis.phases.critical_constants` reads c_loss and c_max from it."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from helpers.diagnosis.edges import OptimizerFactory, make_optimizer
from helpers.nets.losses import Loss
from helpers.rules import DIVERGE_LOSS, diverged, not_recovered, rises
from helpers.sweeps.schema import RUN_COLUMNS

def measured_loss(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor, chunk: int = 512) -> float:
    """The mean loss over (x, y), in chunks (the loss is a mean over its batch)."""
    with torch.no_grad():
        total = sum(float(loss(model(x[i:i + chunk]), y[i:i + chunk])) * len(x[i:i + chunk])
                    for i in range(0, len(x), chunk))
    return total / len(x)


def train_run(model: nn.Module, factory: OptimizerFactory, loss: Loss, x: torch.Tensor, y: torch.Tensor,
              batches: Sequence[torch.Tensor], lr: float, n_measure: int, held: float | None,
              every_step: bool = True, loss0: float | None = None, diverge_loss: float = DIVERGE_LOSS) -> list[dict]:
    """One run from a copy of ``model`` at learning rate ``lr``: a record per step (L_t — at every step, or with
    ``every_step=False`` only after the last, NaN before —, the minibatch loss of step t, whether it diverged: a
    loss not finite or above ``diverge_loss``; or, after the last step, still ≥ held·L_0)."""
    model = copy.deepcopy(model)
    optimizer = make_optimizer(factory, model.parameters(), lr)
    if loss0 is None:   # L_0 at θ₀: the same for every run of a walk, which passes it
        loss0 = measured_loss(model, loss, x[:n_measure], y[:n_measure])
    records = [dict(step=0, loss=loss0, batch_loss=math.nan, diverged=False)]
    for step, index in enumerate(batches, 1):
        optimizer.zero_grad()
        value = loss(model(x[index]), y[index])
        batch_loss = float(value.detach())
        if diverged(batch_loss, diverge_loss):
            records.append(dict(step=step, loss=math.nan, batch_loss=batch_loss, diverged=True))
            break
        value.backward()
        optimizer.step()
        measured = every_step or step == len(batches)
        current = measured_loss(model, loss, x[:n_measure], y[:n_measure]) if measured else math.nan
        dead = measured and diverged(current, diverge_loss)
        records.append(dict(step=step, loss=current, batch_loss=batch_loss, diverged=dead))
        if records[-1]["diverged"]:
            break
    last = records[-1]
    if not last["diverged"] and not_recovered(last["loss"], loss0, held):
        last["diverged"] = True
    return [dict(r, loss0=loss0) for r in records]


def walk(model: nn.Module, factory: OptimizerFactory, loss: Loss, x: torch.Tensor, y: torch.Tensor,
         batches: Sequence[torch.Tensor], c_values: Sequence[float], sharpness0: float, seed: int, n_measure: int,
         held: float | None, diverge_loss: float = DIVERGE_LOSS) -> pd.DataFrame:
    """The runs of one initialization at η = c/``sharpness0`` for c in ``c_values`` (ascending) up to and including
    the first divergent one; the engine's run columns (sharpness NaN: not measured)."""
    rows, loss_rose = [], False
    loss0 = measured_loss(model, loss, x[:n_measure], y[:n_measure])
    for c in sorted(c_values):
        # L_t at every step while c_loss is undecided; after a run's loss has risen, at the last step only (as the
        # engine's loss search): c_loss and c_max are the same
        records = train_run(model, factory, loss, x, y, batches, c / sharpness0, n_measure, held, not loss_rose,
                            loss0, diverge_loss)
        loss_rose = loss_rose or rises([r["loss"] / r["loss0"] for r in records[1:] if not r["diverged"]])
        rows += [dict(r, seed=seed, c=c, lr=c / sharpness0, sharpness=math.nan, sharpness0=sharpness0, products=0,
                      converged=False) for r in records]
        if records[-1]["diverged"]:
            break
    return pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
