"""Losses, gradients and Hessian graphs of many examples, computed slice by slice.

On a CPU a convolutional network's activations for a few thousand images (e.g. 2560 × 16 channels × 28 × 28 floats,
128 MB) do not fit in the caches, and every elementwise step streams them through memory: the same loss computed
over slices of 64–256 images (with channels-last convolutions) is 2.5–2.9× faster (``benchmarks/slicing.py``). A
slice's share of a mean loss is its mean times its share of the examples, so the sliced value is the same number up
to float32 rounding; one slice (the whole set) computes exactly what an unsliced call does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from helpers.curvature.stacking import Forward, LossFunction, per_model_loss
from helpers.nets.losses import Loss

SLICE_BYTES = 8 * 2**20  # the largest activation of one slice, about the size of a core's share of the L3 cache


def largest_activation(model: nn.Module, example: torch.Tensor) -> int:
    """The number of values of the largest tensor that ``model``'s leaf modules (or its input) hold for ``example``
    (one example, with its batch axis)."""
    sizes = [example.numel()]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel() if torch.is_tensor(out) else 0))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return max(sizes)


def slice_size(model: nn.Module, example: torch.Tensor, models: int = 1, budget: int = SLICE_BYTES) -> int | None:
    """Examples per slice for ``models`` stacked copies of ``model`` (None: no slicing). On a CPU, the largest
    power of two whose largest activation fits in ``budget`` bytes (at least 16); on a GPU, None (it wants large
    batches); None too for a model that normalizes by batch statistics (its loss on a slice is another function)."""
    if example.device.type != "cpu" or any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                                           for m in model.modules()):
        return None
    value_bytes = next(model.parameters()).element_size()
    per_example = largest_activation(model, example[:1]) * value_bytes * models
    return max(16, 2 ** math.floor(math.log2(budget / per_example)))


def spans(n: int, size: int | None) -> list[tuple[int, int]]:
    """Consecutive ranges [a, b) of at most ``size`` examples covering n (one range when ``size`` is None)."""
    step = n if size is None or size >= n else size
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def loss_pieces(loss: Loss, forward: Forward, x: torch.Tensor, y: torch.Tensor,
                size: int | None) -> list[LossFunction]:
    """Functions θ ↦ (n_i/n) Σ_m L(f(x_i; θ_m), y_i), one per slice i, that sum to θ ↦ Σ_m L(f(x; θ_m), y)."""
    n = len(x)

    def piece(a: int, b: int) -> LossFunction:
        weight = (b - a) / n
        return lambda theta: per_model_loss(loss, forward(theta, x[a:b]), y[a:b]).sum() * weight

    return [piece(a, b) for a, b in spans(n, size)]


def sliced_losses(loss: Loss, forward: Forward, theta: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                  size: int | None) -> torch.Tensor:
    """The loss of each model of a stack on (x, y), [M], without gradients, slice by slice."""
    n = len(x)
    with torch.no_grad():
        parts = [per_model_loss(loss, forward(theta, x[a:b]), y[a:b]) * ((b - a) / n) for a, b in spans(n, size)]
    return parts[0] if len(parts) == 1 else torch.stack(parts).sum(dim=0)


def losses_and_gradient(loss: Loss, forward: Forward, params: Sequence[torch.Tensor], x: torch.Tensor,
                        y: torch.Tensor, size: int | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss of each model of a stack on (x, y), [M] (detached), and the gradient of their sum, slice by slice."""
    theta = [p.detach().requires_grad_(True) for p in params]
    n, total, grads = len(x), None, None
    for a, b in spans(n, size):
        part = per_model_loss(loss, forward(theta, x[a:b]), y[a:b]) * ((b - a) / n)
        g = torch.autograd.grad(part.sum(), theta)
        total = part.detach() if total is None else total + part.detach()
        grads = list(g) if grads is None else [s + t for s, t in zip(grads, g)]
    return total, grads
