"""The output-scale analysis: the early peak of the sharpness and the verdicts generated from numbers."""

from __future__ import annotations

import math

import pandas as pd

from helpers.analysis.ablations import early_peak, larger_verdict, majority_verdict, near_two_verdict, verdict


def _runs(seed: int, width: int, ratios: list[float], c: float = 1.0) -> list[dict]:
    rows = [dict(seed=seed, depth=2, width=width, c=c, step=0, sharpness=10.0, sharpness0=10.0, diverged=False)]
    rows += [dict(seed=seed, depth=2, width=width, c=c, step=t, sharpness=10.0 * r, sharpness0=10.0, diverged=False)
             for t, r in enumerate(ratios, start=1)]
    return rows


def test_the_early_peak_is_the_largest_measured_ratio_and_rises_by_the_two_decimal_rule():
    rows = _runs(0, 32, [0.99, 1.004, 0.98]) + _runs(1, 32, [0.99, 1.02, math.nan]) + _runs(0, 32, [2.0], c=2.0)
    peaks = early_peak(pd.DataFrame(rows)).set_index("seed")
    assert peaks.loc[0, "peak"] == 1.004 and not peaks.loc[0, "rose"]  # 1.004 rounds to 1.00
    assert peaks.loc[1, "rose"] and peaks.loc[1, "measured_steps"] == 2  # measured until it rose
    assert set(peaks.c) == {1.0}  # the smallest c


def test_verdicts_are_reproduced_not_reproduced_or_mixed_by_what_holds():
    assert verdict([True, True]) == "reproduced" and verdict([False]) == "not reproduced"
    assert verdict([True, False]) == "mixed" and verdict([]) == "not reproduced"
    peaks = pd.DataFrame(dict(depth=2, width=[32, 32, 32, 64, 64, 64], rose=[True, True, False, False, False, True]))
    found = majority_verdict("rises", peaks, expect_rise=True)
    assert found["verdict"] == "mixed" and found["evidence"].startswith("1 of 2 networks")
    averages = pd.DataFrame(dict(depth=[2, 4], width=[32, 32], c_loss=[2.2, 3.5]))
    assert near_two_verdict("≈ 2", averages)["verdict"] == "mixed"  # 3.5 is 0.81 octave above 2
    big, small = pd.Series([4.0, 4.2, 4.1]), pd.Series([2.0, 2.1, 1.9])
    assert larger_verdict("grows", [("w", big, small)])["verdict"] == "reproduced"
    assert larger_verdict("grows", [("w", small, big)])["verdict"] == "not reproduced"
    noisy = pd.Series([1.0, 5.0, 9.0])
    assert larger_verdict("grows", [("w", noisy, small)])["verdict"] == "not reproduced"  # within 2 errors
