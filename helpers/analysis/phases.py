"""Critical learning-rate constants and phases of the early transient, read from a sweep's table by the study's rules
(:mod:`helpers.rules`). The ordering c_loss ≤ c_sharp ≤ c_max is checked only where both c_loss and c_sharp were
observed, not filled with c_max (``order_observed``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.rules import CONSTANTS, constants_of, rises
from helpers.sweeps.schema import sweep_columns

def run_flags(table: pd.DataFrame, epsilon: float | None = None) -> pd.DataFrame:
    """One row per run (…, seed, c): whether its loss rose, whether its sharpness was measured (at some step; at
    every step 1 ≤ t ≤ T: ``sharp_complete``) and rose, and whether it diverged. ``epsilon`` defaults to the sweep's
    ``rise_epsilon`` column (0 without one)."""
    rows = []
    keys = sweep_columns(table) + ["seed", "c"]
    for key, run in table.groupby(keys, dropna=False, sort=True):
        later = run[(run["step"] >= 1) & ~run["diverged"]]
        eps = epsilon if epsilon is not None else float(run["rise_epsilon"].iloc[0]) if "rise_epsilon" in run else 0.0
        steps = int(run["steps"].iloc[0]) if "steps" in run else int(run["step"].max())
        rows.append(dict(zip(keys, key), diverged=bool(run["diverged"].any()),
                         loss_rises=rises(later["loss"] / later["loss0"]),
                         sharp_measured=bool(later["sharpness"].notna().any()),
                         sharp_complete=int(later["sharpness"].notna().sum()) == steps,
                         sharp_rises=rises(later["sharpness"] / later["sharpness0"], eps)))
    return pd.DataFrame(rows)


def critical_constants(table: pd.DataFrame, epsilon: float | None = None) -> pd.DataFrame:
    """One row per initialization (sweep columns, seed) with c_loss, c_sharp, c_max, whether each of the first two
    was filled with c_max, ``censored`` (no divergence on the grid), ``ordered``, ``order_observed`` (both c_loss and
    c_sharp observed) and ``order_observable`` (every run below min(c_loss, c_sharp) had its sharpness measured at every
    step, so that whether c_sharp < c_loss is decided: a violation would have been seen)."""
    flags = run_flags(table, epsilon)
    keys = sweep_columns(table) + ["seed"]
    rows = [dict(zip(keys, key), **constants_of(runs)) for key, runs in flags.groupby(keys, dropna=False)]
    out = pd.DataFrame(rows)
    out["ordered"] = (out["c_loss"] <= out["c_sharp"]) & (out["c_sharp"] <= out["c_max"])
    out["order_observed"] = ~out["c_loss_filled"] & ~out["c_sharp_filled"] & out["c_max"].notna()
    return out


def with_initial_sharpness(constants: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``constants`` (from :func:`critical_constants` of ``table``) with each initialization's λ^H_0, ``sharpness0``."""
    keys = sweep_columns(table) + ["seed"]
    return constants.merge(table.groupby(keys, as_index=False, dropna=False).sharpness0.first(), on=keys)


