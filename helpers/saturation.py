"""The intermediate saturation regime (pure analysis): the window around τ = K/c, χ(c), and c_crit from its
smoothed curvature."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import savgol_filter


def savgol_derivatives(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3) -> tuple[np.ndarray, ...]:
    """Savitzky–Golay smoothed χ and its derivatives χ′, χ″ on a uniform grid of c."""
    c, chi = np.asarray(c, float), np.asarray(chi, float)
    steps = np.diff(c)
    if len(c) < window or not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        raise ValueError(f"need a uniform grid of c with at least window={window} points")
    delta = steps[0]
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


def saturation_step(c: float, k: float) -> int:
    """τ with c·τ = K, rounded half up to a whole step and at least 1: τ = max(1, ⌊K/c + ½⌋)."""
    if not (c > 0 and k > 0):
        raise ValueError(f"need c > 0 and K > 0, got c={c}, K={k}")
    return max(1, int(np.floor(k / c + 0.5)))


def saturation_window(c: float, k: float, half_width: int) -> list[int]:
    """The steps τ − h, …, τ + h (none below 1) over which the normalized sharpness is averaged."""
    tau = saturation_step(c, k)
    return list(range(max(1, tau - half_width), tau + half_width + 1))


def chi_from_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """χ per (depth, width, c): the mean over initializations of the window-averaged λ^H_t/λ^H_0.

    Runs that diverged before the end of their window are left out and counted in ``n_diverged``.
    """
    rows = []
    for (depth, width, c), group in runs.groupby(["depth", "width", "c"]):
        per_init = []
        for _, run in group.groupby("seed"):
            window = run[(run.step >= 1) & run.sharpness.notna()]
            if not run.diverged.any() and len(window):
                per_init.append(float((window.sharpness / window.sharpness0).mean()))
        rows.append(dict(depth=depth, width=width, c=c, chi=np.mean(per_init) if per_init else np.nan,
                         n_init=len(per_init), n_diverged=group.seed.nunique() - len(per_init)))
    return pd.DataFrame(rows)
