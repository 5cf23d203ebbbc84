"""What a diagnosis found: the early phase diagram of one model as data, with the rules that read it as learning rates.
Its text and figure are drawn by :mod:`helpers.diagnosis.report`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from helpers.analysis.plots import PHASE_COLOURS
from helpers.diagnosis.edges import PLAIN_SGD, OptimizerIdentity
from helpers.diagnosis.report import plot_phases, summary
from helpers.rules import CONSTANTS, HELD, phase_of


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
    optimizer: OptimizerIdentity = field(default=PLAIN_SGD)
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
        """The phases on a learning-rate axis (log), one band per initialization; the suggested range hatched
        (:func:`helpers.diagnosis.report.plot_phases`)."""
        return plot_phases(self, ax, title)

    def __str__(self) -> str:
        return summary(self)

    __repr__ = __str__
