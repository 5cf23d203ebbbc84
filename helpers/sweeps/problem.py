"""What the runs of one unit train on and share: the data subset and its batch order, the stacked loss with its
Hessian (:class:`Problem`), λ^H_0 and what every run shares at θ₀ (:class:`Initialization`), and a cache of λ^H_0
for units that share θ₀."""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from helpers.nets.build import build_model
from helpers.sweeps.config import SweepConfig, Training
from helpers.curvature.operators import Eigen, HessianOperator, lanczos, power_iteration
from helpers.data.images import Data, data_root, load_dataset
from helpers.core.device import generator, resolve_device
from helpers.nets.losses import Loss, get_loss
from helpers.curvature.slicing import loss_pieces, losses_and_gradient, slice_size, sliced_losses
from helpers.curvature.stacking import stack_models


def load_sweep_data(config: SweepConfig, device: str | torch.device | None = None) -> Data:
    """The training (and measurement) subset of a sweep, on ``device`` (kept in memory for the next sweep)."""
    return _subset(config.dataset, config.n_train, config.data_seed, str(resolve_device(device)),
                   str(data_root()))


@functools.lru_cache(maxsize=4)
def _subset(dataset: str, size: int, seed: int, device: str, root: str) -> Data:
    return load_dataset(dataset, size=size, seed=seed, device=device, root=root)


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for ``steps`` steps: consecutive batches of seeded permutations, one per epoch; with
    ``batch_size == n`` (gradient descent) the whole subset in its stored order at every step."""
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the training subset ({n} examples)")
    if batch_size == n:
        return [torch.arange(n)] * steps
    gen, batches = generator(seed), []
    while len(batches) < steps:
        perm = torch.randperm(n, generator=gen)
        batches += [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches[:steps]


LANCZOS_MIX = {"warm": 0.0, "mixed": 1.0}
"""The random component's weight in a warm start, per :attr:`~helpers.sweeps.config.SweepConfig.lanczos_start`."""


def measure_sharpness(op: HessianOperator, config: Training, v0: torch.Tensor | None, seed: int,
                      settled=None) -> Eigen:
    """λ^H by Lanczos (warm-started from ``v0``; ``settled`` as in :func:`~helpers.curvature.operators.lanczos`) or by
    the paper's 20-step power iteration."""
    if config.sharpness == "power":
        return power_iteration(op, n_iter=20, seed=seed)
    return lanczos(op, v0=v0, tol=config.lanczos_tol, seed=seed, settled=settled, mix=LANCZOS_MIX[config.lanczos_start])


@dataclass
class Problem:
    """What a stack of m runs trains on and measures: the stacked forward, the loss, the data (training and
    measurement set), its first ``n_sharpness`` examples (the sharpness subset), and the examples per slice."""

    params0: list[torch.Tensor]
    forward: object
    loss: Loss
    data: Data
    n_sharpness: int
    slices: int | None

    @classmethod
    def of(cls, model: torch.nn.Module, m: int, loss: Loss, data: Data, n_sharpness: int,
           slices: int | None) -> Problem:
        """m stacked copies of ``model`` (all at θ₀)."""
        params0, forward = stack_models([model] * m)
        return cls(params0, forward, loss, data, n_sharpness, slices)

    def losses(self, params: list[torch.Tensor]) -> torch.Tensor:
        """L on the measurement set, one per run [m]."""
        return sliced_losses(self.loss, self.forward, params, self.data.x, self.data.y, self.slices)

    def batch_gradient(self, params: list[torch.Tensor], index: torch.Tensor) -> tuple[torch.Tensor, list]:
        """The minibatch loss of each run [m] and the gradient of their sum."""
        return losses_and_gradient(self.loss, self.forward, params, self.data.x[index], self.data.y[index],
                                   self.slices)

    def hessian(self, params: list[torch.Tensor]) -> HessianOperator:
        """The Hessian of the loss on the sharpness subset, block diagonal over the runs."""
        x, y = self.data.x[: self.n_sharpness], self.data.y[: self.n_sharpness]
        return HessianOperator(loss_pieces(self.loss, self.forward, x, y, self.slices), params, stacked=True)


