"""Early-training runs: plain SGD at η = c/λ^H_0 over a grid of c, loss and sharpness recorded after every step.

One *unit* is one initialization: λ^H_0 is measured once at θ₀, then the grid of c is scanned upward until the
first divergent run. Runs of one unit share θ₀ and the SGD batch order; ``stack`` of them train together as one
stack of models (one Hessian-vector product serves the whole stack).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from helpers.build import build_model
from helpers.config import SweepConfig
from helpers.curvature import Eigen, HessianOperator, lanczos, per_model_loss, power_iteration, stack_models
from helpers.data import Data, load_dataset
from helpers.device import generator, resolve_device
from helpers.losses import get_loss

GPU_STACK = 16


def load_sweep_data(config: SweepConfig, device: str | torch.device | None = None) -> Data:
    """The training (and measurement) subset of a sweep, on ``device``."""
    return load_dataset(config.dataset, size=config.n_train, seed=config.data_seed, device=resolve_device(device))


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for ``steps`` SGD steps: consecutive batches of seeded permutations, one per epoch."""
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the training subset ({n} examples)")
    gen, batches = generator(seed), []
    while len(batches) < steps:
        perm = torch.randperm(n, generator=gen)
        batches += [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches[:steps]


def measure_sharpness(op: HessianOperator, config: SweepConfig, v0: torch.Tensor | None, seed: int) -> Eigen:
    """λ^H by Lanczos (warm-started from ``v0``) or by the paper's 20-step power iteration."""
    if config.sharpness == "power":
        return power_iteration(op, n_iter=20, seed=seed)
    return lanczos(op, v0=v0, tol=config.lanczos_tol, seed=seed)


def _diverged(losses: torch.Tensor, threshold: float) -> torch.Tensor:
    return ~torch.isfinite(losses) | (losses > threshold)


def train_chunk(config: SweepConfig, model: torch.nn.Module, data: Data, c_values: list[float], seed: int,
                start: Eigen, batches: list[torch.Tensor]) -> list[dict]:
    """Train one stack of runs from the same θ₀ at η_m = c_m/λ^H_0; return one record per run and step."""
    loss = get_loss(config.loss)
    m = len(c_values)
    params0, forward = stack_models([model] * m)
    sharpness0 = float(start.eigenvalue[0])
    lr = torch.tensor(c_values, device=params0[0].device) / sharpness0
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]

    def sharp_loss(theta):
        return per_model_loss(loss, forward(theta, xs), ys).sum()

    measured = set(range(config.steps + 1)) if config.measure_at is None else set(config.measure_at)
    params = [p.clone() for p in params0]
    with torch.no_grad():
        loss0 = float(per_model_loss(loss, forward(params, data.x), data.y)[0])
    records = [dict(c=c, step=0, loss=loss0, batch_loss=math.nan, sharpness=sharpness0, diverged=False,
                    products=start.n_products, converged=bool(start.converged[0])) for c in c_values]
    alive = torch.ones(m, dtype=torch.bool, device=lr.device)
    v0 = start.eigenvector.expand(m, -1)
    for step in range(1, config.steps + 1):
        index = batches[step - 1]
        theta = [p.detach().requires_grad_(True) for p in params]
        batch_losses = per_model_loss(loss, forward(theta, data.x[index]), data.y[index])
        grads = torch.autograd.grad(batch_losses.sum(), theta)
        batch_losses = batch_losses.detach()
        with torch.no_grad():
            params = [p - lr.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(params, grads)]
            losses = per_model_loss(loss, forward(params, data.x), data.y)
        dead = alive & (_diverged(batch_losses, config.diverge_loss) | _diverged(losses, config.diverge_loss))
        was_alive, alive = alive, alive & ~dead
        params = [torch.where(alive.view(-1, *[1] * (p.dim() - 1)), p, p0) for p, p0 in zip(params, params0)]
        eig = None
        if step in measured and bool(alive.any()):
            eig = measure_sharpness(HessianOperator(sharp_loss, params, stacked=True), config, v0, seed + step)
            v0 = eig.eigenvector
        for i in range(m):
            if not was_alive[i]:
                continue
            ok = bool(alive[i]) and eig is not None
            records.append(dict(c=c_values[i], step=step, loss=float(losses[i]), batch_loss=float(batch_losses[i]),
                                sharpness=float(eig.eigenvalue[i]) if ok else math.nan, diverged=bool(dead[i]),
                                products=eig.n_products if eig is not None else 0,
                                converged=bool(eig.converged[i]) if ok else False))
        if not bool(alive.any()):
            break
    for r in records:
        r.update(seed=seed, lr=r["c"] / sharpness0, sharpness0=sharpness0, loss0=loss0)
    return records


def run_unit(config: SweepConfig, seed: int, data: Data, device: str | torch.device | None = None) -> pd.DataFrame:
    """One initialization: measure λ^H_0, then scan the c grid upward, stopping after the first divergent run."""
    target = resolve_device(device)
    data = data.to(target)
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=seed, device=target,
                        reference_x=data.x[: config.n_sharpness])
    params, forward = stack_models([model])
    loss = get_loss(config.loss)
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]
    op = HessianOperator(lambda theta: per_model_loss(loss, forward(theta, xs), ys).sum(), params, stacked=True)
    start = measure_sharpness(op, config, None, seed)
    if not float(start.eigenvalue[0]) > 0:
        raise ValueError(f"the sharpness at initialization is {float(start.eigenvalue[0]):.3g} ≤ 0 (seed {seed}); "
                         "η = c/λ^H_0 is undefined")
    batches = [b.to(target) for b in batch_order(len(data), config.batch_size, config.steps, seed)]
    size = config.stack or (1 if target.type == "cpu" else GPU_STACK)
    records: list[dict] = []
    for first in range(0, len(config.c_values), size):
        chunk = list(config.c_values[first : first + size])
        new = train_chunk(config, model, data, chunk, seed, start, batches)
        stop = min((r["c"] for r in new if r["diverged"]), default=None)
        records += [r for r in new if stop is None or r["c"] <= stop]
        if stop is not None:
            break
    columns = ["seed", "c", "lr", "step", "loss", "loss0", "batch_loss", "sharpness", "sharpness0", "diverged",
               "products", "converged"]
    table = pd.DataFrame.from_records(records, columns=columns)
    return table.sort_values(["c", "step"], ignore_index=True)
