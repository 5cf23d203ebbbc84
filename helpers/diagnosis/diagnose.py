"""The early phase diagram of any PyTorch model, as a learning-rate diagnosis.

``diagnose(model, x, y)`` measures, for each initialization, the sharpness λ^H_0 and the study's three constants
c_loss, c_sharp and c_max of the first ``steps`` steps of training at η = c/λ^H_0 — the same engine, search and
rules as the sweeps of the book — and returns a :class:`Diagnosis` that reads them as learning rates::

    from helpers.diagnosis.diagnose import diagnose
    report = diagnose(lambda: MyNet(), x, y, loss="xent", batch_size=256)
    print(report)                  # λ^H_0 and the phases as learning rates, per seed
    low, high = report.suggested_range()
    report.phase(3e-2)             # "loss catapult", ...

With ``optimizer=`` (a factory such as ``lambda p: torch.optim.Adam(p)``) the runs are that optimizer's and the
grid is in units of its own edge (:mod:`helpers.diagnosis.edges`): η = c/s, with s = λ^H_0 scaled by SGD's momentum,
Adam's preconditioned sharpness, or the critical sharpness along the optimizer's first update; c = 2 is the edge on a
quadratic for each. Without it, plain SGD through the study's engine (the only case with c_sharp).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from helpers.sweeps.config import SweepConfig, c_grid
from helpers.data.images import Data
from helpers.core.device import resolve_device
from helpers.diagnosis.edges import (ADAM_FAMILY, EDGES, OptimizerFactory, check_factory, critical_lr, default_edge,
                                     describe, first_update, make_optimizer, momentum_scale, preconditioned_sharpness)
from helpers.sweeps.engine import run_model
from helpers.diagnosis.walk import walk
from helpers.sweeps.problem import Problem, batch_order, initial_sharpness
from helpers.curvature.slicing import slice_size
from helpers.nets.losses import Loss
from helpers.analysis.phases import critical_constants
from helpers.rules import CONSTANTS, DIVERGE_LOSS, HELD, not_recovered, phase_of
from helpers.analysis.plots import PHASE_COLOURS
from helpers.diagnosis.preparation import (as_tensors, built, check_deterministic, check_second_derivatives,
                                           checked_loss, describe_loss, prepared)


@dataclass(frozen=True)
class Diagnosis:
    """The early-training phases of one model: per initialization (``per_seed``, one row per seed with
    ``sharpness0``, ``c_loss``, ``c_sharp``, ``c_max`` and whether c_loss/c_sharp were filled with c_max), the grid
    ``c_values`` and every run (``runs``: one row per c and step as the engine's ``first-rise`` search left it: L_t
    where c_loss needed it and at each run's last step, λ^H_t in every run up to the first whose sharpness rose,
    NaN elsewhere); the divergence rule's ``held`` multiple, how many parameter tensors were ``frozen`` (not
    trained, not in λ^H), whether it was a ``quick`` diagnosis (no c_sharp), the ``optimizer`` and the ``edge``
    whose sharpness is the unit of c (``sharpness0``: η = c/sharpness0; the columns ``hessian`` (λ^H_0 as SGD's
    edge), ``preconditioned`` and ``critical`` hold each edge sharpness that was measured, NaN otherwise)."""

    per_seed: pd.DataFrame
    c_values: tuple[float, ...]
    runs: pd.DataFrame
    steps: int
    held: float | None = HELD
    frozen: int = 0
    quick: bool = False
    optimizer: str = "plain SGD"
    edge: str = "hessian"
    loss: str = ""

    @property
    def censored(self) -> np.ndarray:
        """Per initialization, whether the grid found no divergence (its c_max is then a lower bound)."""
        if "censored" not in self.per_seed:
            return np.zeros(len(self.per_seed), bool)
        return self.per_seed["censored"].to_numpy(bool)

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
        return {name: float(self.per_seed[name].mean()) for name in ("sharpness0", *CONSTANTS)}  # NaN-skipping

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
        ``steps`` steps — over the initializations that diverged on the grid (NaN when none did: a c_max at the
        top of the grid is a lower bound, never a boundary). Low end: the smallest over initializations of
        c_loss/λ^H_0 — where the first initialization's loss catapults, so that below it training stays in the
        sharpness-reduction phase for every initialization (and, when c_loss was filled with c_max, half the high
        end).
        """
        b = self.boundaries()
        censored = self.censored
        high = float(b["lr_max"][~censored].min()) if (~censored).any() else math.nan
        observed = b["lr_loss"][~self.per_seed["c_loss_filled"].to_numpy(bool)]
        low = float(observed.min()) if len(observed) else high / 2
        return (min(low, high), high) if math.isfinite(high) else (low, high)

    def suggested_lr(self) -> float:
        """One learning rate: the geometric middle of :meth:`suggested_range` (its low end when no initialization
        diverged on the grid)."""
        low, high = self.suggested_range()
        return math.sqrt(low * high) if math.isfinite(high) else low

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
                if c > row.c_max and getattr(row, "censored", False):
                    continue  # beyond a grid that found no divergence: untested, left blank
                phase = phase_of(c, row.c_loss, row.c_sharp, row.c_max)
                ax.barh(i, hi - lo, left=lo, color=PHASE_COLOURS[phase], height=0.7,
                        label=None if phase in drawn else phase)
                drawn.add(phase)
        low, high = self.suggested_range()
        ax.axvspan(low, high if math.isfinite(high) else right, fill=False, hatch="//", ec="k", lw=0.8,
                   label="suggested range")
        ax.set(xscale="log", xlim=(left, right), xlabel="learning rate η", yticks=range(len(b)),
               yticklabels=[f"seed {s}" for s in b.seed], title=title)
        ax.xaxis.set_minor_formatter(NullFormatter())
        return ax

    def _edge_line(self) -> str:
        """What the unit of c is, its mean and per-seed values, and the other edges measured beside it."""
        names = {"hessian": "λ^H_0" if self.optimizer == "plain SGD" else "λ^H_0 scaled by the momentum (the "
                 "Hessian edge)", "preconditioned": "Adam's preconditioned sharpness ×(1 − β₁)/(1 + β₁)",
                 "critical": "the critical sharpness 2/η_c along the optimizer's first update"}
        line = (f"  unit of c: {names[self.edge]} = {self.mean()['sharpness0']:.4g} (mean; η = c/it); per seed: "
                + ", ".join(f"{v:.4g}" for v in self.sharpness0))
        others = [f"{edge} {self.per_seed[edge].mean():.4g}" for edge in EDGES
                  if edge != self.edge and edge in self.per_seed and self.per_seed[edge].notna().any()]
        return line + (f"\n  other edges measured (mean): {', '.join(others)}" if others else "")

    def _constant_lines(self) -> list[str]:
        """c_loss, c_sharp (where measured) and c_max as constants and learning rates, with what bounds them."""
        lines, m, floor = [], self.mean(), self.c_values[0]
        censored = self.censored
        for name, label in (("c_loss", "the loss rises from"), ("c_sharp", "the sharpness rises from"),
                            ("c_max", "diverges above")):
            if self.per_seed[name].isna().all():
                continue
            fills = (self.per_seed[f"{name}_filled"].to_numpy(bool) if f"{name}_filled" in self.per_seed
                     else np.zeros(len(self.per_seed), bool))
            filled = int(fills.sum())
            if name != "c_max" and fills.all():   # it never rose: a fill with c_max is no onset to report
                where = "on the grid" if censored.all() else "below the divergence"
                lines.append(f"  {label.replace(' from', ''):<26} for no seed {where} ({name} filled with c_max)")
                continue
            note = f" ({filled} seed(s) where it never rose left out)" if filled else ""
            at_floor = int((self.per_seed[name] == floor).sum())
            if name == "c_sharp" and at_floor:  # early sharpening: the sharpness rises even at the smallest c
                note += (f"; for {at_floor} seed(s) it rises already at the grid's first c = {floor:.3g} (early "
                         "sharpening, not a catapult threshold: start the grid lower to find where it begins)")
            value = float(self.per_seed[name][~fills].mean()) if name != "c_max" else m[name]
            if name == "c_max":
                top = self.c_values[-1]
                if censored.any():
                    lines.append(f"  {int(censored.sum())} seed(s): no divergence up to η = {self.lr(top):.3g} "
                                 f"(c = {top:.3g}); extend the grid")
                if censored.all():
                    continue
                value = float(self.per_seed[name][~censored].mean())
                note += f" ({int((~censored).sum())} seed(s) that diverged)" if censored.any() else ""
            lines.append(f"  {label:<26} c = {value:.3g}, η = {self.lr(value):.3g}{note}")
        return lines

    def __str__(self) -> str:
        low, high = self.suggested_range()
        rule = f"not finite, above {DIVERGE_LOSS:g}, or ≥ {self.held:g}·L_0 after the last step" if self.held else \
            f"not finite or above {DIVERGE_LOSS:g}"
        lines = [f"Early phase diagram of {self.optimizer} ({len(self.per_seed)} initializations, {self.steps} "
                 f"steps, grid c = {self.c_values[0]:.3g} … {self.c_values[-1]:.3g}; divergent: loss {rule}):",
                 *([f"  loss: {self.loss}"] if self.loss else []), self._edge_line(), *self._constant_lines()]
        floor = self.c_values[0]
        if self.quick:
            lines.append("  quick diagnosis: c_sharp not measured")
        elif self.per_seed["c_sharp"].isna().all():
            lines.append(f"  c_sharp not measured: it is the study's constant of plain SGD (λ^H_t), not of "
                         f"{self.optimizer}")
        if self.frozen:
            lines.append(f"  {self.frozen} frozen parameter tensor(s) kept fixed and left out of λ^H")
        if math.isfinite(high):
            lines.append(f"  suggested learning rates: {low:.3g} … {high:.3g} (middle {self.suggested_lr():.3g})")
        elif not math.isfinite(low):
            lines.append(f"  no suggested learning rate: the loss never rose and no run diverged up to "
                         f"η = {self.lr(self.c_values[-1]):.3g}: extend the grid upward (c_values)")
        else:
            lines.append(f"  suggested learning rate: {low:.3g} (where the loss starts to rise); no divergence up to "
                         f"η = {self.lr(self.c_values[-1]):.3g}: extend the grid to find the upper boundary")
        low_loss = int((self.per_seed["c_loss"] == floor).sum())
        if low_loss:
            lines.append(f"  c_loss of {low_loss} seed(s) at the grid's first c = {floor:.3g}: it may lie lower; "
                         "start the grid lower to see")
        return "\n".join(lines)

    __repr__ = __str__


