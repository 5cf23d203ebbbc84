"""The output-scale ablations of Section 4 and Apps. G, H, read from a sweep's tables: whether the sharpness rises
during the early transient at small c, and a verdict per claim of the study, generated from the numbers.

A verdict is ``"reproduced"`` when the stated test holds for every network it covers, ``"not reproduced"`` when it
holds for none, ``"mixed"`` otherwise; its ``evidence`` says what was counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis.trends import FLAT, RISES, constant_trend, trend_of
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


def larger_verdict(claim: str, pairs: list[tuple[str, pd.Series, pd.Series]], z: float = 2.0,
                   step: float | None = None) -> dict:
    """For each (label, larger, smaller) pair of constants over initializations: the mean of ``larger`` exceeds the
    mean of ``smaller`` by more than ``z`` standard errors of the difference. With ``step``, the grid c = 2^(k·step)
    the constants were read from, each mean's standard error is at least one grid step
    (:func:`~helpers.analysis.trends.grid_floor`): two networks whose initializations all agree differ only by more
    than the grid can tell apart. Without it and one initialization each, by any amount. The evidence gives each
    mean ± the standard error used."""
    holds, parts = [], []
    for label, big, small in pairs:
        errors = [float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0 for v in (big, small)]
        if step is not None:
            errors = [max(e, float(v.mean()) * (2.0**step - 1)) for e, v in zip(errors, (big, small))]
        ok = bool(big.mean() - small.mean() > z * np.hypot(*errors))
        holds.append(ok)
        parts.append(f"{label}: {big.mean():.3g} ± {errors[0]:.2g} vs {small.mean():.3g} ± {errors[1]:.2g}")
    return dict(claim=claim, verdict=verdict(holds), evidence=f"{sum(holds)} of {len(holds)}; " + ", ".join(parts))


def flat_verdict(claim: str, arms: dict[str, pd.DataFrame], name: str = "c_loss") -> dict:
    """A claim that a constant's mean does not change along each arm (label → rows of
    :func:`~helpers.analysis.phases.average_constants` along d/w), by
    :func:`~helpers.analysis.trends.constant_trend`: the slope within two of its standard errors, each floored at the
    grid's resolution."""
    found = {label: constant_trend(a, name) for label, a in arms.items() if len(a) > 1}
    holds = [t.direction == FLAT for t in found.values()]
    evidence = ", ".join(f"{label}: {t.direction} ({a[name].min():.2f}–{a[name].max():.2f})"
                         for (label, t), a in zip(found.items(), (arms[k] for k in found)))
    return dict(claim=claim, verdict=verdict(holds), evidence=f"{sum(holds)} of {len(holds)} arms flat; {evidence}")


def trend_verdict(claim: str, x, y, se=None, expect: str = RISES) -> dict:
    """A claim that y changes along x in the direction ``expect`` (:data:`~helpers.analysis.trends.RISES` or
    ``FALLS``), by :func:`~helpers.analysis.trends.trend_of`: with standard errors the weighted slope, without them
    Spearman's ρ at the 5 % level. Reproduced when the trend is ``expect``, not reproduced otherwise (a flat or
    opposite trend, or fewer than two points); the evidence gives the numbers."""
    found = trend_of(x, y, se)
    return dict(claim=claim, verdict=verdict([found.direction == expect]), evidence=found.described())


def ordering_verdict(claim: str, constants: pd.DataFrame, share: float = 0.9) -> dict:
    """The study's "c_loss ≤ c_sharp ≤ c_max almost always, the exceptions at large d/w", over the initializations
    whose c_loss and c_sharp were both observed (``order_observed``): it holds for at least ``share`` of them (the
    reading of "almost always" stated here), and every violation lies at a d/w above the median d/w of the networks
    checked. Reproduced when both hold, mixed when one does."""
    checked = constants[constants.order_observed].assign(d_over_w=lambda t: t.depth / t.width)
    bad = checked[~checked.ordered]
    median = float(np.median(checked.d_over_w.unique())) if len(checked) else np.nan
    held = len(checked) > 0 and (len(checked) - len(bad)) / len(checked) >= share
    large = bool((bad.d_over_w > median).all())
    evidence = f"{len(checked) - len(bad)} of {len(checked)} held"
    if len(bad):
        above = checked[checked.d_over_w >= bad.d_over_w.min()]
        evidence += (f"; the violations at d/w ≥ {bad.d_over_w.min():.4f} ({len(bad)} of the {len(above)} "
                     f"initializations there), {int((bad.d_over_w > median).sum())} of {len(bad)} above the median "
                     f"d/w {median:.4f}")
    return dict(claim=claim, verdict=verdict([held, large]), evidence=evidence)


def verdict_markdown(verdicts: list[dict]) -> str:
    """Verdicts as a Markdown table (claim, verdict, evidence), for a ``{glue:md}`` directive."""
    rows = [f"| {v['claim']} | **{v['verdict']}** | {v['evidence']} |" for v in verdicts]
    return "\n".join(["| claim | verdict | evidence |", "| --- | --- | --- |", *rows])
