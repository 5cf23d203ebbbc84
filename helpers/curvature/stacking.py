"""A stack of M same-shaped networks trained as one: parameters stacked along a leading axis, a forward that maps
every model over the same inputs (``torch.func.vmap``), and the loss Σ_m L_m, whose Hessian is block diagonal
(one Hessian-vector product serves all M models)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from helpers.nets.losses import Loss

LossFunction = Callable[[Sequence[torch.Tensor]], torch.Tensor]
Forward = Callable[[Sequence[torch.Tensor], torch.Tensor], torch.Tensor]


def stack_models(models: Sequence[nn.Module]) -> tuple[list[torch.Tensor], Forward]:
    """Stacked parameters [M, ...] of same-shaped ``models`` and the stacked forward (θ, x) ↦ f(x; θ_m) [M, n, k]."""
    params, buffers = stack_module_state(list(models))
    names = list(params)
    base = copy.deepcopy(models[0]).to("meta")

    def one(theta: dict, state: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (theta, state), (x,))

    single = {n: t[0] for n, t in buffers.items()} if len(models) == 1 else None

    def forward(theta: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if single is not None:  # one model: a plain call on its [1, ...] slices (vmap's batching costs ~20 % here)
            return one({n: t[0] for n, t in zip(names, theta)}, single, x).unsqueeze(0)
        return vmap(one, in_dims=(0, 0, None))(dict(zip(names, theta)), buffers, x)

    return [params[n].detach() for n in names], forward


def per_model_loss(loss: Loss, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of each model in a stack: outputs [M, n, k], labels [n, k] → [M]."""
    if outputs.shape[0] == 1:
        return loss(outputs[0], y).unsqueeze(0)
    return vmap(loss, in_dims=(0, None))(outputs, y)


def stacked_loss(models: Sequence[nn.Module], loss: Loss, x: torch.Tensor, y: torch.Tensor) -> tuple[
        list[torch.Tensor], LossFunction]:
    """Stacked parameters [M, ...] of same-shaped ``models`` and the function θ ↦ Σ_m L(f(x; θ_m), y)."""
    params, forward = stack_models(models)
    return params, lambda theta: per_model_loss(loss, forward(theta, x), y).sum()