def held_divergent(runs: pd.DataFrame, held: float | None = HELD) -> pd.DataFrame:
    """``runs`` with every run whose L_T/L_0 ≥ ``held`` (None: never) marked divergent at its last step."""
    if held is None:
        return runs
    runs = runs.copy()
    last = runs.groupby(["seed", "c"]).step.transform("max") == runs.step
    high = last & ~runs.diverged & not_recovered(runs.loss, runs.loss0, held)
    runs.loc[high, "diverged"] = True
    return runs


def _diagnose_seed(config: SweepConfig, net: torch.nn.Module, data: Data, seed: int, loss, target,
                   batches) -> pd.DataFrame:
    """One initialization's runs, the model checked first (randomness, second derivatives)."""
    fn = checked_loss(loss, net, data.x, data.y)
    check_deterministic(net, data.x[:8])
    check_second_derivatives(net, data.x[:2])
    with sdpa_kernel([SDPBackend.MATH]):   # the one attention kernel with second derivatives everywhere
        return run_model(config, net, data, seed, target, loss=fn, batches=batches).runs


def edges_at(config: SweepConfig, net: torch.nn.Module, data: Data, seed: int, fn, optimizer: OptimizerFactory,
             probe: torch.optim.Optimizer, edge: str | None, quick: bool = False) -> tuple[str, dict[str, float]]:
    """The edge that is the unit of c (``edge``, or the optimizer's own; ``probe``: one the factory built, whose
    settings are read) and every edge sharpness measurable at θ₀ on the sharpness subset: ``critical`` always; with
    second derivatives, ``lambda_H0`` (λ^H_0), ``hessian`` for SGD and ``preconditioned`` for Adam and AdamW
    (``quick``: λ^H_0 only where it is the unit)."""
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]
    edge = edge or default_edge(probe)
    if edge not in EDGES:
        raise ValueError(f"unknown edge {edge!r}; choose one of {EDGES}")
    if edge == "hessian":
        momentum_scale(probe)  # SGD's only: a clear error for another optimizer, before any measurement
    found = {"critical": critical_lr(net, fn, xs, ys, first_update(net, optimizer, fn, xs, ys)).sharpness}
    try:
        check_second_derivatives(net, data.x[:2])
    except ValueError:
        if edge != "critical":
            raise
        return edge, found
    if not quick or edge == "hessian":
        found["lambda_H0"] = float(initial_sharpness(config, net, data, seed, fn).eigenvalue[0])
    if isinstance(probe, torch.optim.SGD) and "lambda_H0" in found:
        found["hessian"] = found["lambda_H0"] * momentum_scale(probe)
    if isinstance(probe, ADAM_FAMILY):
        problem = Problem.of(net, 1, fn, data, config.n_sharpness, slice_size(net, xs[:1]))
        found["preconditioned"] = preconditioned_sharpness(problem.hessian(problem.params0), probe, seed)
    if edge not in found:
        raise ValueError(f"edge={edge!r} is not defined for {describe(probe)}")
    return edge, found


