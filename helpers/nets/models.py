"""The study's networks: FCN (SP/NTP), Myrtle CNN, ResNet-18/34 without normalization, and the uv model.

Every model draws its initial weights from a seeded CPU generator in a fixed order, so one seed gives the same
network on every device. The last linear layer of every network is its ``readout`` attribute.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

PARAMETERIZATIONS = ("sp", "ntp")
MYRTLE_POOLS = {5: (1, 2, 3), 7: (1, 3, 5), 10: (2, 5, 8)}
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
RESNET_INITS = {"lecun": 1.0, "he": 2.0}  # σ² of every convolution: the study's code (Flax default) uses LeCun


def _normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape, generator=gen) * std)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class Dense(nn.Module):
    """y = s·W x (+ b). SP: W ~ N(0, σ²/fan_in), s = 1. NTP: W ~ N(0, 1), s = √(σ²/fan_in). b starts at 0."""

    def __init__(self, fan_in: int, fan_out: int, sigma2: float, parameterization: str, bias: bool,
                 gen: torch.Generator) -> None:
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
        std = math.sqrt(sigma2 / fan_in)
        ntp = parameterization == "ntp"
        self.weight = _normal((fan_out, fan_in), 1.0 if ntp else std, gen)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None
        self.scale = std if ntp else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale if self.scale != 1.0 else self.weight, self.bias)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` [N, C, H, W] with its values stored as [N, H, W, C] (a permuted copy: unlike
    ``contiguous(memory_format=...)`` it also works under ``torch.func`` transforms)."""
    return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


class Conv(nn.Module):
    """Same-padded k×k convolution without bias, He initialization W ~ N(0, σ²/(k²·C_in)).

    ``channels_last=True`` computes in the channels-last layout on a CPU (oneDNN's fast path; ``benchmarks/slicing.py``
    measures it together with slicing; the same values up to float32 rounding). The Myrtle
    CNN's 3×3 stride-1 convolutions use it; the ResNet's do not: with one thread, torch 2.14's channels-last
    backward of a 1×1 stride-2 convolution corrupts memory.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, gen: torch.Generator, stride: int = 1,
                 sigma2: float = 2.0, channels_last: bool = False) -> None:
        super().__init__()
        self.weight = _normal((c_out, c_in, kernel, kernel), math.sqrt(sigma2 / (kernel * kernel * c_in)), gen)
        self.stride = stride
        self.padding = kernel // 2
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.channels_last and x.device.type == "cpu":
            x, weight = _channels_last(x), _channels_last(weight)
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding)


class FCN(nn.Module):
    """Fully connected ReLU network: (depth − 1) hidden layers of ``width`` (σ² = 2), a linear readout (σ² = 1)."""

    def __init__(self, in_features: int, depth: int, width: int, num_classes: int = 10,
                 parameterization: str = "sp", bias: bool = False, seed: int = 0) -> None:
        super().__init__()
        _check_positive(in_features=in_features, depth=depth, width=width, num_classes=num_classes)
        gen = torch.Generator().manual_seed(seed)
        fans = [in_features] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(
            Dense(fan_in, width, 2.0, parameterization, bias, gen) for fan_in in fans[:-1]
        )
        self.readout = Dense(fans[-1], num_classes, 1.0, parameterization, bias, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.readout(h)


class MyrtleCNN(nn.Module):
    """Myrtle CNN: (depth − 1) ReLU 3×3 convolutions of ``width`` channels with 2×2 average pools, linear readout."""

    def __init__(self, in_channels: int, depth: int, width: int, image_size: int = 32, num_classes: int = 10,
                 seed: int = 0) -> None:
        super().__init__()
        if depth not in MYRTLE_POOLS:
            raise ValueError(f"Myrtle CNN depth must be one of {sorted(MYRTLE_POOLS)}, got {depth!r}")
        _check_positive(in_channels=in_channels, width=width, image_size=image_size, num_classes=num_classes)
        gen = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList(Conv(in_channels if i == 0 else width, width, 3, gen, channels_last=True)
                                   for i in range(depth - 1))
        self.pool_after = MYRTLE_POOLS[depth]
        size = image_size // 8
        self.final_pools = 0
        while size > 1:
            size //= 2
            self.final_pools += 1
        self.readout = Dense(width, num_classes, 1.0, "sp", False, gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i in self.pool_after:
                h = F.avg_pool2d(h, 2)
        for _ in range(self.final_pools):
            h = F.avg_pool2d(h, 2)
        return self.readout(h.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """ResNet v1 basic block without normalization: relu(conv(relu(conv(x))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int, gen: torch.Generator, sigma2: float = 2.0) -> None:
        super().__init__()
        self.conv1 = Conv(c_in, c_out, 3, gen, stride=stride, sigma2=sigma2)
        self.conv2 = Conv(c_out, c_out, 3, gen, sigma2=sigma2)
        self.shortcut = (Conv(c_in, c_out, 1, gen, stride=stride, sigma2=sigma2)
                         if (stride != 1 or c_in != c_out) else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + skip)


class ResNet(nn.Module):
    """ResNet-18/34 v1 without normalization; ``width`` = channels of the first stage (w, 2w, 4w, 8w).

    ``init="lecun"`` (the study's code): every convolution N(0, 1/fan_in) and a readout with a bias (starting at 0);
    ``init="he"``: convolutions N(0, 2/fan_in) and no readout bias, like the FCN and Myrtle networks.
    """

    def __init__(self, in_channels: int, depth: int, width: int, num_classes: int = 10, seed: int = 0,
                 init: str = "lecun") -> None:
        super().__init__()
        if depth not in RESNET_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BLOCKS)}, got {depth!r}")
        if init not in RESNET_INITS:
            raise ValueError(f"ResNet init must be one of {sorted(RESNET_INITS)}, got {init!r}")
        _check_positive(in_channels=in_channels, width=width, num_classes=num_classes)
        gen = torch.Generator().manual_seed(seed)
        sigma2 = RESNET_INITS[init]
        self.stem = Conv(in_channels, width, 7, gen, stride=2, sigma2=sigma2)
        blocks, c_in = [], width
        for stage, count in enumerate(RESNET_BLOCKS[depth]):
            c_out = width * 2**stage
            for b in range(count):
                blocks.append(BasicBlock(c_in, c_out, 2 if (b == 0 and stage > 0) else 1, gen, sigma2))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.readout = Dense(c_in, num_classes, 1.0, "sp", init == "lecun", gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.stem(x)), 3, stride=2, padding=1)
        return self.readout(self.blocks(h).mean(dim=(2, 3)))


class UV(nn.Module):
    """The uv model f(x) = vᵀu · x / √w with u, v ∈ ℝ^w, entries N(0, 1)."""

    def __init__(self, width: int, seed: int = 0) -> None:
        super().__init__()
        _check_positive(width=width)
        gen = torch.Generator().manual_seed(seed)
        self.u = _normal((width,), 1.0, gen)
        self.v = _normal((width,), 1.0, gen)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.u @ self.v) * x / math.sqrt(self.width)
