"""The calibration's figure: each suggestion against the grid's best learning rate, and predicted against observed
η_max."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.diagnosis.calibration.table import METHODS
from helpers.diagnosis.zoo import FIT, ZOO


def plot_calibration(table: pd.DataFrame, axes) -> None:
    """Left of each pair of axes: log2 of each suggestion over the grid's best learning rate, per architecture (the
    held-out ones on the right, the band of a factor 2 shaded); right: predicted against observed η_max (open
    markers: a side that found no unstable learning rate — a lower bound, drawn on the diagonal when the diagnosis's
    is missing)."""
    order = [m for m in FIT] + [m for m in ZOO if m not in FIT]
    markers = {"diagnose": ("o", "C3"), "range_test": ("s", "k"), "default": ("^", "C0")}
    for row, (optimizer, group) in zip(axes, table.groupby("optimizer", sort=False)):
        left, right = row
        for k, (method, (marker, colour)) in enumerate(markers.items()):
            x = group.model.map(order.index) + (k - 1) * 0.2
            left.plot(x, np.log2(group[f"eta_{method}"] / group.eta_best), marker, color=colour, alpha=0.7,
                      label=METHODS[method])
        left.axhspan(-1, 1, color="0.9", zorder=0)
        left.axvline(len(FIT) - 0.5, color="0.5", lw=0.8)
        left.set(xticks=range(len(order)), ylabel="log₂(η / grid's best η)", title=f"{optimizer}: suggestions")
        left.set_xticklabels(order, rotation=45, ha="right")
        left.legend()
        bounded = group.eta_max_predicted.notna() & ~group.max_censored
        right.loglog(group.eta_max_observed[bounded], group.eta_max_predicted[bounded], "o", color="C7",
                     label="both found an unstable η")
        right.loglog(group.eta_max_observed[~bounded], group.eta_max_predicted[~bounded].fillna(
            group.eta_max_observed[~bounded]), "o", mfc="none", color="C7", label="one side censored (a bound)")
        right.legend()
        limits = [np.nanmin(group[["eta_max_observed", "eta_max_predicted"]].to_numpy()) / 2,
                  np.nanmax(group[["eta_max_observed", "eta_max_predicted"]].to_numpy()) * 2]
        right.plot(limits, limits, "k:", lw=0.8)
        right.set(xlabel=f"largest η stable for {int(group.steps.iloc[0])} steps", ylabel="predicted η_max",
                  title=f"{optimizer}: η_max")
