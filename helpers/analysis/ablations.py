"""The output-scale ablations of Section 4 and Apps. G, H, read from a sweep's tables: whether the sharpness rises
during the early transient at small c, and a verdict per claim of the study, generated from the numbers.

A verdict is ``"reproduced"`` when the stated test holds for every network it covers, ``"not reproduced"`` when it
holds for none, ``"mixed"`` otherwise; its ``evidence`` says what was counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.rules import rises
from helpers.sweeps.schema import sweep_columns

VERDICTS = ("reproduced", "not reproduced", "mixed")


def early_peak(runs: pd.DataFrame, c: float | None = None) -> pd.DataFrame:
    """Per initialization, at ``c`` (default: each sweep's smallest c): max over 1 ≤ t ≤ T of λ^H_t/λ^H_0 among the
    steps measured, and whether the sharpness *rose* during the early transient by the two-decimal rule (ε = 0).
    A run measured only until its sharpness rose (``first-rise``) gives a lower bound of the peak and the right
    answer to "did it rise"."""
    keys = sweep_columns(runs) + ["seed"]
    rows = []
    for key, run in runs.groupby(keys, dropna=False):
        at = run[(run.c == (run.c.min() if c is None else c)) & (run.step >= 1) & ~run.diverged]
        ratios = (at.sharpness / at.sharpness0).dropna()
        rows.append(dict(zip(keys, key), c=float(at.c.iloc[0]) if len(at) else np.nan,
                         peak=float(ratios.max()) if len(ratios) else np.nan, measured_steps=len(ratios),
                         rose=rises(ratios)))
    return pd.DataFrame(rows)


def verdict(holds: list[bool]) -> str:
    """``reproduced`` when every entry holds, ``not reproduced`` when none does, else ``mixed``."""
    if holds and all(holds):
        return VERDICTS[0]
    return VERDICTS[1] if not any(holds) else VERDICTS[2]


def majority_verdict(claim: str, peaks: pd.DataFrame, expect_rise: bool) -> dict:
    """A claim that the sharpness rises (``expect_rise``) or falls early, per network: it holds for a network when
    most of its initializations do so."""
    by_network = peaks.groupby(["depth", "width"]).rose.mean()
    holds = [(share > 0.5) == expect_rise for share in by_network]
    evidence = ", ".join(f"d{d} w{w}: {share:.0%} rose" for (d, w), share in by_network.items())
    return dict(claim=claim, verdict=verdict(holds), evidence=f"{sum(holds)} of {len(holds)} networks; {evidence}")


def near_two_verdict(claim: str, averages: pd.DataFrame, octaves: float = 0.5) -> dict:
    """⟨c_loss⟩ within ``octaves`` of 2 (a factor 2^octaves) for each network of ``averages``."""
    distance = np.abs(np.log2(averages.c_loss / 2))
    holds = list(distance <= octaves)
    evidence = ", ".join(f"d{r.depth} w{r.width}: {r.c_loss:.2f}" for r in averages.itertuples())
    return dict(claim=claim, verdict=verdict(holds),
                evidence=f"{sum(holds)} of {len(holds)} networks within a factor {2 ** octaves:.2f} of 2; {evidence}")


def larger_verdict(claim: str, pairs: list[tuple[str, pd.Series, pd.Series]], z: float = 2.0) -> dict:
    """For each (label, larger, smaller) pair of constants over initializations: the mean of ``larger`` exceeds the
    mean of ``smaller`` by more than ``z`` standard errors of the difference (with one initialization each, by any
    amount)."""
    holds, parts = [], []
    for label, big, small in pairs:
        error = np.sqrt(big.var(ddof=1) / len(big) + small.var(ddof=1) / len(small))
        error = 0.0 if np.isnan(error) else error  # a single initialization: the plain comparison
        ok = bool(big.mean() - small.mean() > z * error)
        holds.append(ok)
        parts.append(f"{label}: {big.mean():.2f} vs {small.mean():.2f}")
    return dict(claim=claim, verdict=verdict(holds), evidence=f"{sum(holds)} of {len(holds)}; " + ", ".join(parts))
