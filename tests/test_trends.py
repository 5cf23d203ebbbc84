"""Trends decided by the data: a slope against its own noise with the grid's resolution as the floor, strict
monotonicity beside it, Spearman's ρ where the question is a rank trend — on tables whose answer is known, ties and
zero standard errors included."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers.analysis.trends import (FALLS, FLAT, NO_RANK_TREND, RISES, constant_trend, describe_trends, grid_floor,
                                     trend, trend_of)

X = np.array([0.01, 0.02, 0.04, 0.08])


def test_a_trend_is_called_only_when_the_slope_stands_out_of_its_noise():
    assert trend(X, 2 + 10 * X, se=np.full(4, 0.01)) == RISES
    assert trend(X, 2 - 10 * X, se=np.full(4, 0.01)) == FALLS
    assert trend(X, 2 + 10 * X, se=np.full(4, 1.0)) == FLAT  # a slope of 0.8 in noise of 1
    assert trend(X, [2.0, 2.3, 2.2, 2.9], se=np.full(4, 0.05)) == RISES  # not monotone, but clearly rising


def test_equal_means_with_zero_standard_error_are_flat_not_not_monotone():
    found = trend_of([1, 2, 3], [2.30, 2.30, 2.30], se=[0.0, 0.0, 0.0])
    assert found.direction == FLAT and found.slope == 0.0 and found.monotone is None


def test_a_drift_of_one_grid_step_with_zero_spread_is_flat_under_the_grid_floor():
    c = 2.0 * 2 ** (0.1 * np.array([0, 0, 1]))  # the last mean one grid step up, every standard error 0
    floor = c * (2**0.1 - 1)
    assert trend([1, 2, 3], c, se=[0, 0, 0], floor=floor) == FLAT
    assert trend([1, 2, 3], c, se=[0, 0, 0]) == RISES  # exact values without a floor: any slope is real
    steep = 2.0 * 2 ** (0.1 * np.array([0, 5, 10]))  # ten grid steps: rises whatever the floor
    assert trend([1, 2, 3], steep, se=[0, 0, 0], floor=steep * (2**0.1 - 1)) == RISES


def test_a_missing_standard_error_takes_the_floor_and_a_missing_value_is_left_out():
    found = trend_of(X, [2.0, np.nan, 2.2, 2.9], se=[0.05, np.nan, 0.05, np.nan], floor=0.05)
    assert found.direction == RISES and found.n == 3


def test_without_standard_errors_the_rank_trend_decides_and_monotonicity_is_reported_beside():
    x = np.arange(8)
    y = np.array([1.0, 1.2, 1.1, 1.5, 1.4, 1.9, 2.0, 2.4])  # not strictly monotone, a clear rank trend
    found = trend_of(x, y)
    expected = stats.spearmanr(x, y)
    assert found.rho == pytest.approx(expected.statistic) and found.p < 0.01  # exact: 46 of 8! orders
    assert found.direction == RISES and found.monotone is None
    assert "not strictly monotone" in found.described() and "ρ = 0.95" in found.described()
    assert trend(X, [2.0, 2.3, 2.2, 2.9]) == NO_RANK_TREND  # four points: ρ = 0.8, p = 0.2
    assert trend_of(x, -y).direction == FALLS
    assert trend_of(x, np.ones(8)).direction == NO_RANK_TREND  # all tied: no correlation to speak of


def test_one_point_is_undetermined():
    assert "undetermined" in trend([1.0], [2.0], se=[0.1])


def test_constant_trend_floors_the_standard_error_at_the_grid_of_the_arm():
    arm = pd.DataFrame(dict(d_over_w=[0.01, 0.02, 0.04], c_loss=[2.0, 2.0, 2.0 * 2**0.1], c_loss_se=[0.0, 0.0, 0.0],
                            c_x_step=[0.1] * 3))
    assert grid_floor(arm, "c_loss") == pytest.approx(arm.c_loss * (2**0.1 - 1))
    assert constant_trend(arm, "c_loss").direction == FLAT
    assert describe_trends({"across widths": arm}, names=("c_loss",)) == f"⟨c_loss⟩ {FLAT} across widths"


def test_spearman_p_is_exact_for_few_points_and_scipy_s_beyond():
    from helpers.analysis.trends import EXACT_UP_TO, spearman

    assert spearman([1, 2, 3], [1, 2, 3]) == (pytest.approx(1.0), pytest.approx(2 / 6))  # 2 of 3! orders as extreme
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])[1] == pytest.approx(2 / 24)
    rng = np.random.default_rng(1)
    x, y = np.arange(7), rng.permutation(7)  # exact p against a brute-force count with scipy's ρ
    import itertools

    rho = stats.spearmanr(x, y).statistic
    count = sum(abs(stats.spearmanr(x, p).statistic) >= abs(rho) - 1e-12 for p in itertools.permutations(y))
    assert spearman(x, y)[1] == pytest.approx(count / 5040)
    tied = spearman([1, 2, 3, 4, 5], [1, 1, 2, 3, 3])  # ties: mean ranks
    assert tied[0] == pytest.approx(stats.spearmanr([1, 2, 3, 4, 5], [1, 1, 2, 3, 3]).statistic) and 0 < tied[1] < 1
    n = EXACT_UP_TO + 4
    assert spearman(np.arange(n), np.arange(n) ** 2)[1] == pytest.approx(stats.spearmanr(np.arange(n),
                                                                                       np.arange(n) ** 2).pvalue)
    assert all(np.isnan(spearman([1, 2, 3], [5, 5, 5])))
    assert trend_of([1, 2, 3], [1.0, 2.0, 3.0]).direction == NO_RANK_TREND  # three points in order: p = 1/3


def test_a_p_value_too_small_to_print_is_bounded_not_printed_as_zero():
    x = np.arange(12.0)
    found = trend_of(x, x**2)   # scipy's t approximation: p = 0 exactly for a perfect rank correlation
    assert found.p < 1e-4 and "p < 0.0001" in found.described() and "p = 0;" not in found.described()
