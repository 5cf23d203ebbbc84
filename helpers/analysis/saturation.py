"""The intermediate saturation regime (pure analysis): where the early transient ends, the window from τ = K/c on,
χ(c), and c_crit from its smoothed curvature."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def grid_spacing(c: np.ndarray) -> tuple[str, float]:
    """How the grid of c is spaced: ``("c", Δc)`` when uniform in c, ``("x", Δx)`` when uniform in x = log₂ c (the
    study's grid c = 2^x). Raises ValueError for any other grid."""
    c = np.asarray(c, float)
    for axis, values in (("c", c), ("x", np.log2(c) if (c > 0).all() else c)):
        steps = np.diff(values)
        if len(steps) and steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-4, atol=1e-9):
            return axis, float((values[-1] - values[0]) / len(steps))
    raise ValueError("need a uniform grid of c, or of x = log2(c)")


def savgol_derivatives(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3) -> tuple[np.ndarray, ...]:
    """Savitzky–Golay smoothed χ and its first two derivatives along the grid's uniform axis: in c on a grid uniform
    in c, in x = log₂ c on the study's grid c = 2^x (the filter runs over the equally spaced samples, as
    ``savgol_filter`` does; see ``grid_spacing``)."""
    c, chi = np.asarray(c, float), np.asarray(chi, float)
    if len(c) < window:
        raise ValueError(f"need a uniform grid of c with at least window={window} points, got {len(c)}")
    _, delta = grid_spacing(c)
    from scipy.signal import savgol_filter  # here, not at the top: importing scipy.signal takes ~1.7 s

    return tuple(savgol_filter(chi, window, order, deriv=k, delta=delta) for k in range(3))


def critical_c_argmin(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3,
                       c_max: float | None = None) -> float:
    """Definition 4 of the study: c_crit = argmin over the grid of the Savitzky–Golay smoothed χ″(c), restricted to
    c ≤ ``c_max`` when given (the smoothing uses the whole grid)."""
    c = np.asarray(c, float)
    _, _, d2 = savgol_derivatives(c, chi, window, order)
    inside = c <= c_max if c_max is not None else np.ones_like(c, dtype=bool)
    if not inside.any():
        raise ValueError(f"no c of the grid lies at or below c_max={c_max}")
    return float(c[inside][np.argmin(d2[inside])])