def _optimizer_seed(config: SweepConfig, net: torch.nn.Module, data: Data, seed: int, loss, batches,
                    optimizer: OptimizerFactory, edge: str | None, held: float | None, quick: bool
                    ) -> tuple[pd.DataFrame, str, dict[str, float], str]:
    """One initialization's runs with ``optimizer`` at η = c/s (s: the edge sharpness), the edge, every edge
    measured, and the optimizer's description."""
    fn = checked_loss(loss, net, data.x, data.y)
    check_deterministic(net, data.x[:8])
    probe = make_optimizer(optimizer, copy.deepcopy(net).parameters(), 1.0)
    with sdpa_kernel([SDPBackend.MATH]):
        edge, found = edges_at(config, net, data, seed, fn, optimizer, probe, edge, quick)
        order = batches or batch_order(len(data.x), config.batch_size, config.steps, seed)
        runs = walk(net, optimizer, fn, data.x, data.y, order, config.c_values, found[edge], seed, len(data.x), held,
                    config.diverge_loss)
    return runs, edge, found, describe(probe)


def _per_seed(runs: pd.DataFrame, quick: bool, edges: list[dict[str, float]], grid: tuple[float, ...]
              ) -> pd.DataFrame:
    """One row per initialization: the unit of c, the constants and their flags, every edge measured."""
    constants = critical_constants(runs)
    if quick:
        constants = constants.assign(c_sharp=np.nan, c_sharp_filled=False)
    sharpness0 = runs.groupby("seed")["sharpness0"].first().rename("sharpness0").reset_index()
    per_seed = sharpness0.merge(constants[["seed", *CONSTANTS, "c_loss_filled", "c_sharp_filled", "censored"]],
                                on="seed")
    for name in ("lambda_H0", *EDGES):
        per_seed[name] = [e.get(name, math.nan) for e in edges]
    if per_seed["c_max"].isna().any():
        bad = per_seed.loc[per_seed["c_max"].isna(), "seed"].tolist()
        raise ValueError(f"training diverged at the smallest c = {min(grid)} for seeds {bad}: start the grid lower")
    return per_seed


