"""The output-scale analysis: the early peak of the sharpness and the verdicts generated from numbers."""

from __future__ import annotations

import math

import pandas as pd

from helpers.analysis.ablations import (early_peak, flat_verdict, larger_verdict, majority_verdict, near_two_verdict,
                                       verdict)


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


def test_with_the_grid_step_two_agreeing_networks_one_step_apart_are_not_larger():
    small = pd.Series([2.0] * 5)
    one_step, far = pd.Series([2.0 * 2**0.1] * 5), pd.Series([2.0 * 2**1.0] * 5)
    assert larger_verdict("grows", [("w", one_step, small)])["verdict"] == "reproduced"  # zero spread: any amount
    assert larger_verdict("grows", [("w", one_step, small)], step=0.1)["verdict"] == "not reproduced"
    assert larger_verdict("grows", [("w", far, small)], step=0.1)["verdict"] == "reproduced"


def test_flat_verdict_counts_the_arms_flat_within_noise_and_grid():
    def arm(values):
        return pd.DataFrame(dict(d_over_w=[0.01, 0.02, 0.04], c_loss=values, c_loss_se=[0.0] * 3, c_x_step=[0.1] * 3))

    arms = {"d2": arm([2.0, 2.0, 2.0]), "d4": arm([2.0, 2.0, 2.0 * 2**0.1]), "d8": arm([2.0, 3.0, 6.0])}
    found = flat_verdict("independent of width", arms)
    assert found["verdict"] == "mixed" and found["evidence"].startswith("2 of 3 arms flat")
    assert "d8: rises" in found["evidence"]
    assert flat_verdict("flat", {"d2": arms["d2"]})["verdict"] == "reproduced"


def test_the_ordering_verdict_asks_for_almost_always_and_exceptions_at_large_d_over_w():
    from helpers.analysis.ablations import ordering_verdict

    rows = [dict(depth=d, width=w, seed=s, order_observed=True, ordered=True)
            for d, w in ((2, 512), (2, 128), (4, 64), (8, 32)) for s in range(10)]
    table = pd.DataFrame(rows)
    assert ordering_verdict("c", table)["verdict"] == "reproduced"
    table.loc[(table.depth == 8) & (table.seed < 2), "ordered"] = False  # 2 violations at the largest d/w
    found = ordering_verdict("c", table)
    assert found["verdict"] == "reproduced" and "38 of 40 held" in found["evidence"]
    assert "2 of the 10 initializations there" in found["evidence"]
    table.loc[(table.width == 512) & (table.seed == 0), "ordered"] = False  # one at the smallest d/w
    assert ordering_verdict("c", table)["verdict"] == "mixed"
    table.loc[table.width == 512, "ordered"] = False
    assert ordering_verdict("c", table)["verdict"] == "not reproduced"  # 28 of 40, and not only at large d/w
    table.loc[table.width == 512, "order_observed"] = False  # unobserved initializations are not counted
    assert ordering_verdict("c", table)["evidence"].startswith("28 of 30")


def test_trend_verdict_follows_the_rank_test_without_errors_and_the_slope_with_them():
    from helpers.analysis.ablations import trend_verdict
    from helpers.analysis.trends import FALLS

    x = [1, 2, 3, 4, 5, 6]
    assert trend_verdict("rises", x, [1, 2, 3, 4, 5, 6])["verdict"] == "reproduced"   # exact p = 2/720
    assert trend_verdict("rises", x, [1, 3, 2, 5, 4, 6])["verdict"] == "reproduced"   # ρ = 0.89, p < 0.05
    assert trend_verdict("rises", x[:3], [1, 2, 3])["verdict"] == "not reproduced"   # three points: p = 1/3
    assert trend_verdict("falls", x, [6, 5, 4, 3, 2, 1], expect=FALLS)["verdict"] == "reproduced"
    # the same rise within its standard errors is flat, hence not reproduced
    assert trend_verdict("rises", x, [1, 1.1, 1.2, 1.3, 1.4, 1.5], se=[1] * 6)["verdict"] == "not reproduced"
    assert "Spearman" in trend_verdict("rises", x, x)["evidence"]
