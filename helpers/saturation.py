"""The intermediate saturation regime: χ(c) and the critical constant c_crit from its smoothed curvature."""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter


def savgol_derivatives(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3) -> tuple[np.ndarray, ...]:
    """Savitzky–Golay smoothed χ and its derivatives χ′, χ″ on a uniform grid of c."""
    c, chi = np.asarray(c, float), np.asarray(chi, float)
    steps = np.diff(c)
    if len(c) < window or not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        raise ValueError(f"need a uniform grid of c with at least window={window} points")
    delta = steps[0]
    return tuple(savgol_filter(chi, window, order, deriv=k, delta=delta) for k in range(3))


def critical_c(c: np.ndarray, chi: np.ndarray, window: int = 7, order: int = 3, prominence: float = 0.5) -> float:
    """c_crit = argmin χ″ over the first pronounced minimum: the first local minimum of χ″ at least
    ``prominence`` times as deep as its deepest one (later bends near c_max are ignored)."""
    _, _, d2 = savgol_derivatives(c, chi, window, order)
    inner = np.arange(1, len(d2) - 1)
    minima = inner[(d2[inner] < d2[inner - 1]) & (d2[inner] <= d2[inner + 1])]
    deepest = d2.min()
    if deepest >= 0 or not len(minima):
        return float("nan")
    first = next(i for i in minima if d2[i] <= prominence * deepest)
    return float(np.asarray(c)[first])
