"""Output variants that wrap any model: last layer zero at init, centered, fixed output scale, width-scaled."""

from __future__ import annotations

import copy

import torch
from torch import nn

ZERO_OUTPUTS = ("centered", "zero-last-layer")  # the variants whose output is zero at initialization


def zero_last_layer(model: nn.Module) -> nn.Module:
    """Set the readout's weights (and bias) to zero in place, so that f(x; θ₀) = 0; return the model."""
    readout = getattr(model, "readout", None)
    if readout is None:
        raise ValueError(f"{type(model).__name__} has no `readout` layer to set to zero")
    with torch.no_grad():
        for p in readout.parameters():
            p.zero_()
    return model


def _frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters are buffers: it moves with the model but is never trained."""
    frozen = copy.deepcopy(model)
    for module in frozen.modules():
        for name, p in list(module._parameters.items()):
            del module._parameters[name]
            module.register_buffer(name, None if p is None else p.detach())
    return frozen


class Centered(nn.Module):
    """The centered network f(x; θ) − f(x; θ₀), with θ₀ a frozen copy of the initial parameters."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.initial = _frozen_copy(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) - self.initial(x)


class Scaled(nn.Module):
    """The network times a fixed constant: f(x) ↦ k · f(x)."""

    def __init__(self, model: nn.Module, factor: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("factor", torch.tensor(float(factor)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * self.model(x)


def output_norm(model: nn.Module, x: torch.Tensor) -> float:
    """Root mean square over examples of the per-example output norm, √(mean_i ‖f(x_i)‖²)."""
    with torch.no_grad():
        return model(x).pow(2).sum(dim=1).mean().sqrt().item()


def alpha_scaled(model: nn.Module, alpha: float, reference_x: torch.Tensor) -> Scaled:
    """Fixed output scale: f ↦ α · f / ‖f₀‖, so that the output norm on ``reference_x`` at init is α."""
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    norm = output_norm(model, reference_x)
    if norm == 0:
        raise ValueError("the network's output is zero at initialization; it cannot be scaled to norm alpha")
    return Scaled(model, alpha / norm)


def width_scaled(model: nn.Module, width: int, s: float) -> Scaled:
    """Width-scaled output f ↦ f / w^s (s = −½ lazy, 0 standard, +½ rich)."""
    return Scaled(model, float(width) ** (-s))