def diagnose(model: torch.nn.Module | Callable[[], torch.nn.Module], x, y=None, loss: str | Loss = "mse", *,
             batch_size: int | None = None, steps: int = 10, seeds: Sequence[int] = (0, 1, 2),
             c_values: Sequence[float] | None = None, n_sharpness: int = 2048, sharpness: str = "lanczos",
             held: float | None = HELD, quick: bool = False, progress: bool = True,
             optimizer: OptimizerFactory | None = None, edge: str | None = None,
             device: str | torch.device | None = None) -> Diagnosis:
    """The early phase diagram of ``model`` trained by plain SGD (no momentum, no weight decay), or by ``optimizer``,
    on (``x``, ``y``): the edge sharpness s and c_loss, c_sharp, c_max per initialization, at η = c/s.

    ``model``: a zero-argument callable that builds a freshly initialized model (called once per seed under
    ``torch.manual_seed(seed)``, the caller's random state restored after), or a module, whose own initialization is
    then the only one; either way the diagnosis trains a copy. Its trainable parameters are trained and enter λ^H;
    frozen ones stay as they are. BatchNorm uses batch statistics as in training; dropout of every kind is off.
    ``loss``: as PyTorch names it — ``"mse"`` is ``nn.MSELoss`` (the mean of (f − y)², targets shaped like the
    output), ``"xent"`` is ``nn.CrossEntropyLoss`` (class labels [B] or one-hot targets) — or ``"half_mse"``, the
    study's ½·mean (f − y)² (half the sharpness, twice the learning rates), or any callable (outputs, targets) →
    scalar, e.g. the ``nn.MSELoss()`` you train with; the summary names it. ``x``, ``y``: tensors, or a
    ``DataLoader`` as ``x`` (all its batches, and its batch size unless ``batch_size`` is given).
    ``batch_size=None`` trains by full-batch gradient descent, otherwise SGD over seeded permutations. λ^H is
    measured on the first ``n_sharpness`` examples. ``c_values``: the grid of c (default: the study's 2^x, x = 0,
    0.1, …, 6, extended by :func:`bracketing` until both edges are inside it, within c = 2^-10 … 2^16), walked
    upward until the first divergence: the loss not finite or above 1e5 (:data:`~helpers.rules.DIVERGE_LOSS`) at any
    step, or (``held``) still ≥ held·L_0 after the last step. ``quick``: one seed, λ^H on at most 512 examples, no
    c_sharp (only c_loss and c_max), and with ``optimizer`` no λ^H_0 beside another edge.
    ``progress``: a progress bar over initializations.
    ``optimizer``: a factory params → ``torch.optim.Optimizer`` (its learning rate is set per run, e.g.
    ``lambda p: torch.optim.SGD(p, lr=0, momentum=0.9)``); c is then in units of ``edge`` (``"hessian"``,
    ``"preconditioned"``, ``"critical"``; default: the optimizer's own, :mod:`helpers.diagnosis.edges`) and c_sharp is
    not measured. Without it: plain SGD in the study's engine, s = λ^H_0.
    """
    if not (isinstance(model, torch.nn.Module) or callable(model)):
        raise TypeError(f"model must be a torch.nn.Module or a zero-argument callable that builds one, got "
                        f"{type(model).__name__}")
    if optimizer is not None:
        check_factory(optimizer)
    x, y, batch_size = as_tensors(x, y, batch_size)
    target = resolve_device(device)
    builder = model if not isinstance(model, torch.nn.Module) else None
    seeds = tuple(seeds)[:1] if builder is None or quick else tuple(seeds)
    if not len(seeds):
        raise ValueError("seeds is empty: give at least one initialization seed")
    grid = tuple(c_grid(6.0, 0.1)) if c_values is None else tuple(float(c) for c in c_values)
    if not grid:
        raise ValueError("c_values is empty: give at least one c")
    n, n_sharpness = len(x), min(n_sharpness, 512) if quick else n_sharpness
    config = SweepConfig(n_train=min(n_sharpness, n), n_sharpness=min(n_sharpness, n), batch_size=batch_size or n,
                         steps=steps, c_values=grid, seeds=seeds, sharpness=sharpness,
                         search="loss" if quick or optimizer is not None else "first-rise")
    data = Data(x.to(target), y.to(target), y.to(target), "user")
    batches = None if batch_size else [torch.arange(n)] * steps
    walk = functools.partial(_all_seeds, model=model, builder=builder, data=data, loss=loss, target=target,
                             batches=batches, optimizer=optimizer, edge=edge, held=held, quick=quick, progress=progress)
    config, (runs, edges, frozen, name, unit) = _bracketed(config, walk, extend=c_values is None)
    per_seed = _per_seed(runs, quick or optimizer is not None, edges, config.c_values)
    return Diagnosis(per_seed, config.c_values, runs, steps, held=held, frozen=frozen, quick=quick, optimizer=name,
                     edge=unit, loss=describe_loss(loss))


