"""How wide the drop of χ(c) is, and the window it opens: the full width at half depth of the −χ″ peak (in octaves of
c) and the sharpness-reduction window c_crit < c < c_loss (pure analysis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers.analysis.saturation import curvatures, leading_curve


def half_width(x: np.ndarray, y: np.ndarray, i: int | None = None) -> dict:
    """The full width at half depth of the minimum of ``y`` at index ``i`` (the deepest one when None) over the
    increasing ``x``: where, on either side, ``y`` first climbs back to half that minimum (linear interpolation
    between grid points). ``fwhm`` is NaN when the minimum is not below 0 or a side never climbs back inside the
    grid (``left``/``right`` NaN for that side)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i = int(np.argmin(y)) if i is None else i
    half = y[i] / 2
    out = dict(at=float(x[i]), depth=float(-y[i]), left=math.nan, right=math.nan, fwhm=math.nan)
    if not y[i] < 0:
        return out
    for side, step in (("left", -1), ("right", 1)):
        j = i
        while 0 <= j + step < len(y) and y[j + step] < half:
            j += step
        k = j + step
        if 0 <= k < len(y):
            out[side] = float(x[j] + (half - y[j]) / (y[k] - y[j]) * (x[k] - x[j]))  # y[j] < half ≤ y[k]
    out["fwhm"] = out["right"] - out["left"]
    return out


def peak_widths(chi: pd.DataFrame, window: int = 7, order: int = 3, c_max: float | None = None) -> pd.DataFrame:
    """Per network of :func:`~helpers.analysis.saturation.chi_from_runs`: the full width at half depth, in octaves
    of c (x = log₂ c), of the smoothed −χ_xx peak whose minimum lies at c ≤ ``c_max`` (``fwhm``; NaN where a flank
    leaves the grid), with the peak's position ``c_peak`` and depth."""
    rows = []
    for (depth, width), curve in chi.groupby(["depth", "width"]):
        curve = curve.sort_values("c")
        c, values = leading_curve(curve.c, curve.chi)
        row = dict(depth=int(depth), width=int(width), c_peak=math.nan, peak_depth=math.nan, fwhm=math.nan)
        if len(c) >= window:
            d2x, _ = curvatures(c, values, window, order)
            # the argmin restricted as Definition 4's is; its flanks followed over the whole grid
            i = int(np.argmin(np.where(c <= c_max, d2x, np.inf) if c_max is not None else d2x))
            peak = half_width(np.log2(c), d2x, i)
            row.update(c_peak=float(c[i]), peak_depth=peak["depth"], fwhm=peak["fwhm"])
        rows.append(row)
    return pd.DataFrame(rows)


def reduction_window(saturation: pd.DataFrame, constants: pd.DataFrame, c_crit: str = "c_crit") -> pd.DataFrame:
    """The sharpness-reduction window c_crit < c < c_loss per network: ``saturation`` has one row per (depth, width)
    with the column ``c_crit`` names (``c_crit``: NaN where the network has no stage 1; ``c_crit_x``: Definition
    4's argmin wherever it was computed), ``constants`` one row per initialization with ``c_loss``. The window's
    width in octaves, log₂(⟨c_loss⟩/c_crit), with ⟨c_loss⟩'s standard error carried over."""
    by_network = constants.groupby(["depth", "width"]).c_loss.agg(c_loss="mean", c_loss_se="sem", n_init="count")
    table = saturation[["depth", "width", c_crit]].rename(columns={c_crit: "c_crit"}).merge(
        by_network.reset_index(), on=["depth", "width"])
    table["d_over_w"] = table.depth / table.width
    table["window_octaves"] = np.log2(table.c_loss / table.c_crit)
    table["window_se"] = table.c_loss_se / (table.c_loss * math.log(2))
    return table.sort_values("d_over_w").reset_index(drop=True)
