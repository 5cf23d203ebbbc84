"""A model specification, validated at construction, and the one function that builds it on a device."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from helpers.device import resolve_device
from helpers.models import FCN, PARAMETERIZATIONS, UV, MyrtleCNN, ResNet
from helpers.outputs import Centered, alpha_scaled, width_scaled, zero_last_layer

ARCHITECTURES = ("fcn", "myrtle", "resnet", "uv")
OUTPUTS = ("standard", "zero-last-layer", "centered", "alpha", "width-scaled")


@dataclass(frozen=True)
class ModelSpec:
    """What defines a network: architecture, depth d, width w, parameterization, bias, output variant.

    ``output_value`` is α for ``output="alpha"`` and the exponent s for ``output="width-scaled"`` (f / w^s).
    """

    arch: str = "fcn"
    depth: int = 4
    width: int = 512
    parameterization: str = "sp"
    bias: bool = False
    output: str = "standard"
    output_value: float | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {ARCHITECTURES}")
        for name in ("depth", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {self.parameterization!r}")
        if self.parameterization == "ntp" and self.arch != "fcn":
            raise ValueError("the NTK parameterization is implemented for arch='fcn' only")
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output variant {self.output!r}; choose one of {OUTPUTS}")
        if self.output in ("alpha", "width-scaled") and self.output_value is None:
            raise ValueError(f"output={self.output!r} needs output_value (alpha, or the exponent s)")

    @property
    def variant(self) -> str:
        """The output variant as a label: ``standard``, ``centered``, ``alpha=10``, ``width-scaled s=0.5``, …"""
        if self.output == "alpha":
            return f"alpha={self.output_value:g}"
        if self.output == "width-scaled":
            return f"width-scaled s={self.output_value:g}"
        return self.output

    def as_dict(self) -> dict:
        """The spec as a plain dict (for storing with results)."""
        return asdict(self)


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], *, seed: int, num_classes: int = 10,
                device: str | torch.device | None = None, reference_x: torch.Tensor | None = None) -> nn.Module:
    """Build ``spec`` for inputs of shape ``input_shape`` (C, H, W), initialized from ``seed``, on ``device``.

    ``reference_x`` (inputs on any device) sets the output norm for ``output="alpha"``.
    """
    target = resolve_device(device)
    channels, size = input_shape[0], input_shape[-1]
    if spec.arch == "fcn":
        in_features = 1
        for n in input_shape:
            in_features *= n
        model: nn.Module = FCN(in_features, spec.depth, spec.width, num_classes, spec.parameterization, spec.bias,
                               seed)
    elif spec.arch == "myrtle":
        model = MyrtleCNN(channels, spec.depth, spec.width, size, num_classes, seed)
    elif spec.arch == "resnet":
        model = ResNet(channels, spec.depth, spec.width, num_classes, seed)
    else:
        model = UV(spec.width, seed)
    model = model.to(target)
    if spec.output == "zero-last-layer":
        model = zero_last_layer(model)
    elif spec.output == "centered":
        model = Centered(model)
    elif spec.output == "alpha":
        if reference_x is None:
            raise ValueError("output='alpha' needs reference_x, the inputs on which the output norm is α")
        model = alpha_scaled(model, float(spec.output_value), reference_x.to(target))
    elif spec.output == "width-scaled":
        model = width_scaled(model, spec.width, float(spec.output_value))
    return model.to(target)
