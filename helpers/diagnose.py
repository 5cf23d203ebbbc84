"""The early phase diagram of any PyTorch model, as a learning-rate diagnosis.

``diagnose(model, x, y)`` measures, for each initialization, the sharpness λ^H_0 and the study's three constants
c_loss, c_sharp and c_max of the first ``steps`` steps of training at η = c/λ^H_0 — the same engine, search and
rules as the sweeps of the book — and returns a :class:`Diagnosis` that reads them as learning rates::

    from helpers.diagnose import diagnose
    report = diagnose(lambda: MyNet(), x, y, loss="xent", batch_size=256)
    print(report)                  # λ^H_0 and the phases as learning rates, per seed
    low, high = report.suggested_range()
    report.phase(3e-2)             # "loss catapult", ...
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from helpers.config import SweepConfig, c_grid
from helpers.data import Data
from helpers.device import resolve_device
from helpers.engine import run_model
from helpers.losses import LOSSES, Loss
from helpers.phases import CONSTANTS, critical_constants, phase_of
from helpers.plots import PHASE_COLOURS


@dataclass(frozen=True)
class Diagnosis:
    """The early-training phases of one model: per initialization (``per_seed``, one row per seed with
    ``sharpness0``, ``c_loss``, ``c_sharp``, ``c_max`` and whether c_loss/c_sharp were filled with c_max), the grid
    ``c_values`` and every run (``runs``: one row per c and step, as the bracketing search left it: L_t where c_loss
    needed it and at each run's last step, λ^H_t in the runs the bracket measured, NaN elsewhere)."""

    per_seed: pd.DataFrame
    c_values: tuple[float, ...]
    runs: pd.DataFrame
    steps: int

    @property
    def sharpness0(self) -> np.ndarray:
        """λ^H_0 of each initialization."""
        return self.per_seed["sharpness0"].to_numpy(float)

    def constant(self, name: str) -> np.ndarray:
        """One of c_loss, c_sharp, c_max, per initialization."""
        if name not in CONSTANTS:
            raise ValueError(f"unknown constant {name!r}; choose one of {CONSTANTS}")
        return self.per_seed[name].to_numpy(float)

    @property
    def c_loss(self) -> np.ndarray:
        return self.constant("c_loss")

    @property
    def c_sharp(self) -> np.ndarray:
        return self.constant("c_sharp")

    @property
    def c_max(self) -> np.ndarray:
        return self.constant("c_max")

    def mean(self) -> dict[str, float]:
        """λ^H_0 and the three constants averaged over initializations."""
        return {name: float(np.nanmean(self.per_seed[name])) for name in ("sharpness0", *CONSTANTS)}

    def lr(self, c: float) -> float:
        """The learning rate η = c/⟨λ^H_0⟩ of the constant c (⟨·⟩: mean over initializations)."""
        return float(c) / self.mean()["sharpness0"]

    def boundaries(self) -> pd.DataFrame:
        """Per initialization, the phase boundaries as learning rates: lr_loss, lr_sharp, lr_max = c/λ^H_0."""
        out = self.per_seed[["seed"]].copy()
        for name in CONSTANTS:
            out[name.replace("c_", "lr_")] = self.per_seed[name] / self.per_seed["sharpness0"]
        return out

    def phases(self, lr: float) -> list[str]:
        """The phase of the early transient at learning rate ``lr`` for each initialization."""
        return [phase_of(lr * row.sharpness0, row.c_loss, row.c_sharp, row.c_max)
                for row in self.per_seed.itertuples()]

    def phase(self, lr: float) -> str:
        """The phase at learning rate ``lr`` of most initializations (ties: the more stable phase)."""
        found, order = self.phases(lr), list(PHASE_COLOURS)
        return max(order, key=lambda name: (found.count(name), -order.index(name)))

    def suggested_range(self) -> tuple[float, float]:
        """Learning rates at the top of the stable range, by a stated rule.

        High end: the smallest over initializations of c_max/λ^H_0 — no initialization diverged there in the first
        ``steps`` steps. Low end: the smallest over initializations of c_loss/λ^H_0 — where the first
        initialization's loss catapults, so that below it training stays in the sharpness-reduction phase for every
        initialization (and, when c_loss was filled with c_max, half the high end).
        """
        b = self.boundaries()
        high = float(b["lr_max"].min())
        observed = b["lr_loss"][~self.per_seed["c_loss_filled"].to_numpy(bool)]
        low = float(observed.min()) if len(observed) else high / 2
        return min(low, high), high

    def suggested_lr(self) -> float:
        """One learning rate: the geometric middle of :meth:`suggested_range`."""
        low, high = self.suggested_range()
        return math.sqrt(low * high)

    def to_frame(self) -> pd.DataFrame:
        """One row per initialization: seed, λ^H_0, the constants, the boundaries as learning rates, and the fills."""
        return self.per_seed.merge(self.boundaries(), on="seed")

    def plot(self, ax=None, title: str | None = None):
        """The phases on a learning-rate axis (log), one band per initialization; the suggested range hatched."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter

        ax = ax or plt.gca()
        b = self.boundaries()
        values = b[["lr_loss", "lr_sharp", "lr_max"]].to_numpy(float)
        left, right = np.nanmin(values) / 4, np.nanmax(values) * 4
        drawn = set()
        for i, (row, lrs) in enumerate(zip(self.per_seed.itertuples(), values)):
            edges = sorted({left, right, *[v for v in lrs if left < v < right]})
            for lo, hi in zip(edges[:-1], edges[1:]):
                c = math.sqrt(lo * hi) * row.sharpness0
                phase = phase_of(c, row.c_loss, row.c_sharp, row.c_max)
                ax.barh(i, hi - lo, left=lo, color=PHASE_COLOURS[phase], height=0.7,
                        label=None if phase in drawn else phase)
                drawn.add(phase)
        low, high = self.suggested_range()
        ax.axvspan(low, high, fill=False, hatch="//", ec="k", lw=0.8, label="suggested range")
        ax.set(xscale="log", xlim=(left, right), xlabel="learning rate η", yticks=range(len(b)),
               yticklabels=[f"seed {s}" for s in b.seed], title=title)
        ax.xaxis.set_minor_formatter(NullFormatter())
        return ax

    def __str__(self) -> str:
        m, (low, high) = self.mean(), self.suggested_range()
        lines = [f"Early phase diagram ({len(self.per_seed)} initializations, {self.steps} steps, "
                 f"grid c = {self.c_values[0]:.3g} … {self.c_values[-1]:.3g}):",
                 f"  λ^H_0 = {m['sharpness0']:.4g} (mean); per seed: " +
                 ", ".join(f"{v:.4g}" for v in self.sharpness0)]
        for name, label in (("c_loss", "loss catapults from"), ("c_sharp", "sharpness catapults from"),
                            ("c_max", "diverges above")):
            filled = int(self.per_seed[f"{name}_filled"].sum()) if f"{name}_filled" in self.per_seed else 0
            note = f" ({filled} filled with c_max)" if filled else ""
            lines.append(f"  {label:<26} c = {m[name]:.3g}, η = {self.lr(m[name]):.3g}{note}")
        lines.append(f"  suggested learning rates: {low:.3g} … {high:.3g} (middle {self.suggested_lr():.3g})")
        at_floor = int((self.per_seed[list(CONSTANTS)] == self.c_values[0]).to_numpy().sum())
        if at_floor:
            lines.append(f"  {at_floor} constant(s) at the grid's first c = {self.c_values[0]:.3g}: they may lie "
                         "lower; start the grid lower to see")
        return "\n".join(lines)

    __repr__ = __str__


def _as_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, torch.utils.data.DataLoader):
        xs, ys = zip(*x)
        if y is not None:
            raise ValueError("pass either a DataLoader as x (and no y) or the tensors x and y")
        return torch.cat(xs), torch.cat(ys)
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError("x and y must be tensors (or x a DataLoader of (x, y) batches)")
    if len(x) != len(y):
        raise ValueError(f"x and y hold different numbers of examples: {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError("x holds no examples")
    return x, y


def _checked_loss(loss: str | Loss, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Loss:
    fn = LOSSES.get(loss) if isinstance(loss, str) else loss
    if fn is None:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass a callable")
    with torch.no_grad():
        value = fn(model(x[:2]), y[:2])
    if not (isinstance(value, torch.Tensor) and value.dim() == 0):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"the loss must return a scalar tensor (a mean over the batch), got {shape}")
    return fn


def _prepared(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A copy ready for the engine's stacked functional calls: on ``device``, in training mode, with BatchNorm's
    running statistics left out (in training mode they do not change the outputs)."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0:
            raise ValueError(f"the model has dropout (p={module.p}): its loss is random, so λ^H is undefined. "
                             "Build it with dropout 0 for the diagnosis.")
    model = copy.deepcopy(model).to(device).train()
    torch.func.replace_all_batch_norm_modules_(model)
    return model


def diagnose(model: torch.nn.Module | Callable[[], torch.nn.Module], x, y=None, loss: str | Loss = "mse", *,
             batch_size: int | None = None, steps: int = 10, seeds: Sequence[int] = (0, 1, 2),
             c_values: Sequence[float] | None = None, n_sharpness: int = 2048, sharpness: str = "lanczos",
             device: str | torch.device | None = None) -> Diagnosis:
    """The early phase diagram of ``model`` on (``x``, ``y``): λ^H_0 and c_loss, c_sharp, c_max per initialization.

    ``model``: a zero-argument callable that builds a freshly initialized model (called once per seed under
    ``torch.manual_seed(seed)``), or a module, whose own initialization is then the only one. Any initialization,
    biases and buffers are kept; BatchNorm runs in training mode; dropout must be off. ``loss``: ``"mse"``,
    ``"xent"`` (one-hot targets) or any callable (outputs, targets) → scalar. ``x``, ``y``: tensors, or a
    ``DataLoader`` as ``x`` (all its batches). ``batch_size=None`` trains by full-batch gradient descent; otherwise
    SGD over seeded permutations. λ^H is measured on the first ``n_sharpness`` examples. ``c_values``: the grid of
    c = η·λ^H_0 (default: the study's 2^x, x = 0, 0.1, …, 6), scanned upward until the first divergence; c_sharp is
    found by the bracketing search of the sweeps.
    """
    x, y = _as_tensors(x, y)
    target = resolve_device(device)
    builder = model if not isinstance(model, torch.nn.Module) else None
    if builder is None:
        seeds = tuple(seeds)[:1]
    if not len(seeds):
        raise ValueError("seeds is empty: give at least one initialization seed")
    grid = tuple(c_grid(6.0, 0.1)) if c_values is None else tuple(float(c) for c in c_values)
    n = len(x)
    config = SweepConfig(n_train=min(n_sharpness, n), n_sharpness=min(n_sharpness, n), batch_size=batch_size or n,
                         steps=steps, c_values=grid, seeds=tuple(seeds), sharpness=sharpness)
    data = Data(x.to(target), y.to(target), y.to(target), "user")
    tables = []
    for seed in config.seeds:
        if builder is not None:
            torch.manual_seed(seed)
            net = builder()
        else:
            net = model
        net = _prepared(net, target)
        fn = _checked_loss(loss, net, data.x, data.y)
        batches = None if batch_size else [torch.arange(n)] * steps
        with sdpa_kernel([SDPBackend.MATH]):   # the one attention kernel with second derivatives everywhere
            tables.append(run_model(config, net, data, seed, target, loss=fn, batches=batches).runs)
    runs = pd.concat(tables, ignore_index=True)
    constants = critical_constants(runs)
    sharpness0 = runs.groupby("seed")["sharpness0"].first().rename("sharpness0").reset_index()
    per_seed = sharpness0.merge(constants[["seed", *CONSTANTS, "c_loss_filled", "c_sharp_filled", "censored"]],
                                on="seed")
    if per_seed["c_max"].isna().any():
        first = min(grid)
        bad = per_seed.loc[per_seed["c_max"].isna(), "seed"].tolist()
        raise ValueError(f"training diverged at the smallest c = {first} for seeds {bad}: start the grid lower")
    return Diagnosis(per_seed, grid, runs, steps)
