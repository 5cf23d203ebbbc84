"""Critical learning-rate constants and phases of the early transient, from a sweep's table.

Rules of the study: a ratio (L_t/L_0 or λ^H_t/λ^H_0, 1 ≤ t ≤ T) counts as a rise when, rounded to two decimals,
it exceeds 1 (1 + ε for the sharpness of zero-output networks). Per initialization:
c_loss = smallest c whose loss rises, c_sharp = smallest c whose sharpness rises, c_max = largest c before the
first divergent one. When no run below the first divergence rises, the constant is c_max.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PHASES = ("sharpness reduction", "loss catapult", "loss and sharpness catapult", "divergent")
CONSTANTS = ("c_loss", "c_sharp", "c_max")
MODEL_KEYS = ("arch", "depth", "width", "parameterization", "bias", "output", "output_value", "dataset", "loss_fn",
              "batch_size")


def rises(ratios: np.ndarray | pd.Series, epsilon: float = 0.0) -> bool:
    """True when some ratio, rounded to two decimals, exceeds 1 + ε (NaN ratios are ignored)."""
    values = np.asarray(ratios, dtype=float)
    values = values[~np.isnan(values)]
    return bool(np.any(np.round(values, 2) > 1.0 + epsilon))


def group_keys(table: pd.DataFrame) -> list[str]:
    """The model and data columns present in ``table`` that tell sweeps apart."""
    return [k for k in MODEL_KEYS if k in table.columns]


def run_flags(table: pd.DataFrame, epsilon: float = 0.0) -> pd.DataFrame:
    """One row per run (…, seed, c): whether its loss rose, its sharpness rose, and whether it diverged."""
    rows = []
    keys = group_keys(table) + ["seed", "c"]
    for key, run in table.groupby(keys, dropna=False, sort=True):
        later = run[(run["step"] >= 1) & ~run["diverged"]]
        rows.append(dict(zip(keys, key), diverged=bool(run["diverged"].any()),
                         loss_rises=rises(later["loss"] / later["loss0"]),
                         sharp_rises=rises(later["sharpness"] / later["sharpness0"], epsilon)))
    return pd.DataFrame(rows)


def constants_of(flags: pd.DataFrame) -> dict:
    """c_loss, c_sharp, c_max (and whether the grid found no divergence) for the runs of one initialization."""
    flags = flags.sort_values("c")
    c = flags["c"].to_numpy()
    divergent = flags["diverged"].to_numpy()
    censored = not divergent.any()
    first = len(c) if censored else int(np.argmax(divergent))
    if first == 0:
        return dict(c_loss=np.nan, c_sharp=np.nan, c_max=np.nan, censored=False)
    c_max = float(c[first - 1])
    below = flags.iloc[:first]
    out = dict(c_max=c_max, censored=censored)
    for name, flag in (("c_loss", "loss_rises"), ("c_sharp", "sharp_rises")):
        rising = below.loc[below[flag], "c"]
        out[name] = float(rising.iloc[0]) if len(rising) else c_max
    return out


def critical_constants(table: pd.DataFrame, epsilon: float = 0.0) -> pd.DataFrame:
    """One row per initialization (model keys, seed) with c_loss, c_sharp, c_max and ``censored``."""
    flags = run_flags(table, epsilon)
    keys = group_keys(table) + ["seed"]
    rows = [dict(zip(keys, key), **constants_of(runs)) for key, runs in flags.groupby(keys, dropna=False)]
    out = pd.DataFrame(rows)
    out["ordered"] = (out["c_loss"] <= out["c_sharp"]) & (out["c_sharp"] <= out["c_max"])
    return out


def barrier_flags(interpolation: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the barrier U* = max_τ L_int(τ) − L(θ₀) and whether it counts (max L_int/L(θ₀), rounded
    to two decimals, exceeds 1)."""
    keys = group_keys(interpolation) + ["seed", "c"]
    rows = []
    for key, curve in interpolation.groupby(keys, dropna=False, sort=True):
        curve = curve.sort_values("tau")
        start = curve["loss"].iloc[0]
        rows.append(dict(zip(keys, key), barrier=float(curve["loss"].max() - start),
                         has_barrier=rises(curve["loss"] / start)))
    return pd.DataFrame(rows, columns=keys + ["barrier", "has_barrier"])


def barrier_constants(constants: pd.DataFrame, interpolation: pd.DataFrame) -> pd.DataFrame:
    """Add c_barrier to each initialization's constants: the smallest c ≤ c_max whose run has a barrier, else
    c_max."""
    flags = barrier_flags(interpolation)
    keys = group_keys(constants) + ["seed"]
    out = constants.copy()
    values = []
    for _, row in constants.iterrows():
        mine = flags
        for k in keys:
            mine = mine[(mine[k] == row[k]) | (mine[k].isna() & pd.isna(row[k]))]
        hits = mine[(mine["c"] <= row["c_max"]) & mine["has_barrier"]]["c"]
        values.append(float(hits.min()) if len(hits) else row["c_max"])
    out["c_barrier"] = values
    return out


def phase_of(c: float, c_loss: float, c_sharp: float, c_max: float) -> str:
    """The phase of the early transient at learning-rate constant c, given one initialization's constants."""
    if c > c_max:
        return PHASES[3]
    if c < c_loss:
        return PHASES[0]
    return PHASES[1] if c < c_sharp else PHASES[2]


def average_constants(constants: pd.DataFrame, names: tuple[str, ...] = CONSTANTS, low: float = 0.25,
                      high: float = 0.75) -> pd.DataFrame:
    """Mean and [low, high] quantiles over initializations of each constant, per model, with d/w."""
    keys = [k for k in group_keys(constants) if k in constants.columns]
    rows = []
    for key, group in constants.groupby(keys, dropna=False):
        row = dict(zip(keys, key), n_init=len(group))
        for name in names:
            values = group[name].dropna()
            row[name] = values.mean()
            row[f"{name}_low"], row[f"{name}_high"] = values.quantile(low), values.quantile(high)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["d_over_w"] = out["depth"] / out["width"]
    return out.sort_values("d_over_w", ignore_index=True)


def polynomial_fit(x: np.ndarray, y: np.ndarray, degree: int = 2) -> np.poly1d:
    """Least-squares polynomial of ``degree`` (lowered to fit the number of distinct points) through (x, y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~np.isnan(y)
    degree = max(0, min(degree, len(np.unique(x[keep])) - 1))
    return np.poly1d(np.polyfit(x[keep], y[keep], degree))


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