LOWEST, HIGHEST = 2.0 ** -10, 2.0 ** 16
"""The bounds of the default grid's extension: c = 2^-10 … 2^16 (η from ~1e-3 to ~6e4 times 1/λ^H_0)."""


def bracketing(runs: pd.DataFrame, grid: tuple[float, ...]) -> tuple[float, ...] | None:
    """The default grid extended where it did not bracket both edges (None where it did, or where the bounds
    :data:`LOWEST`, :data:`HIGHEST` are reached): 6 octaves lower (step 0.1 in x) when some initialization diverged
    at its first c or its loss rose there already, 4 octaves higher when some initialization did not diverge.
    :func:`diagnose` walks a lower grid again from its bottom, and a higher one only above the old top, for the
    initializations that had not diverged."""
    constants = critical_constants(runs)
    x_low, x_high = math.log2(grid[0]), math.log2(grid[-1])
    lower = (constants.c_max.isna() | (constants.c_loss == grid[0])).any() and x_low - 0.1 >= math.log2(LOWEST) - 0.01
    higher = constants.censored.any() and x_high + 0.1 <= math.log2(HIGHEST) + 0.01
    if not (lower or higher):
        return None
    below = c_grid(x_low - 0.1, 0.1, min(x_low - 0.1, max(x_low - 6.0, math.log2(LOWEST)))) if lower else ()
    above = c_grid(max(x_high + 0.1, min(x_high + 4.0, math.log2(HIGHEST))), 0.1, x_high + 0.1) if higher else ()
    return tuple(sorted(set(below) | set(grid) | set(above)))


