"""The edge of stability of an optimizer, as a sharpness s: the diagnosis trains at η = c/s, so that c = 2 is where
the optimizer's step stops being stable on a quadratic whose curvature is s's — for plain SGD, s = λ^H_0 and c is
the study's. Three edges:

- ``hessian``: λ^H_0 (top eigenvalue of the Hessian) scaled by SGD's momentum β, dampening d and Nesterov flag as
  PyTorch defines them (heavy ball: stable while η(1 − d)λ < 2 + 2β; Nesterov: while ηλ < (2 + 2β)/(1 + 2β)):
  s = λ^H_0 (1 − d)/(1 + β), or λ^H_0 (1 + 2β)/(1 + β) with Nesterov. Plain SGD: s = λ^H_0.
- ``preconditioned``: Adam's and AdamW's, λ_max(P^-1 H) with P = diag(√v̂ + ε) the preconditioner after the first
  step (v̂ = g², g the gradient at θ₀), scaled by (1 − β₁)/(1 + β₁): full-batch Adam is stable while
  η λ_max(P^-1 H) < (2 + 2β₁)/(1 − β₁) (= 38 at β₁ = 0.9; Cohen et al. 2022), with P held fixed.
- ``critical``: any optimizer's, Hessian-free: the smallest η whose first step θ₀ + η Δ (Δ: the optimizer's own
  first update at unit learning rate) raises the loss, η_c, as s = 2/η_c — for gradient descent on a quadratic,
  s is the curvature along the gradient, gᵀHg/gᵀg ≤ λ^H_0. Found by a line search of forward passes.

Every optimizer step here is linear in the learning rate (SGD, Adam, AdamW, RMSprop, Adagrad are).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from helpers.curvature.operators import HessianOperator, lanczos
from helpers.nets.losses import Loss

OptimizerFactory = Callable[[object], torch.optim.Optimizer]
EDGES = ("hessian", "preconditioned", "critical")
ADAM_FAMILY = (torch.optim.Adam, torch.optim.AdamW)


def check_factory(factory) -> None:
    """One clear line for an optimizer passed as an instance (it is bound to other parameters) or not callable."""
    example = "e.g. optimizer=lambda params: torch.optim.Adam(params)"
    if isinstance(factory, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a factory that builds the optimizer from parameters, not a "
                        f"{type(factory).__name__} instance (it holds another model's parameters): {example}")
    if not callable(factory):
        raise TypeError(f"optimizer must be a callable params → torch.optim.Optimizer, got "
                        f"{type(factory).__name__}: {example}")


def make_optimizer(factory: OptimizerFactory, params, lr: float) -> torch.optim.Optimizer:
    """``factory(params)`` with every parameter group's learning rate set to ``lr``."""
    check_factory(factory)
    optimizer = factory(params)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must build a torch.optim.Optimizer from parameters, got {type(optimizer).__name__}")
    for group in optimizer.param_groups:
        group["lr"] = lr
    return optimizer


@dataclass(frozen=True)
class OptimizerIdentity:
    """Which optimizer a diagnosis trained with: its class name and the settings that move its edge. Printed as
    ``SGD (momentum 0.9)``, ``Adam (β₁ 0.9, β₂ 0.999)``, or ``plain SGD`` (no momentum, no weight decay)."""

    name: str = "SGD"
    momentum: float = 0.0
    nesterov: bool = False
    dampening: float = 0.0
    betas: tuple[float, float] | None = None
    weight_decay: float = 0.0

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer) -> OptimizerIdentity:
        """The identity of a built optimizer, read from its first parameter group."""
        group = optimizer.param_groups[0]
        return cls(type(optimizer).__name__, float(group.get("momentum", 0.0) or 0.0), bool(group.get("nesterov")),
                   float(group.get("dampening", 0.0) or 0.0),
                   tuple(map(float, group["betas"])) if isinstance(optimizer, ADAM_FAMILY) else None,
                   float(group.get("weight_decay", 0.0) or 0.0))

    @property
    def plain_sgd(self) -> bool:
        """The study's optimizer: SGD without momentum or weight decay."""
        return self.name == "SGD" and not (self.momentum or self.weight_decay)

    def __str__(self) -> str:
        if self.plain_sgd and not self.dampening:
            return "plain SGD"
        settings = []
        if self.name == "SGD":
            settings += [f"momentum {self.momentum:g}"] if self.momentum else ["no momentum"]
            settings += ["Nesterov"] if self.nesterov else []
            settings += [f"dampening {self.dampening:g}"] if self.dampening else []
        if self.betas is not None:
            settings.append(f"β₁ {self.betas[0]:g}, β₂ {self.betas[1]:g}")
        if self.weight_decay:
            settings.append(f"weight decay {self.weight_decay:g}")
        return f"{self.name} ({', '.join(settings)})" if settings else self.name


PLAIN_SGD = OptimizerIdentity()


