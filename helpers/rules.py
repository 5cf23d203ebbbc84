"""The study's rules, in one place: when a ratio rises, when a run diverges, and the constants and phases they define.

A ratio (L_t/L_0 or λ^H_t/λ^H_0, 1 ≤ t ≤ T) counts as a rise when, rounded to two decimals, it exceeds 1 (1 + ε for
the sharpness of zero-output networks). A run diverges when a loss is not finite or above :data:`DIVERGE_LOSS`.
Per initialization: c_loss = smallest c whose loss rises, c_sharp = smallest c whose sharpness rises, c_max = largest
c before the first divergent one. When no run below the first divergence rises, the constant is *filled* with c_max
(a lower bound, not an observation): the tables say so in ``c_loss_filled`` and ``c_sharp_filled``.

Beside the study's, one rule of the learning-rate diagnosis: a run whose loss is still at least :data:`HELD` times
L_0 after its last step has not recovered (:func:`not_recovered`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DIVERGE_LOSS = 1e5
"""The study's divergence threshold: a loss above it, or not finite, is a divergence."""

HELD = 2.0
"""The diagnosis's rule beside the study's: a run whose loss is still ≥ HELD·L_0 after the last step counts as divergent
too (it has not come back down)."""

PHASES = ("sharpness reduction", "loss catapult", "loss and sharpness catapult", "divergent")
SHARPNESS_ONLY = "sharpness rise only"
"""The phase c_sharp ≤ c < c_loss, where the sharpness rises at smaller c than the loss (the study reports c_sharp <
c_loss for small batches, App. J; in the rich output scale, App. H.2; under cross-entropy)."""
CONSTANTS = ("c_loss", "c_sharp", "c_max")


def rises(ratios: np.ndarray | pd.Series, epsilon: float = 0.0) -> bool:
    """True when some ratio, rounded to two decimals, exceeds 1 + ε (NaN ratios are ignored)."""
    values = np.asarray(ratios, dtype=float)
    values = values[~np.isnan(values)]
    return bool(np.any(np.round(values, 2) > 1.0 + epsilon))


def diverged(loss, threshold: float = DIVERGE_LOSS):
    """Whether a loss counts as divergent: not finite, or above ``threshold``. Element-wise for a tensor, an array or a
    series; a ``bool`` for a number."""
    if isinstance(loss, (int, float)):
        return not math.isfinite(loss) or loss > threshold
    return (loss != loss) | (abs(loss) == math.inf) | (loss > threshold)   # NaN, ±inf, too large


def not_recovered(loss, loss0, factor: float | None = HELD):
    """Whether a run's final loss is still ≥ ``factor``·L_0 (element-wise like :func:`diverged`); ``factor=None``
    turns the rule off (False)."""
    return False if factor is None else loss >= factor * loss0


def constants_of(flags: pd.DataFrame) -> dict:
    """c_loss, c_sharp, c_max (and whether the grid found no divergence) for the runs of one initialization: one row
    per c with ``diverged``, ``loss_rises``, ``sharp_rises`` and ``sharp_complete`` (sharpness measured at every
    step)."""
    flags = flags.sort_values("c")
    c = flags["c"].to_numpy()
    divergent = flags["diverged"].to_numpy()
    censored = not divergent.any()
    first = len(c) if censored else int(np.argmax(divergent))
    if first == 0:
        return dict(c_loss=np.nan, c_sharp=np.nan, c_max=np.nan, censored=False, c_loss_filled=False,
                    c_sharp_filled=False, order_observable=False)
    c_max = float(c[first - 1])
    below = flags.iloc[:first]
    out = dict(c_max=c_max, censored=censored)
    for name, flag in (("c_loss", "loss_rises"), ("c_sharp", "sharp_rises")):
        rising = below.loc[below[flag], "c"]
        out[name] = float(rising.iloc[0]) if len(rising) else c_max
        out[f"{name}_filled"] = not len(rising)
    # Whether c_sharp < c_loss is decided: every run below min(c_loss, c_sharp) had its sharpness measured at every
    # step (none of them rose). Runs between an observed c_sharp < c_loss and c_loss need not be: the violation is seen.
    under = below[below["c"] < min(out["c_loss"], out["c_sharp"])]
    out["order_observable"] = bool(under["sharp_complete"].all())
    return out


def phase_of(c: float, c_loss: float, c_sharp: float, c_max: float) -> str:
    """The phase of the early transient at learning-rate constant c, given one initialization's constants: the
    study's four, and :data:`SHARPNESS_ONLY` where c_sharp ≤ c < c_loss."""
    if c > c_max:
        return PHASES[3]
    if c >= c_loss:
        return PHASES[2] if c >= c_sharp else PHASES[1]
    return SHARPNESS_ONLY if c >= c_sharp else PHASES[0]
