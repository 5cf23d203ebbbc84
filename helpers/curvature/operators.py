"""Curvature of the training loss from Hessian-vector products: top eigenvalue, trace, Frobenius norm.

A :class:`HessianOperator` computes v ↦ H v at one parameter point, for one model or for a stack of M
independent models (:mod:`helpers.curvature.stacking`: parameters stacked along a leading axis, loss Σ_m L_m, so H is
block diagonal and one product serves all M). Vectors are always [M, P]; results for an unstacked operator have the M
axis removed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from helpers.core.device import generator
from helpers.nets.losses import Loss
from helpers.curvature.stacking import LossFunction


def flatten(tensors: Sequence[torch.Tensor], batch: int) -> torch.Tensor:
    """Concatenate tensors with a leading axis of size ``batch`` into one [batch, P] matrix."""
    return torch.cat([t.reshape(batch, -1) for t in tensors], dim=1)


def unflatten(vec: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a [batch, P] matrix into tensors shaped like ``like``."""
    sizes = [t.numel() // vec.shape[0] for t in like]
    return [piece.reshape(t.shape) for piece, t in zip(vec.split(sizes, dim=1), like)]


def model_loss(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor],
                                                                                      LossFunction]:
    """The parameters θ of ``model`` and the function θ ↦ L(f(x; θ), y)."""
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach() for _, p in model.named_parameters()]

    def fn(theta: Sequence[torch.Tensor]) -> torch.Tensor:
        return loss(functional_call(model, dict(zip(names, theta)), (x,)), y)

    return params, fn


class HessianOperator:
    """v ↦ H v at fixed θ, reusing retained double-backward graphs for every product: H v = ∂(∇L·v)/∂θ.

    ``loss_fn`` is θ ↦ L, or a list of functions whose sum is L (e.g. one per slice of the examples, see
    :mod:`helpers.curvature.slicing`): each keeps its own graph and H v is the sum of their products.
    """

    def __init__(self, loss_fn: LossFunction | Sequence[LossFunction], params: Sequence[torch.Tensor],
                 stacked: bool = False) -> None:
        self.params = [p.detach().requires_grad_(True) for p in params]
        self.stacked = stacked
        self.batch = self.params[0].shape[0] if stacked else 1
        self.dim = sum(p.numel() for p in self.params) // self.batch
        pieces = list(loss_fn) if isinstance(loss_fn, Sequence) else [loss_fn]
        if not pieces:
            raise ValueError("no loss function given")
        losses, self.graphs = [], []
        for piece in pieces:
            loss = piece(self.params)
            losses.append(loss.detach())
            self.graphs.append(torch.autograd.grad(loss, self.params, create_graph=True))
        self.loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum(dim=0)
        self.n_products = 0

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def gradient(self) -> torch.Tensor:
        """∇L at θ as a [M, P] matrix."""
        return sum(flatten([g.detach() for g in grads], self.batch) for grads in self.graphs)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Return H v for v of shape [M, P]."""
        pieces = unflatten(v, self.params)
        hv = None
        for grads in self.graphs:
            part = torch.autograd.grad(grads, self.params, grad_outputs=pieces, retain_graph=True)
            hv = list(part) if hv is None else [s + t for s, t in zip(hv, part)]
        self.n_products += 1
        return flatten(hv, self.batch)

    def squeeze(self, t: torch.Tensor) -> torch.Tensor:
        """Drop the leading model axis for an unstacked operator."""
        return t if self.stacked else t[0]


def random_vectors(op: HessianOperator, seed: int, rademacher: bool = False) -> torch.Tensor:
    """Seeded [M, P] random vectors on the operator's device (Gaussian, or ±1 entries)."""
    z = torch.randn(op.batch, op.dim, generator=generator(seed))
    if rademacher:
        z = torch.sign(z)
    return z.to(op.device)


@dataclass
class Eigen:
    """A top eigenpair estimate: eigenvalue, unit eigenvector, residual ‖Hq − λq‖, convergence, products used."""

    eigenvalue: torch.Tensor
    eigenvector: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor
    n_products: int