def barrier_flags(interpolation: pd.DataFrame, tolerance: float = 0.0) -> pd.DataFrame:
    """One row per run: the loss along θ₀ → θ_end, L_int(τ), read three ways.

    ``barrier`` is Definition 3's U* = max_{τ ∈ [0, 1]} L_int(τ) − L(θ₀), the endpoint included, and
    ``has_barrier`` says U* > ``tolerance``·L(θ₀) (``tolerance``: the floating-point noise of L_int, relative).
    Beside it, our stricter reading: ``has_interior_barrier`` asks for a maximum inside the segment that rises above
    both ends (a run whose maximum is its endpoint, still above L(θ₀), is a catapult in progress: ``endpoint_max``).
    ``has_barrier_rounded`` is the two-decimal rule of the other constants (max L_int/L(θ₀), rounded to two
    decimals, exceeds 1: a rise of at least 0.5 %).
    """
    keys = sweep_columns(interpolation) + ["seed", "c"]
    rows = []
    for key, curve in interpolation.groupby(keys, dropna=False, sort=True):
        loss = curve.sort_values("tau")["loss"].to_numpy(dtype=float)
        start, end, floor = loss[0], loss[-1], tolerance * loss[0]
        barrier = float(loss.max() - start)
        inside = float(loss[1:-1].max()) if len(loss) > 2 else -np.inf
        interior = inside - max(start, end) > floor
        with np.errstate(divide="ignore", invalid="ignore"):  # L(θ₀) = 0: any rise is infinite, none is NaN
            ratios = loss / start
        rows.append(dict(zip(keys, key), barrier=barrier, relative_barrier=barrier / start if start else np.inf,
                         has_barrier=barrier > floor, has_interior_barrier=bool(interior),
                         endpoint_max=bool(not interior and barrier > floor and end >= loss.max()),
                         has_barrier_rounded=rises(ratios)))
    return pd.DataFrame(rows, columns=keys + ["barrier", "relative_barrier", "has_barrier", "has_interior_barrier",
                                              "endpoint_max", "has_barrier_rounded"])


BARRIER_RULES = {"c_barrier": "has_barrier", "c_barrier_interior": "has_interior_barrier",
                 "c_barrier_rounded": "has_barrier_rounded"}


def barrier_constants(constants: pd.DataFrame, interpolation: pd.DataFrame, tolerance: float = 0.0) -> pd.DataFrame:
    """Add to each initialization's constants c_barrier (Definition 3: the smallest c ≤ c_max whose U* > 0, with
    ``tolerance`` as in :func:`barrier_flags`), and beside it ``c_barrier_interior`` (an interior maximum above both
    ends) and ``c_barrier_rounded`` (the two-decimal rule); each is filled with c_max where no run has one (the
    study's fallback), flagged ``<name>_filled``."""
    flags = barrier_flags(interpolation, tolerance)
    keys = sweep_columns(constants) + ["seed"]
    runs = flags.merge(constants[keys + ["c_max"]], on=keys)
    runs = runs[runs["c"] <= runs["c_max"]]
    out = constants.copy()
    for name, flag in BARRIER_RULES.items():
        first = runs[runs[flag]].groupby(keys, dropna=False)["c"].min().rename(name).reset_index()
        out = out.drop(columns=name, errors="ignore").merge(first, on=keys, how="left")
        out[f"{name}_filled"] = out[name].isna() & out["c_max"].notna()
        out[name] = out[name].fillna(out["c_max"])
    return out


def average_constants(constants: pd.DataFrame, names: tuple[str, ...] = CONSTANTS, low: float = 0.25,
                      high: float = 0.75) -> pd.DataFrame:
    """Mean, its standard error and [low, high] quantiles over initializations of each constant, per sweep, with
    d/w; beside each mean,
    the mean over *observed* values only (``<name>_observed``, over ``<name>_n_observed`` initializations): a value
    filled with c_max (no rise below it) or a c_max at the top of the grid (``censored``) is a lower bound, not an
    observation."""
    keys = sweep_columns(constants)
    rows = []
    for key, group in constants.groupby(keys, dropna=False):
        row = dict(zip(keys, key), n_init=len(group))
        for name in names:
            values = group[name].dropna()
            row[name] = values.mean()
            row[f"{name}_low"], row[f"{name}_high"] = values.quantile(low), values.quantile(high)
            bound = group[f"{name}_filled"] if f"{name}_filled" in group else (
                group["censored"] if name == "c_max" and "censored" in group else pd.Series(False, group.index))
            if f"{name}_filled" in group:
                row[f"{name}_filled"] = float(bound.mean())  # the share filled with c_max
            observed = group.loc[~bound.astype(bool), name].dropna()
            row[f"{name}_observed"], row[f"{name}_n_observed"] = observed.mean(), len(observed)
            row[f"{name}_se"] = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    out["d_over_w"] = out["depth"] / out["width"]
    return out.sort_values("d_over_w", ignore_index=True)


