"""Independent references for the engine's Hessian-vector products, kept apart from them: the dense Hessian of a small
model, forward-over-reverse products (the study's JAX way) and central finite differences of two gradients. The
tests and ``benchmarks.products`` check :class:`~helpers.curvature.operators.HessianOperator` against them."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from helpers.curvature.operators import flatten, unflatten
from helpers.curvature.stacking import LossFunction


def exact_hessian(loss_fn: LossFunction, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The dense [P, P] Hessian of an unstacked loss, by ``torch.func.hessian`` on the flat parameter vector."""
    like = [p.detach() for p in params]
    flat = flatten(like, 1)[0]

    def on_flat(theta: torch.Tensor) -> torch.Tensor:
        return loss_fn(unflatten(theta.unsqueeze(0), like))

    with warnings.catch_warnings():  # forward mode's first use loads torch decompositions that warn about jit
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
        return torch.func.hessian(on_flat)(flat)


def forward_over_reverse(loss_fn: LossFunction, params: Sequence[torch.Tensor]) -> Callable[[torch.Tensor],
                                                                                            torch.Tensor]:
    """v ↦ H v by ``torch.func.jvp`` of ``torch.func.grad`` (forward-over-reverse, the study's products; no graph is
    kept between products). ``v`` and the result are flat [P] vectors of an unstacked loss."""
    like = [p.detach() for p in params]

    def product(v: torch.Tensor) -> torch.Tensor:
        tangents = tuple(unflatten(v.reshape(1, -1).to(like[0].dtype), like))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
            _, hv = torch.func.jvp(lambda *theta: torch.func.grad(lambda t: loss_fn(list(t)))(theta),
                                   tuple(like), tangents)
        return flatten(hv, 1)[0]

    return product


def finite_difference(loss_fn: LossFunction, params: Sequence[torch.Tensor], step: float = 1e-4) -> Callable[
        [torch.Tensor], torch.Tensor]:
    """v ↦ H v ≈ (∇L(θ + h u) − ∇L(θ − h u)) / 2h · ‖v‖ with u = v/‖v‖ and h = ``step``: central differences of two
    gradients; ``loss_fn`` and ``params`` should be float64 (the rounding error of the difference is ~ε/h). Exact up
    to O(h²) where the loss is smooth along v; a ReLU whose pre-activation changes sign within ±h u adds an error
    of order (its jump in the gradient)/h, so h must be small against the pre-activations (1e-4 here, relative
    error 5e-10 on a tiny Myrtle CNN; 1e-3 already gives 0.5)."""
    like = [p.detach() for p in params]

    def gradient(theta: list[torch.Tensor]) -> torch.Tensor:
        theta = [t.requires_grad_(True) for t in theta]
        return flatten(torch.autograd.grad(loss_fn(theta), theta), 1)[0]

    def product(v: torch.Tensor) -> torch.Tensor:
        v = v.reshape(1, -1).to(like[0].dtype)
        h = step / float(v.norm())  # a step of length ``step`` along v, whatever its norm
        pieces = unflatten(v, like)
        plus = gradient([p + h * d for p, d in zip(like, pieces)])
        minus = gradient([p - h * d for p, d in zip(like, pieces)])
        return (plus - minus) / (2 * h)

    return product