def curvatures(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The smoothed second derivative of χ in x = log₂ c and in c, from one Savitzky–Golay filter over the grid's
    uniform axis and the chain rule: χ_x = c ln2 χ_c, χ_xx = (ln 2)²(c² χ_cc + c χ_c), so
    χ_cc = (χ_xx − ln2 χ_x)/(c ln2)²."""
    c = np.asarray(c, float)
    axis, _ = grid_spacing(c)
    _, d1, d2 = savgol_derivatives(c, chi, window, order)
    ln2 = math.log(2)
    if axis == "x":
        return d2, (d2 - ln2 * d1) / (c * ln2) ** 2
    return ln2**2 * (c**2 * d2 + c * d1), d2


def critical_c_both(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3,
                    c_max: float | None = None) -> dict:
    """Definition 4 with the derivative in x = log₂ c and in c: {"c_crit_x", "c_crit_c"}, each the argmin over the
    grid (c ≤ ``c_max`` when given) of that smoothed χ″."""
    c = np.asarray(c, float)
    inside = c <= c_max if c_max is not None else np.ones_like(c, dtype=bool)
    if not inside.any():
        raise ValueError(f"no c of the grid lies at or below c_max={c_max}")
    d2x, d2c = curvatures(c, chi, window, order)
    return dict(c_crit_x=float(c[inside][np.argmin(d2x[inside])]), c_crit_c=float(c[inside][np.argmin(d2c[inside])]))


STAGE1_RANGE = 0.1  # flat: the range of ⟨χ⟩ over stage 1 at most this share of the drop that follows it
STAGE1_SE = 4.0  # ... and the drop beyond this many standard errors of ⟨χ⟩ (it is not noise)
STAGE1_POINTS = 4


def stage1(c: np.ndarray, chi: np.ndarray, se: np.ndarray, c_drop: float, share: float = STAGE1_RANGE,
           k: float = STAGE1_SE, min_points: int = STAGE1_POINTS) -> dict:
    """Whether ⟨χ⟩ has the study's stage 1, flat before its drop at ``c_drop``.

    Stage 1 is the grid below the drop by half an octave, c ≤ c_drop/√2 (at least ``min_points`` points). The drop is
    stage 1's mean less the lowest ⟨χ⟩ at c ≥ c_drop. Stage 1 holds when ⟨χ⟩ is flat there relative to what follows
    — its range (max − min) at most ``share`` of the drop — and the drop stands out of the noise: more than k times
    the root mean square of ``se`` over stage 1, the standard error of ⟨χ⟩ over initializations (so at least two are
    needed). A plateau is judged against the fall it precedes, not against the seeds' agreement: a curve measured
    very precisely is not flat for that, nor a noisy one declining steadily. Returns {"stage1", "stage1_points",
    "stage1_range", "stage1_noise", "drop", "range_share"}.
    """
    c, chi, se = (np.asarray(a, float) for a in (c, chi, se))
    before, after = c <= c_drop / math.sqrt(2), c >= c_drop
    out = dict(stage1=False, stage1_points=int(before.sum()), stage1_range=math.nan, stage1_noise=math.nan,
               drop=math.nan, range_share=math.nan)
    if before.sum() < min_points or not after.any():
        return out
    noise = float(np.sqrt(np.mean(se[before] ** 2)))
    spread = float(chi[before].max() - chi[before].min())
    drop = float(chi[before].mean() - chi[after].min())
    out.update(stage1_range=spread, stage1_noise=noise, drop=drop, range_share=spread / drop if drop > 0 else math.inf)
    out["stage1"] = bool(np.isfinite(noise) and drop > k * noise and spread <= share * drop)
    return out


def why_not_stage1(row, share: float = STAGE1_RANGE, k: float = STAGE1_SE, min_points: int = STAGE1_POINTS) -> str:
    """Which test of :func:`stage1` a row of :func:`saturation_table` failed, in words with its numbers."""
    if row["stage1_points"] < min_points or not np.isfinite(row["drop"]):
        return f"{row['stage1_points']} grid points before the drop (at least {min_points} needed)"
    if not np.isfinite(row["stage1_noise"]):
        return "one initialization: no standard error to test the drop against"
    reasons = []
    if row["range_share"] > share:
        reasons.append(f"χ already falls by {row['range_share']:.0%} of the drop before it")
    if row["drop"] <= k * row["stage1_noise"]:
        reasons.append(f"the drop, {row['drop']:.3f}, is within {k:g} standard errors ({row['stage1_noise']:.3f})")
    return " and ".join(reasons)


def critical_c(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3, sensitivity: float = 5.0,
               floor: float = 0.1) -> float:
    """Our option beside Definition 4: c_crit = argmin χ″ over the first pronounced minimum of the smoothed χ″.

    Pronounced: deeper than ``sensitivity`` robust standard deviations of χ″ (1.4826 · its median absolute
    deviation) and than ``floor`` times the deepest minimum. Taking the first such minimum ignores the hard bends
    that can follow near c_max. NaN when χ″ has no pronounced minimum.
    """
    _, _, d2 = savgol_derivatives(c, chi, window, order)
    scale = 1.4826 * np.median(np.abs(d2 - np.median(d2)))
    threshold = max(sensitivity * scale, floor * abs(min(d2.min(), 0.0)))
    inner = np.arange(1, len(d2) - 1)
    minima = inner[(d2[inner] < d2[inner - 1]) & (d2[inner] <= d2[inner + 1]) & (d2[inner] < -threshold)]
    return float(np.asarray(c)[minima[0]]) if len(minima) else float("nan")


def leading_curve(c: np.ndarray, chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grid from its smallest c up to the first c where χ is missing (a divergent or excluded c): the uniform
    stretch the filter can run over."""
    c, chi = np.asarray(c, float), np.asarray(chi, float)
    missing = np.flatnonzero(~np.isfinite(chi))
    stop = missing[0] if len(missing) else len(c)
    return c[:stop], chi[:stop]


def steepest_drop(c: np.ndarray, chi: np.ndarray) -> dict:
    """The largest fall of χ over a doubling of c on the grid: {"chi_drop", "c_from", "chi_from", "chi_to"} (0 when
    χ never falls over a doubling, NaN when the grid spans less than one)."""
    c, chi = np.asarray(c, float), np.asarray(chi, float)
    best = dict(chi_drop=math.nan, c_from=math.nan, chi_from=math.nan, chi_to=math.nan)
    for i, ci in enumerate(c):
        j = np.flatnonzero(np.isclose(c, 2 * ci, rtol=1e-3))
        if len(j) and np.isfinite(chi[i]) and np.isfinite(chi[j[0]]):
            drop = max(0.0, chi[i] - chi[j[0]])
            if math.isnan(best["chi_drop"]) or drop > best["chi_drop"]:
                best = dict(chi_drop=float(drop), c_from=float(ci), chi_from=float(chi[i]), chi_to=float(chi[j[0]]))
    return best


def saturation_step(c: float, k: float) -> int:
    """τ with c·τ = K, rounded half up to a whole step and at least 1: τ = max(1, ⌊K/c + ½⌋)."""
    if not (c > 0 and k > 0):
        raise ValueError(f"need c > 0 and K > 0, got c={c}, K={k}")
    return max(1, int(np.floor(k / c + 0.5)))


def saturation_window(c: float, k: float, n_steps: int) -> list[int]:
    """The steps τ, …, τ + n − 1 over which the normalized sharpness is averaged (the study: "a few steps from τ
    on")."""
    if n_steps < 1:
        raise ValueError(f"the window needs at least one step, got {n_steps}")
    tau = saturation_step(c, k)
    return list(range(tau, tau + n_steps))


def transient_end(run: pd.DataFrame, min_steps: int = 10) -> float:
    """The step at which a run's early transient ends, by our stated rule: the first step t ≥ ``min_steps`` (the
    study's T = 10 steps of early transient) from which on no loss the run recorded is at or above L(θ₀).

    The losses are those the run computes anyway: the training loss L_t where it was measured, and the minibatch
    loss at step s + 1, which is the loss of θ_s on that batch (so a catapult is seen at every step even when L_t
    is measured only in the window). A run that ends at or above L(θ₀) has not left its transient: +inf.
    """
    run = run.sort_values("step")
    loss0 = float(run.loss0.iloc[0])
    steps, losses = run.step.to_numpy(int), run.loss.to_numpy(float)
    batch_steps, batch_losses = steps - 1, run.batch_loss.to_numpy(float)   # θ_{s−1} on the batch of step s
    known = np.concatenate([steps[np.isfinite(losses)], batch_steps[np.isfinite(batch_losses)]])
    high = np.concatenate([steps[losses >= loss0], batch_steps[batch_losses >= loss0]])
    above = {int(s) for s in high if s >= 1}
    if not len(known) or int(known.max()) in above:
        return math.inf
    return float(max(min_steps, max(above, default=0) + 1))


def chi_from_runs(runs: pd.DataFrame, min_steps: int = 10) -> pd.DataFrame:
    """χ per (depth, width, c): the mean over initializations of the window-averaged λ^H_t/λ^H_0, and its standard
    error ``chi_se`` over them (NaN with one).

    Only windows that start after the run's measured transient end (``transient_end``) are averaged: runs that
    diverged are counted in ``n_diverged``, runs whose window starts inside their transient in ``n_in_transient``.
    ``transient_end`` is the latest end over the initializations and ``window_start`` the window's first step.
    """
    rows = []
    for (depth, width, c), group in runs.groupby(["depth", "width", "c"]):
        per_init, in_transient, diverged, ends, starts = [], 0, 0, [], []
        for _, run in group.groupby("seed"):
            measured = run[(run.step >= 1) & run.sharpness.notna()]
            if run.diverged.any() or not len(measured):
                diverged += 1
                continue
            end, start = transient_end(run, min_steps), int(measured.step.min())
            ends.append(end)
            starts.append(start)
            if start <= end:
                in_transient += 1
                continue
            per_init.append(float((measured.sharpness / measured.sharpness0).mean()))
        se = float(np.std(per_init, ddof=1) / np.sqrt(len(per_init))) if len(per_init) > 1 else np.nan
        rows.append(dict(depth=depth, width=width, c=c, chi=np.mean(per_init) if per_init else np.nan, chi_se=se,
                         n_init=len(per_init), n_diverged=diverged, n_in_transient=in_transient,
                         transient_end=max(ends) if ends else np.nan,
                         window_start=min(starts) if starts else np.nan))
    return pd.DataFrame(rows)


def saturation_table(chi: pd.DataFrame, window: int = 7, order: int = 3, c_max: float | None = None) -> pd.DataFrame:
    """One row per network (depth, width) of :func:`chi_from_runs`: Definition 4's c_crit with the derivative in x
    (``c_crit_x``) and in c (``c_crit_c``), over c ≤ ``c_max``; whether ⟨χ⟩ has a flat stage 1 before the drop
    (:func:`stage1`, the drop at ``c_crit_x``); ``c_crit`` = ``c_crit_x`` reported only where it does (NaN
    otherwise); our option, the first pronounced minimum of χ″ in x (``c_crit_first``); the mean χ over c ≤ 1
    (``chi_stage1``); the steepest fall over a doubling of c; and the initializations per point (``n_init``)."""
    rows = []
    for (depth, width), curve in chi.groupby(["depth", "width"]):
        curve = curve.sort_values("c")
        c, values = leading_curve(curve.c, curve.chi)
        row = dict(depth=int(depth), width=int(width), n_init=int(curve.n_init.max()), c_crit_x=math.nan,
                   c_crit_c=math.nan, c_crit=math.nan, c_crit_first=math.nan,
                   chi_stage1=float(curve[curve.c <= 1.0].chi.mean()), **steepest_drop(curve.c, curve.chi))
        row.update(stage1(c, values, curve.chi_se.to_numpy()[: len(c)], math.inf))  # not computed: False
        if len(c) >= window and (c_max is None or c[0] <= c_max):
            row.update(critical_c_both(c, values, window, order, c_max))
            row["c_crit_first"] = critical_c(c, values, window, order)
            row.update(stage1(c, values, curve.chi_se.to_numpy()[: len(c)], row["c_crit_x"]))
            row["c_crit"] = row["c_crit_x"] if row["stage1"] else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