@dataclass
class Origin:
    """What every run of a unit shares at θ₀: L_0 on the measurement set, and the first step's minibatch loss and
    gradient (every run takes its first step from θ₀ on the same batch; only η differs)."""

    loss0: float
    batch_loss: torch.Tensor
    gradient: list[torch.Tensor]

    @classmethod
    def of(cls, problem: Problem, first_batch: torch.Tensor) -> Origin:
        """The origin of the (one-run) ``problem``'s θ₀."""
        batch_loss, gradient = problem.batch_gradient(problem.params0, first_batch)
        return cls(float(problem.losses(problem.params0)[0]), batch_loss, gradient)


@dataclass
class Initialization:
    """One unit's fixed parts: θ₀ (``model``), its data and loss, λ^H_0 (``start``), the batch order, the examples
    per slice, and what every run shares at θ₀ (``origin``)."""

    config: Training
    model: torch.nn.Module
    data: Data
    loss: Loss
    seed: int
    start: Eigen
    batches: list[torch.Tensor]
    slices: int | None
    origin: Origin = field(init=False)

    def __post_init__(self) -> None:
        one = Problem.of(self.model, 1, self.loss, self.data, self.config.n_sharpness, self.slices)
        self.origin = Origin.of(one, self.batches[0])

    @property
    def sharpness0(self) -> float:
        return float(self.start.eigenvalue[0])


def initial_sharpness(config: Training, model: torch.nn.Module, data: Data, seed: int,
                      loss: Loss | None = None) -> Eigen:
    """λ^H_0 of ``model`` on the config's sharpness subset of ``data`` (an error unless it is positive)."""
    xs = data.x[: config.n_sharpness]
    problem = Problem.of(model, 1, loss or get_loss(config.loss), data, config.n_sharpness,
                         slice_size(model, xs[:1]))
    start = measure_sharpness(problem.hessian(problem.params0), config, None, seed)
    if not float(start.eigenvalue[0]) > 0:
        raise ValueError(f"the sharpness at initialization is {float(start.eigenvalue[0]):.3g} ≤ 0 (seed {seed}); "
                         "η = c/λ^H_0 is undefined")
    return start


def start_key(config: SweepConfig, seed: int, device: torch.device) -> tuple:
    """What λ^H_0 of a unit depends on: the network and its seed, the data, the loss and the estimator (not the
    grid of c, T or the search: sweeps that differ only in those share θ₀ and its λ^H_0)."""
    return (config.model, config.dataset, str(data_root()), config.n_train, config.n_sharpness, config.data_seed,
            config.loss, config.sharpness, config.lanczos_tol, seed, str(device))


class SharpnessCache:
    """λ^H_0 of the last ``size`` initializations measured in this process, keyed by :func:`start_key`: units that
    share θ₀ (e.g. the one-c sweeps of χ(c)) measure it once, with the same numbers."""

    def __init__(self, size: int = 4) -> None:
        self.size, self.entries = size, OrderedDict()

    def get(self, key: tuple, measure) -> Eigen:
        """The cached λ^H_0 for ``key``, or ``measure()``'s, kept."""
        if key not in self.entries:
            self.entries[key] = measure()
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return self.entries[key]

    def clear(self) -> None:
        self.entries.clear()


INITIAL_SHARPNESS = SharpnessCache()
"""The cache :func:`compute_unit` uses unless given another."""


def loss_rounding_error(config: SweepConfig, seed: int, device: str | torch.device | None = None) -> float:
    """abs(L₃₂(θ₀) − L₆₄(θ₀)) / L₆₄(θ₀): the relative float32 rounding error of the loss on the measurement set at the
    initialization of ``seed`` (the noise floor of differences of L, e.g. of an interpolated barrier)."""
    target = resolve_device(device)
    data = load_sweep_data(config, target)
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=seed, device=target,
                        reference_x=data.x[: config.n_sharpness])
    loss = get_loss(config.loss)
    with torch.no_grad():
        single = float(loss(model(data.x), data.y))
        double = float(loss(model.double()(data.x.double()), data.y.double()))
    return abs(single - double) / abs(double)