def default_edge(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer's own edge: ``hessian`` for SGD, ``preconditioned`` for Adam and AdamW, else ``critical``."""
    if isinstance(optimizer, torch.optim.SGD):
        return "hessian"
    return "preconditioned" if isinstance(optimizer, ADAM_FAMILY) else "critical"


def momentum_scale(optimizer: torch.optim.Optimizer) -> float:
    """s/λ^H_0 for SGD: (1 − d)/(1 + β), or (1 + 2β)/(1 + β) with Nesterov (1 for plain SGD)."""
    if not isinstance(optimizer, torch.optim.SGD):
        raise ValueError(f"edge='hessian' is SGD's; {type(optimizer).__name__} has edge 'preconditioned' (Adam, AdamW) "
                         "or 'critical' (any optimizer)")
    group = optimizer.param_groups[0]
    beta, damp = group["momentum"], group.get("dampening", 0.0)
    return (1 + 2 * beta) / (1 + beta) if group.get("nesterov") else (1 - damp) / (1 + beta)


class Preconditioned:
    """v ↦ D H D v with D = P^-1/2: the symmetric form of P^-1 H (same eigenvalues), for :func:`lanczos`."""

    def __init__(self, op: HessianOperator, scale: torch.Tensor) -> None:
        self.op, self.scale = op, scale.reshape(1, -1)
        self.batch, self.dim, self.device = op.batch, op.dim, op.device

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op(self.scale * v)

    def squeeze(self, t: torch.Tensor) -> torch.Tensor:
        return self.op.squeeze(t)


def preconditioned_sharpness(op: HessianOperator, optimizer: torch.optim.Optimizer, seed: int = 0,
                             tol: float = 1e-4) -> float:
    """Adam's edge sharpness at θ₀: λ_max(P^-1 H)·(1 − β₁)/(1 + β₁), P = diag(abs(g) + ε)
    (:mod:`helpers.diagnosis.edges`),
    by Lanczos to the relative tolerance ``tol``."""
    if not isinstance(optimizer, ADAM_FAMILY):
        raise ValueError(f"edge='preconditioned' is Adam's and AdamW's, not {type(optimizer).__name__}'s; use "
                         "edge='critical' for any optimizer")
    beta1, eps = optimizer.param_groups[0]["betas"][0], optimizer.param_groups[0]["eps"]
    top = lanczos(Preconditioned(op, (op.gradient.abs() + eps).rsqrt()), seed=seed, tol=tol)
    return float(top.eigenvalue) * (1 - beta1) / (1 + beta1)


def first_update(model: nn.Module, factory: OptimizerFactory, loss: Loss, x: torch.Tensor, y: torch.Tensor
                 ) -> list[torch.Tensor]:
    """Δ: the change the optimizer's first step at learning rate 1 makes to ``model``'s parameters on (x, y)
    (a copy steps; the model is untouched)."""
    probe = copy.deepcopy(model)
    optimizer = make_optimizer(factory, probe.parameters(), 1.0)
    before = [p.detach().clone() for p in probe.parameters()]
    optimizer.zero_grad()
    loss(probe(x), y).backward()
    optimizer.step()
    return [p.detach() - b for p, b in zip(probe.parameters(), before)]


@dataclass(frozen=True)
class LineSearch:
    """The critical learning rate η_c along Δ, bracketed to a relative width ``precision``, and forward passes used."""

    lr: float
    forward_passes: int

    @property
    def sharpness(self) -> float:
        return 2.0 / self.lr


def critical_lr(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor, update: list[torch.Tensor],
                precision: float = 0.01) -> LineSearch:
    """The smallest η on a doubling ladder whose step θ + ηΔ raises the loss on (x, y), refined by bisection (in
    log η) to ``precision``: the loss is below L(θ) at the bracket's low end and above at its high end (the first
    such crossing from small η)."""
    names = [name for name, _ in model.named_parameters()]
    theta = [p.detach() for p in model.parameters()]
    count = 0

    def loss_at(lr: float) -> float:
        nonlocal count
        count += 1
        with torch.no_grad():
            point = {n: t + lr * d for n, t, d in zip(names, theta, update)}
            return float(loss(functional_call(model, point, (x,)), y))

    base = loss_at(0.0)
    norm = math.sqrt(sum(float(d.pow(2).sum()) for d in update))
    if not norm:
        raise ValueError("the optimizer's first update is zero: the loss has no gradient at θ₀")
    size = math.sqrt(sum(float(t.pow(2).sum()) for t in theta)) or 1.0
    low = 1e-4 * size / norm                    # a step of 1e-4 of |θ|: below the loss at θ for a descent direction
    while loss_at(low) >= base:
        low /= 4
        if low * norm < 1e-9 * size:
            raise ValueError("the optimizer's first update does not lower the loss at any small step: no critical "
                             "learning rate (is the update a descent direction?)")
    high = 2 * low
    while loss_at(high) <= base:
        low, high = high, 2 * high
        if high * norm > 1e6 * size:
            return LineSearch(math.inf, count)
    while high / low > 1 + precision:
        middle = math.sqrt(low * high)
        low, high = (middle, high) if loss_at(middle) <= base else (low, middle)
    return LineSearch(high, count)
