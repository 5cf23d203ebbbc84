"""The two losses of the study, both averaged over the batch."""

from __future__ import annotations

from collections.abc import Callable

import torch

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = ½ · mean over batch and classes of (f − y)²."""
    return 0.5 * (f - y).pow(2).mean()


def cross_entropy(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = mean over batch of −Σ_k y_k log softmax(f)_k; ``y`` one-hot (or probabilities) [B, k], or integer class
    labels [B] as ``nn.CrossEntropyLoss`` takes them."""
    if not y.is_floating_point():
        return torch.nn.functional.cross_entropy(f, y)
    return -(y * torch.log_softmax(f, dim=-1)).sum(dim=-1).mean()


LOSSES: dict[str, Loss] = {"mse": mse, "xent": cross_entropy}


def get_loss(name: str) -> Loss:
    """Return the loss called ``name`` (``mse`` or ``xent``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
