"""The registry of model families, a model specification validated against it, and the function that builds it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from helpers.core.device import resolve_device
from helpers.nets.models import FCN, MYRTLE_POOLS, PARAMETERIZATIONS, RESNET_BLOCKS, RESNET_INITS, UV, MyrtleCNN, ResNet
from helpers.nets.outputs import Centered, alpha_scaled, width_scaled, zero_last_layer


@dataclass(frozen=True)
class Architecture:
    """A model family: how to build it for inputs of shape (C, H, W), and which depths and parameterizations exist."""

    build: Callable[[ModelSpec, tuple[int, ...], int, int], nn.Module]
    depths: tuple[int, ...] | None = None  # None: any positive depth
    parameterizations: tuple[str, ...] = ("sp",)
    inits: tuple[str, ...] = ("study",)  # "study": the study's initialization of this family
    needs: str = "any input shape"


def _fcn(spec: ModelSpec, shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    return FCN(math.prod(shape), spec.depth, spec.width, classes, spec.parameterization, spec.bias, seed)


def _myrtle(spec: ModelSpec, shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    return MyrtleCNN(shape[0], spec.depth, spec.width, shape[-1], classes, seed)


def _resnet(spec: ModelSpec, shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    return ResNet(shape[0], spec.depth, spec.width, classes, seed, init="lecun" if spec.init == "study" else spec.init)


def _uv(spec: ModelSpec, shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    return UV(spec.width, seed)


REGISTRY: dict[str, Architecture] = {
    "fcn": Architecture(_fcn, parameterizations=PARAMETERIZATIONS),
    "myrtle": Architecture(_myrtle, depths=tuple(sorted(MYRTLE_POOLS)), needs="images (C, H, W)"),
    "resnet": Architecture(_resnet, depths=tuple(sorted(RESNET_BLOCKS)), inits=("study", *RESNET_INITS),
                           needs="images (C, H, W)"),
    "uv": Architecture(_uv, depths=(2,), needs="scalar inputs x [n, 1]"),
}
ARCHITECTURES = tuple(REGISTRY)
OUTPUTS = ("standard", "zero-last-layer", "centered", "alpha", "width-scaled")


@dataclass(frozen=True)
class ModelSpec:
    """What defines a network: architecture, depth d, width w, parameterization, bias, output variant.

    ``output_value`` is α for ``output="alpha"`` and the exponent s for ``output="width-scaled"`` (f / w^s).
    ``init`` is ``"study"`` (each family as the study initializes it: He for FCN and Myrtle, LeCun with a readout
    bias for ResNet, as in the study's code) or, for ResNet, ``"he"`` or ``"lecun"``.
    """

    arch: str = "fcn"
    depth: int = 4
    width: int = 512
    parameterization: str = "sp"
    bias: bool = False
    output: str = "standard"
    output_value: float | None = None
    init: str = "study"

    def __post_init__(self) -> None:
        if self.arch not in REGISTRY:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {ARCHITECTURES}")
        family = REGISTRY[self.arch]
        for name in ("depth", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if family.depths is not None and self.depth not in family.depths:
            raise ValueError(f"arch={self.arch!r} has depths {list(family.depths)}, got depth={self.depth}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {self.parameterization!r}")
        if self.parameterization not in family.parameterizations:
            raise ValueError(f"arch={self.arch!r} is implemented in parameterizations "
                             f"{list(family.parameterizations)}, got {self.parameterization!r}")
        if self.init not in family.inits:
            raise ValueError(f"arch={self.arch!r} has inits {list(family.inits)}, got init={self.init!r}")
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
    model = REGISTRY[spec.arch].build(spec, tuple(input_shape), num_classes, seed).to(target)
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
