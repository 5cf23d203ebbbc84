"""Runs with any torch optimizer, for the engine's grid walk: from one initialization θ₀, one run per c at η = c/s
(s: the optimizer's edge sharpness, :mod:`helpers.diagnosis.edges`), T steps each on the same minibatches. Each run is
the optimizer itself (``optimizer.step()`` on a copy of the model), so momentum buffers, Adam's moments and weight
decay act as in training. :class:`OptimizerRuns` is the ``train(chunk, policy)`` that
:func:`helpers.sweeps.engine.walk_grid` walks upward until the first divergent run, as it walks the study's SGD runs:
L_t on the first ``n_measure`` examples after every step while c_loss is undecided, then after the last step only.
The sharpness is not tracked (c_sharp is the study's constant of plain SGD only). The records have the engine's run
columns, so :func:`helpers.analysis.phases.critical_constants` reads c_loss and c_max from them."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from helpers.diagnosis.edges import OptimizerFactory, make_optimizer
from helpers.nets.losses import Loss
from helpers.rules import DIVERGE_LOSS, diverged, not_recovered
from helpers.sweeps.training import Policy


def in_chunks(model: nn.Module, x: torch.Tensor, chunk: int = 512) -> Iterator[tuple[slice, torch.Tensor]]:
    """``model``'s outputs on ``x`` in chunks of ``chunk`` examples, without gradients: (rows, outputs) per chunk."""
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            rows = slice(i, i + chunk)
            yield rows, model(x[rows])


def mean_loss(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor, chunk: int = 512) -> float:
    """The mean loss over (x, y), in chunks (the loss is a mean over its batch)."""
    return sum(float(loss(out, y[rows])) * len(out) for rows, out in in_chunks(model, x, chunk)) / len(x)


@dataclass(frozen=True)
class OptimizerRuns:
    """The runs of one initialization ``model`` with the optimizer ``factory`` built fresh per run, at η = c/``edge``
    (the edge sharpness), on ``batches`` (one index tensor per step) of (``x``, ``y``); L_t measured on the first
    ``n_measure`` examples. A run diverges when a loss is not finite or above ``diverge_loss``, or (``held``) when its
    loss is still ≥ held·L_0 after the last step."""

    model: nn.Module
    factory: OptimizerFactory
    loss: Loss
    x: torch.Tensor
    y: torch.Tensor
    batches: Sequence[torch.Tensor]
    edge: float
    seed: int
    n_measure: int
    held: float | None
    diverge_loss: float = DIVERGE_LOSS

    @functools.cached_property
    def loss0(self) -> float:
        """L_0 at θ₀ on the measurement examples: the same for every run, measured once."""
        return mean_loss(self.model, self.loss, self.x[: self.n_measure], self.y[: self.n_measure])

    def run(self, lr: float, every_step: bool) -> list[dict]:
        """One run from a copy of the model at learning rate ``lr``: a record per step (L_t — at every step, or with
        ``every_step=False`` only after the last, NaN before —, the minibatch loss of step t, whether it diverged)."""
        model, loss0 = copy.deepcopy(self.model), self.loss0
        optimizer = make_optimizer(self.factory, model.parameters(), lr)
        xs, ys = self.x[: self.n_measure], self.y[: self.n_measure]
        records = [dict(step=0, loss=loss0, batch_loss=math.nan, diverged=False)]
        for step, index in enumerate(self.batches, 1):
            optimizer.zero_grad()
            value = self.loss(model(self.x[index]), self.y[index])
            batch_loss = float(value.detach())
            if diverged(batch_loss, self.diverge_loss):
                records.append(dict(step=step, loss=math.nan, batch_loss=batch_loss, diverged=True))
                break
            value.backward()
            optimizer.step()
            measured = every_step or step == len(self.batches)
            current = mean_loss(model, self.loss, xs, ys) if measured else math.nan
            records.append(dict(step=step, loss=current, batch_loss=batch_loss,
                                diverged=measured and diverged(current, self.diverge_loss)))
            if records[-1]["diverged"]:
                break
        last = records[-1]
        if not last["diverged"] and not_recovered(last["loss"], loss0, self.held):
            last["diverged"] = True
        return [dict(r, loss0=loss0) for r in records]

    def __call__(self, chunk: list[float], policy: Policy) -> tuple[list[dict], list[dict]]:
        """The runs at the c of ``chunk``, measuring L_t as ``policy.loss`` asks (the sharpness never): the engine's
        run records, and no interpolation."""
        records = []
        for c in chunk:
            lr = c / self.edge
            records += [dict(r, seed=self.seed, c=c, lr=lr, sharpness=math.nan, sharpness0=self.edge, products=0,
                             converged=False)
                        for r in self.run(lr, policy.loss in ("every step", "until c_loss"))]
        return records, []
