"""How a measured quantity changes along an axis, said so that the data decide it and not the statistic: the weighted
least-squares slope against its own standard error (with the measurement's resolution as the floor of every
standard error, so equal means with zero spread are *flat*, never "not monotone"), strict monotonicity beside it,
and Spearman's rank correlation with its p-value where a rank trend is the question."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from helpers.rules import CONSTANTS

RISES, FALLS, FLAT = "rises", "falls", "is flat within its noise"
NO_RANK_TREND, UNDETERMINED = "shows no rank trend", "is undetermined (fewer than two points)"


@dataclass(frozen=True)
class Trend:
    """``direction``: by the slope where standard errors are given (:data:`RISES`, :data:`FALLS`, :data:`FLAT`), by
    Spearman's ρ at level ``alpha`` where not (:data:`RISES`, :data:`FALLS`, :data:`NO_RANK_TREND`); ``monotone``:
    ``"rises"``/``"falls"`` when y is strictly monotone in x, else None."""

    direction: str
    slope: float
    error: float
    monotone: str | None
    rho: float
    p: float
    n: int

    def __str__(self) -> str:
        return self.direction

    def described(self) -> str:
        """The direction with the numbers it rests on."""
        shape = f"strictly monotone: {self.monotone}" if self.monotone else "not strictly monotone"
        if self.n < 2:
            return self.direction
        p = f"p = {self.p:.2g}" if self.p >= 1e-4 else "p < 0.0001"
        rank = f"Spearman ρ = {self.rho:.2f}, {p}" if np.isfinite(self.rho) else "no rank correlation"
        return f"{self.direction} ({rank}; {shape})"


EXACT_UP_TO = 8
"""Up to this many points Spearman's p-value is exact (every permutation counted); above, scipy's t approximation."""


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ and its two-sided p-value: exact over all permutations of the ranks for n ≤ :data:`EXACT_UP_TO`
    (the t approximation gives p = 0 for three points in order, where the exact answer is 1/3), ties as mean ranks.
    NaN for both where x or y is constant."""
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return math.nan, math.nan
    rho = float(stats.spearmanr(x, y).statistic)
    if len(x) > EXACT_UP_TO:
        return rho, float(stats.spearmanr(x, y).pvalue)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    shuffled = ry[np.array(list(itertools.permutations(range(len(y)))))]
    return rho, float(np.mean(np.abs(_rank_correlations(rx, shuffled)) >= abs(rho) - 1e-12))


def _rank_correlations(rx: np.ndarray, shuffled: np.ndarray) -> np.ndarray:
    a = rx - rx.mean()
    b = shuffled - shuffled.mean(axis=1, keepdims=True)
    return (b @ a) / (np.linalg.norm(a) * np.linalg.norm(b, axis=1))


def _monotone(x: np.ndarray, y: np.ndarray) -> str | None:
    steps = np.diff(y[np.argsort(x, kind="stable")])
    if len(steps) and (steps > 0).all():
        return RISES
    if len(steps) and (steps < 0).all():
        return FALLS
    return None


def _slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """The weighted least-squares slope and its standard error; with every standard error 0 (exact values), the
    plain slope and an error of 0."""
    if not (se > 0).any():
        exact = np.ptp(y) > 0 and len(np.unique(x)) > 1
        return (float(np.polyfit(x, y, 1)[0]) if exact else 0.0), 0.0
    se = np.where(se > 0, se, se[se > 0].min())  # an exact value among noisy ones: as precise as the best of them
    w = 1 / se**2
    dx = x - np.average(x, weights=w)
    slope = np.sum(w * dx * (y - np.average(y, weights=w))) / np.sum(w * dx**2)
    return float(slope), float(np.sqrt(1 / np.sum(w * dx**2)))


def trend_of(x, y, se=None, z: float = 2.0, floor=0.0, alpha: float = 0.05) -> Trend:
    """How y changes as x grows (points where y is NaN left out). With standard errors ``se`` (each raised to
    ``floor``, a scalar or one per point: the resolution of the measurement): ``"rises"``/``"falls"`` when the
    weighted slope lies more than ``z`` of its standard errors from 0, else flat. Without: by Spearman's ρ, a rank
    trend where its p-value is below ``alpha``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~np.isnan(y)
    floors = np.broadcast_to(np.asarray(floor, float), x.shape)[keep]
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return Trend(UNDETERMINED, np.nan, np.nan, None, np.nan, np.nan, len(x))
    rho, p = spearman(x, y)
    monotone = _monotone(x, y)
    if se is None:
        direction = (RISES if rho > 0 else FALLS) if np.isfinite(p) and p < alpha else NO_RANK_TREND
        return Trend(direction, np.nan, np.nan, monotone, rho, p, len(x))
    errors = np.nan_to_num(np.asarray(se, float)[keep], nan=0.0)
    slope, error = _slope(x, y, np.maximum(errors, floors))
    direction = RISES if slope > z * error else FALLS if slope < -z * error else FLAT
    return Trend(direction, slope, error, monotone, rho, p, len(x))


def trend(x, y, se=None, z: float = 2.0, floor=0.0) -> str:
    """:func:`trend_of`'s direction."""
    return trend_of(x, y, se, z, floor).direction


def grid_floor(averages: pd.DataFrame, name: str) -> np.ndarray:
    """The resolution of a constant read off the grid c = 2^(k·c_x_step), as the floor of its standard error: a
    reading c leaves the constant anywhere in [c, c·2^step), so a mean whose initializations all agree is known to
    one grid step, c·(2^step − 1), and no better — however small its standard error (zero where the table has no
    ``c_x_step``)."""
    if "c_x_step" not in averages:
        return np.zeros(len(averages))
    return np.asarray(averages[name] * (2.0 ** averages["c_x_step"].astype(float) - 1), float)


def constant_trend(averages: pd.DataFrame, name: str, x: str = "d_over_w", z: float = 2.0) -> Trend:
    """How the mean of a constant over initializations changes along ``x`` in one arm of a phase diagram (rows of
    :func:`~helpers.analysis.phases.average_constants`), its standard errors floored at the grid's resolution."""
    return trend_of(averages[x], averages[name], averages.get(f"{name}_se"), z, grid_floor(averages, name))


def describe_trends(arms: dict[str, pd.DataFrame], names: tuple[str, ...] = CONSTANTS) -> str:
    """One clause per constant: how its mean over initializations changes with d/w in each arm of a phase diagram
    (``arms``: a label such as "across widths" → the arm's :func:`~helpers.analysis.phases.average_constants`), by
    :func:`constant_trend`."""
    clauses = []
    for name in names:
        parts = [f"{constant_trend(a, name)} {label}" for label, a in arms.items()]
        clauses.append(f"⟨{name}⟩ " + " and ".join(parts))
    return "; ".join(clauses)