def polynomial_fit(x: np.ndarray, y: np.ndarray, degree: int = 2) -> np.poly1d:
    """Least-squares polynomial of ``degree`` (lowered to fit the number of distinct points) through (x, y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~np.isnan(y)
    if not keep.any():
        return np.poly1d([np.nan])
    degree = max(0, min(degree, len(np.unique(x[keep])) - 1))
    return np.poly1d(np.polyfit(x[keep], y[keep], degree))


def early_spread(runs: pd.DataFrame, c: float) -> pd.DataFrame:
    """App. E's question, per sweep: how far apart the early trajectories of different initializations lie at one
    c — the standard deviation over initializations of L_t/L_0 (and of λ^H_t/λ^H_0 where measured), averaged over
    1 ≤ t ≤ T, with d/w."""
    at = runs[(runs.c == c) & (runs.step >= 1) & ~runs.diverged]
    keys = sweep_columns(runs)
    rows = []
    for key, group in at.groupby(keys, dropna=False):
        ratios = group.assign(loss_ratio=group.loss / group.loss0, sharp_ratio=group.sharpness / group.sharpness0)
        by_step = ratios.groupby("step")[["loss_ratio", "sharp_ratio"]].std()
        rows.append(dict(zip(keys, key), n_init=group.seed.nunique(), loss_spread=float(by_step.loss_ratio.mean()),
                         sharpness_spread=float(by_step.sharp_ratio.mean())))
    out = pd.DataFrame(rows)
    if len(out):
        out["d_over_w"] = out["depth"] / out["width"]
    return out


def plain(value):
    """A number as a plain Python value for gluing: int, float, bool, or None for NaN."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def plain_rows(table: pd.DataFrame, columns: dict[str, str]) -> list[dict]:
    """Rows as plain dicts {new name: int, float or None (for NaN)}, for gluing into a chapter."""
    return [{new: plain(row[old]) for old, new in columns.items()} for _, row in table.iterrows()]


def barrier_claim(constants: pd.DataFrame, rule: str = "c_barrier") -> dict:
    """The study's claim c_barrier ≥ c_sharp under one barrier rule (a column of :func:`barrier_constants`), over the
    initializations whose c_sharp and barrier were both observed (not filled): {"held", "total", "exceptions"}, the
    exceptions as plain rows."""
    observed = constants[~constants[f"{rule}_filled"] & ~constants["c_sharp_filled"]]
    bad = observed[observed[rule] < observed["c_sharp"]]
    keys = [k for k in ("depth", "width", "seed", "c_sharp", rule) if k in bad.columns]
    return dict(held=int(len(observed) - len(bad)), total=int(len(observed)), exceptions=plain_rows(bad, dict(
        zip(keys, keys))))


def rule_changes(ours: pd.DataFrame, other: pd.DataFrame, names: tuple[str, ...] = CONSTANTS,
                 keys: tuple[str, ...] = ("depth", "width", "seed")) -> pd.DataFrame:
    """Per network (``keys`` but the seed), how two readings of the same initializations differ (``ours``, ``other``:
    :func:`critical_constants` tables): initializations compared and changed (any of ``names``), and for each
    constant the two means and how many initializations it changed in. Initializations in only one table are left
    out. A network row per network, changed or not."""
    pairs = ours.merge(other, on=list(keys), suffixes=("", "_other"))
    network = [k for k in keys if k != "seed"]
    rows = []
    for key, group in pairs.groupby(network):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(network, key), n_init=len(group))
        moved = np.zeros(len(group), dtype=bool)
        for name in names:
            a, b = group[name].astype(float), group[f"{name}_other"].astype(float)
            differs = ~((a.to_numpy() == b.to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy()))
            moved |= differs
            row |= {name: float(a.mean()), f"{name}_other": float(b.mean()), f"{name}_changed": int(differs.sum())}
        rows.append(row | {"changed": int(moved.sum())})
    return pd.DataFrame(rows)
