"""The intermediate regime: τ = K/c rounding, window, and c_crit recovered from a synthetic χ(c) with noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.saturation import chi_from_runs, critical_c, saturation_step, saturation_window, savgol_derivatives


def test_tau_rounds_half_up_and_is_at_least_one_at_the_grid_ends():
    assert saturation_step(0.5, 200) == 400           # the small end of a grid: many steps
    assert saturation_step(4.0, 200) == 50
    assert saturation_step(0.125 * 31, 200) == 52      # 51.61… rounds to 52
    assert saturation_step(8.0, 4.0) == 1              # exactly ½ rounds up
    assert saturation_step(8.0, 3.9) == 1              # 0.4875 would round to 0: at least one step
    assert saturation_step(1000.0, 1.0) == 1
    assert saturation_window(8.0, 4.0, 2) == [1, 2, 3]  # nothing below step 1
    assert saturation_window(1.0, 10.0, 2) == [8, 9, 10, 11, 12]
    with pytest.raises(ValueError):
        saturation_step(0.0, 1.0)


@pytest.mark.parametrize("kink", [1.7, 2.0, 2.6])
def test_c_crit_recovers_a_kink_from_a_noisy_synthetic_chi(kink):
    c = np.round(np.arange(0.5, 4.0 + 1e-9, 0.05), 6)
    chi = np.where(c < kink, 1.0, np.maximum(1.0 - 1.2 * (c - kink), 0.25))  # flat, sharp drop, plateau
    noisy = chi + np.random.default_rng(0).normal(0, 0.005, size=c.shape)
    found = critical_c(c, noisy, window=9, order=3)
    assert abs(found - kink) <= 0.1


def test_later_bends_near_c_max_are_ignored():
    c = np.round(np.arange(0.5, 4.0 + 1e-9, 0.05), 6)
    chi = np.where(c < 2.0, 1.0, np.maximum(1.0 - 1.2 * (c - 2.0), 0.3))
    chi = np.where(c > 3.5, chi - 3.0 * (c - 3.5), chi)   # a second, steeper bend near the end
    assert abs(critical_c(c, chi, window=9, order=3) - 2.0) <= 0.1


def test_savgol_needs_a_uniform_grid():
    with pytest.raises(ValueError, match="uniform grid"):
        savgol_derivatives(np.array([1, 2, 4, 8, 16, 32, 64.0]), np.ones(7))
    _, d1, d2 = savgol_derivatives(np.linspace(0, 1, 11), np.linspace(0, 1, 11) ** 2, window=5, order=2)
    assert d1[5] == pytest.approx(1.0) and d2[5] == pytest.approx(2.0)


def test_chi_averages_windows_and_leaves_out_divergent_runs():
    rows = []
    for seed, values, diverged in ((0, [0.5, 0.7], False), (1, [0.3, 0.3], False), (2, [0.1, np.nan], True)):
        rows.append(dict(depth=2, width=8, c=1.0, seed=seed, step=0, sharpness=10.0, sharpness0=10.0, diverged=False))
        for step, v in enumerate(values, start=5):
            rows.append(dict(depth=2, width=8, c=1.0, seed=seed, step=step, sharpness=10.0 * v, sharpness0=10.0,
                             diverged=diverged and np.isnan(v)))
    chi = chi_from_runs(pd.DataFrame(rows)).iloc[0]
    assert chi.chi == pytest.approx((0.6 + 0.3) / 2) and chi.n_init == 2 and chi.n_diverged == 1
