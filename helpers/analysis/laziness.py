"""Is a network lazy below c_crit? How far its weights move, ‖θ_t − θ₀‖/‖θ₀‖ (a sweep's ``movement`` column, recorded
with ``record_movement``), read at τ with cτ = K, against where the network's c_crit splits the c axis."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis.saturation import saturation_step

STUDY_C_CRIT = 2.0
"""The study's c_crit for MSE, the split for a network without a stage 1 (no c_crit of its own)."""


def movement_at_tau(runs: pd.DataFrame, k: float, c_crit: pd.DataFrame) -> pd.DataFrame:
    """One row per network and c: the step τ (the run's last step if it ends before), the movement there, the split
    (the network's ``c_crit`` from the table ``c_crit`` with depth, width, c_crit; else :data:`STUDY_C_CRIT`) and
    whether c lies below it."""
    splits = {(int(r.depth), int(r.width)): float(r.c_crit) for r in c_crit.itertuples() if np.isfinite(r.c_crit)}
    rows = []
    for (depth, width, c), run in runs.groupby(["depth", "width", "c"]):
        step = min(saturation_step(c, k), int(run.step.max()))
        at = run[run.step == step].iloc[0]
        split = splits.get((int(depth), int(width)), STUDY_C_CRIT)
        rows.append(dict(depth=int(depth), width=int(width), c=float(c), step=step, movement=float(at.movement),
                         split=split, below=bool(c < split)))
    return pd.DataFrame(rows)


def lazy_verdict(movement: pd.DataFrame) -> dict:
    """The claim "effectively lazy below c_crit", read as: at every c below the split the weights move less than at
    any c above it, network by network (those with c on both sides)."""
    sides = [(f"d{d} w{w}", g[g.below].movement.max(), g[~g.below].movement.min())
             for (d, w), g in movement.groupby(["depth", "width"]) if g.below.any() and (~g.below).any()]
    holds = [below < above for _, below, above in sides]
    verdict = "reproduced" if holds and all(holds) else "mixed" if any(holds) else "not reproduced"
    return dict(claim="effectively lazy below c_crit: the weights move less at every c below c_crit than at any c "
                      "above it (‖θ_τ − θ₀‖/‖θ₀‖ at cτ = K)", verdict=verdict,
                evidence="; ".join(f"{name}: at most {a:.4f} below, at least {b:.4f} above" for name, a, b in sides)
                or "no network has c on both sides of its split")
