"""The four regimes of a whole run, read off hand-made trajectories whose regimes are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis.regimes import edge_ratio, sharpness_regimes

LR = 0.1  # 2/η = 20


def trajectory():
    """Falls from 12 to 4 by step 10, flat to step 300, sharpens to 2/η = 20 by step 700, then hovers at 19–20.5."""
    steps = np.arange(0, 1001)
    s = np.where(steps <= 10, 12 - 0.8 * steps, 4.0)
    s = np.where((steps > 300) & (steps <= 700), 4 + 16 * (steps - 300) / 400, s)
    s = np.where(steps > 700, 19.75 + 0.75 * np.sin(steps / 7.0), s)
    return steps, s


def test_each_regime_begins_where_the_trajectory_was_built_to_enter_it():
    steps, s = trajectory()
    r = sharpness_regimes(steps, s, LR)
    assert r.transient == 0 and r.saturation == 10
    assert r.sharpening == 311  # 4 + 16·(t − 300)/400 > 1.1 × 4 = 4.4 first at t = 311
    assert r.edge_of_stability in (650, 651)  # 4 + 16·(t − 300)/400 ≥ 0.9 · 2/η = 18 at t = 650 (rounding aside)
    assert list(r.as_dict()) == ["early transient", "intermediate saturation", "progressive sharpening",
                                 "edge of stability"]


def test_a_run_that_starts_above_the_edge_reaches_it_only_after_its_catapult():
    steps, s = trajectory()
    s = np.where(steps <= 10, 40 - 3.6 * steps, s)  # 2/η at the start, down to 4 by step 10
    r = sharpness_regimes(steps, s, LR)
    assert r.saturation == 10 and r.edge_of_stability in (650, 651)


def test_a_slow_decline_after_a_fast_drop_is_the_saturation_not_the_transient():
    steps = np.arange(0, 900)
    s = np.where(steps <= 5, 10 - 1.6 * steps, 2.0 - steps / 9000)  # a fast drop to 2, then 5 % lower by the end
    r = sharpness_regimes(steps, s, LR)
    assert r.saturation == 5 and r.sharpening is None and r.edge_of_stability is None


def test_a_run_that_never_sharpens_has_no_later_regimes():
    steps = np.arange(0, 200)
    s = 5 + 0.2 * np.cos(steps)  # within 10 % of its minimum throughout, far below 2/η
    r = sharpness_regimes(steps, s, LR)
    assert r.sharpening is None and r.edge_of_stability is None


def test_no_fall_means_the_transient_ends_at_once_and_nan_measurements_are_skipped():
    steps = np.arange(0, 100, dtype=float)
    s = 3 + steps / 10
    s[5] = np.nan
    r = sharpness_regimes(steps, s, LR)
    assert r.saturation == 0 and r.sharpening == 4  # 3.4 > 3.3 at step 4
    with pytest.raises(ValueError, match="at least two"):
        sharpness_regimes([0, 1], [np.nan, 1.0], LR)


def test_the_edge_ratio_is_read_over_the_last_quarter():
    steps, s = trajectory()
    ratio = edge_ratio(steps, s, LR)
    assert ratio["from_step"] == 750 and ratio["n"] == 251
    assert ratio["min"] == pytest.approx(19.0 / 20, abs=2e-3) and ratio["max"] == pytest.approx(20.5 / 20, abs=2e-3)
    assert ratio["mean"] == pytest.approx(np.mean(s[750:]) / 20)