def lanczos(op: HessianOperator, *, v0: torch.Tensor | None = None, tol: float = 1e-3, max_iter: int = 100,
            seed: int = 0, settled: Callable[[torch.Tensor], torch.Tensor] | None = None, mix: float = 1.0) -> Eigen:
    """Largest algebraic eigenvalue of H by Lanczos with full reorthogonalization.

    Stops when every model's Ritz residual β_k·abs(s_k) ≤ tol·abs(θ) (so abs(θ − λ) ≤ tol·abs(θ) for some eigenvalue λ),
    or after ``max_iter`` products. ``v0`` ([M, P] or [P]) warm-starts the iteration, e.g. from the last step,
    mixed with a seeded random unit vector of relative weight ``mix``: a warm start alone that is (nearly)
    orthogonal to the top eigenvector — the last step's top eigenvector after two eigenvalues crossed — converges
    onto a lower eigenpair, and the random component keeps the top one in reach (``mix=0``: the warm start alone).
    ``settled`` (top Ritz values [M] → bool [M]) marks the models whose question about λ is answered by a lower
    bound (e.g. "λ exceeds a threshold"): the top Ritz value never exceeds λ and only grows with the iterations, so
    such a model stops counting as unconverged at once (its value, a lower bound, is reported unconverged).
    """
    start = random_vectors(op, seed) if v0 is None or mix else None
    if v0 is not None:
        warm = v0.reshape(op.batch, op.dim).to(op.device, torch.float32)
        start = warm / warm.norm(dim=1, keepdim=True) + mix * start / start.norm(dim=1, keepdim=True) if mix else warm
    basis = torch.empty(op.batch, min(max_iter, 8), op.dim, device=op.device)  # grown by doubling, never re-stacked
    basis[:, 0] = start / start.norm(dim=1, keepdim=True)
    alphas, betas = [], []
    tiny = torch.finfo(torch.float32).tiny
    for k in range(max_iter):
        q = basis[:, k]
        w = op(q)
        alpha = torch.linalg.vecdot(w, q)
        alphas.append(alpha)
        # the three-term recurrence, then one full reorthogonalization against the whole basis ("twice is enough")
        w = w - alpha.unsqueeze(1) * q
        if betas:
            w = w - betas[-1].unsqueeze(1) * basis[:, k - 1]
        Q = basis[:, : k + 1]
        w = torch.baddbmm(w.unsqueeze(1), torch.bmm(Q, w.unsqueeze(2)).transpose(1, 2), Q, alpha=-1).squeeze(1)
        beta = w.norm(dim=1)
        T = torch.diag_embed(torch.stack(alphas, dim=1).double())
        if betas:
            off = torch.stack(betas, dim=1).double()
            T = T + torch.diag_embed(off, offset=1) + torch.diag_embed(off, offset=-1)
        blown = ~torch.isfinite(T).flatten(1).all(dim=1)  # a model whose products overflowed (a run blowing up)
        theta, S = torch.linalg.eigh(torch.where(blown.view(-1, 1, 1), torch.zeros_like(T), T))
        top, s = theta[:, -1].masked_fill(blown, math.nan), S[:, :, -1]
        residual = beta.double() * s[:, -1].abs()
        converged = (residual <= tol * top.abs()) & ~blown
        done = converged | settled(top) if settled is not None else converged
        done = done | blown
        if bool(done.all()) or k + 1 == max_iter:
            break
        betas.append(beta)
        if k + 1 == basis.shape[1]:
            basis = torch.cat([basis, torch.empty_like(basis)], dim=1)[:, : max_iter]
        basis[:, k + 1] = w / beta.clamp_min(tiny).unsqueeze(1)
    vec = torch.bmm(s.to(Q.dtype).unsqueeze(1), Q).squeeze(1)
    vec = vec / vec.norm(dim=1, keepdim=True)
    return Eigen(op.squeeze(top.float()), op.squeeze(vec), op.squeeze(residual.float()), op.squeeze(converged),
                 k + 1)


def power_iteration(op: HessianOperator, *, n_iter: int = 20, seed: int = 0) -> Eigen:
    """The paper's estimate: v ← Hv/‖Hv‖ from a random start, λ = vᵀHv at the last step (``n_iter`` products).

    It finds the eigenvalue of largest magnitude, which is the top one only while that one is positive.
    """
    v = random_vectors(op, seed)
    v = v / v.norm(dim=1, keepdim=True)
    for _ in range(n_iter):
        hv = op(v)
        eig = (v * hv).sum(dim=1)
        residual = (hv - eig.unsqueeze(1) * v).norm(dim=1)
        v = hv / hv.norm(dim=1, keepdim=True)
    return Eigen(op.squeeze(eig), op.squeeze(v), op.squeeze(residual), op.squeeze(torch.zeros_like(eig).bool()),
                 n_iter)


@dataclass
class Estimate:
    """A Monte Carlo estimate with its standard error."""

    mean: torch.Tensor
    stderr: torch.Tensor


def _rademacher_moments(op: HessianOperator, n_samples: int, seed: int) -> tuple[Estimate, Estimate]:
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 for a standard error, got {n_samples}")
    quad, sq = [], []
    for i in range(n_samples):
        z = random_vectors(op, seed + i, rademacher=True)
        hz = op(z)
        quad.append((z * hz).sum(dim=1))
        sq.append(hz.pow(2).sum(dim=1))
    out = []
    for samples in (torch.stack(quad), torch.stack(sq)):
        out.append(Estimate(op.squeeze(samples.mean(0)), op.squeeze(samples.std(0) / n_samples**0.5)))
    return out[0], out[1]


def hutchinson_trace(op: HessianOperator, *, n_samples: int = 100, seed: int = 0) -> Estimate:
    """tr H ≈ mean over Rademacher z of zᵀHz."""
    return _rademacher_moments(op, n_samples, seed)[0]


def frobenius_norm_sq(op: HessianOperator, *, n_samples: int = 100, seed: int = 0) -> Estimate:
    """‖H‖_F² = tr(H²) ≈ mean over Rademacher z of ‖Hz‖²."""
    return _rademacher_moments(op, n_samples, seed)[1]