def _bracketed(config: SweepConfig, walk, extend: bool) -> tuple[SweepConfig, tuple]:
    """``walk(config)`` (every initialization on the config's grid), and with ``extend`` again on the grids
    :func:`bracketing` widens it to; the final config and walk."""
    walked = walk(config)
    while extend and (wider := bracketing(walked[0], config.c_values)) is not None:
        if wider[0] < config.c_values[0]:   # a walk starts at the bottom: all of it again
            config = replace(config, c_values=wider)
            walked = walk(config)
            continue
        # above the old top, only the initializations that did not diverge: each run depends on θ₀, c and the batch
        # order alone, so walking the new c's on their own adds exactly the runs a walk of the whole grid would
        runs = walked[0]
        open_seeds = tuple(critical_constants(runs).query("censored").seed.astype(int))
        above = tuple(c for c in wider if c > config.c_values[-1])
        more = walk(replace(config, c_values=above, seeds=open_seeds))[0]
        runs = pd.concat([runs, more], ignore_index=True).sort_values(["seed", "c", "step"], ignore_index=True)
        config, walked = replace(config, c_values=wider), (runs, *walked[1:])
    return config, walked


def _all_seeds(config: SweepConfig, *, model, builder, data: Data, loss, target, batches, optimizer, edge, held,
               quick, progress) -> tuple[pd.DataFrame, list[dict], int, str, str]:
    """Every initialization's runs on the config's grid (the held rule applied), edges, frozen tensors, the
    optimizer's description and the unit of c."""
    from tqdm import tqdm

    tables, edges, frozen, name, unit = [], [], 0, "plain SGD", "hessian"
    for seed in tqdm(config.seeds, desc="initializations", disable=not progress, leave=False):
        net, frozen = prepared(built(builder, seed) if builder is not None else model, target)
        if optimizer is None:
            tables.append(_diagnose_seed(config, net, data, seed, loss, target, batches))
            s0 = float(tables[-1]["sharpness0"].iloc[0])
            edges.append({"lambda_H0": s0, "hessian": s0})
        else:
            runs, unit, found, name = _optimizer_seed(config, net, data, seed, loss, batches, optimizer, edge, held,
                                                      quick)
            tables.append(runs)
            edges.append(found)
    return held_divergent(pd.concat(tables, ignore_index=True), held), edges, frozen, name, unit
