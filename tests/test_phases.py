"""Critical constants on crafted trajectories: the two-decimal rounding, ε, divergence, and the phases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from helpers.analysis.phases import (average_constants, barrier_constants, barrier_flags, critical_constants,
                                     polynomial_fit, with_initial_sharpness)
from helpers.rules import phase_of, rises


def _table(runs: dict[float, tuple[list[float], list[float], bool]], seed: int = 0) -> pd.DataFrame:
    """Rows for runs c → (loss ratios for t = 1.., sharpness ratios, diverged at the last step)."""
    rows = []
    for c, (losses, sharps, diverged) in runs.items():
        rows.append(dict(seed=seed, c=c, step=0, loss=2.0, loss0=2.0, sharpness=10.0, sharpness0=10.0,
                         diverged=False))
        for t, (lo, sh) in enumerate(zip(losses, sharps), start=1):
            last = diverged and t == len(losses)
            rows.append(dict(seed=seed, c=c, step=t, loss=math.inf if last else 2.0 * lo, loss0=2.0,
                             sharpness=math.nan if last else 10.0 * sh, sharpness0=10.0, diverged=last))
    return pd.DataFrame(rows).assign(depth=4, width=64)


def test_rounding_to_two_decimals():
    assert not rises([1.0049, 0.5])
    assert rises([1.0051])
    assert not rises([1.02], epsilon=0.05) and rises([1.06], epsilon=0.05)
    assert not rises([math.nan, 0.9])


def test_constants_from_crafted_runs():
    table = _table({
        1.0: ([0.9, 0.8], [0.99, 0.98], False),
        2.0: ([1.004, 0.7], [0.99, 0.9], False),       # rounds to 1.00: no loss rise
        2.5: ([1.3, 0.6], [0.95, 0.8], False),         # loss catapult
        3.0: ([2.0, 0.5], [1.006, 0.5], False),        # loss and sharpness catapult (1.006 → 1.01)
        4.0: ([5.0, 0.5], [1.5, 0.4], False),
        8.0: ([10.0, 1e9], [3.0, 0.0], True),          # divergent
        16.0: ([0.5, 0.5], [0.5, 0.5], False),          # after the first divergence: ignored
    })
    row = critical_constants(table).iloc[0]
    assert (row.c_loss, row.c_sharp, row.c_max) == (2.5, 3.0, 4.0)
    assert row.ordered and not row.censored
    assert phase_of(1.0, 2.5, 3.0, 4.0) == "sharpness reduction"
    assert phase_of(2.5, 2.5, 3.0, 4.0) == "loss catapult"
    assert phase_of(3.5, 2.5, 3.0, 4.0) == "loss and sharpness catapult"
    assert phase_of(8.0, 2.5, 3.0, 4.0) == "divergent"


def test_no_increase_before_divergence_gives_c_max():
    table = _table({1.0: ([0.9], [0.9], False), 2.0: ([0.8], [0.8], False), 4.0: ([1e9], [1.0], True)})
    row = critical_constants(table).iloc[0]
    assert (row.c_loss, row.c_sharp, row.c_max) == (2.0, 2.0, 2.0)
    assert row.c_loss_filled and row.c_sharp_filled and not row.order_observed


def test_a_no_rise_initialization_is_flagged_filled_and_left_out_of_the_ordering_count():
    observed = _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], False), 4.0: ([1e9], [1], True)}, seed=0)
    no_sharp_rise = _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [0.9], False), 4.0: ([1e9], [1], True)}, seed=1)
    constants = critical_constants(pd.concat([observed, no_sharp_rise])).set_index("seed")
    assert constants.c_loss_filled.tolist() == [False, False]
    assert constants.c_sharp_filled.tolist() == [False, True]
    assert constants.order_observed.tolist() == [True, False]
    assert constants.loc[1, "c_sharp"] == constants.loc[1, "c_max"] == 2.0
    assert average_constants(constants.reset_index()).loc[0, "c_sharp_filled"] == 0.5


def test_epsilon_for_zero_output_networks():
    table = _table({1.0: ([0.9], [1.03], False), 2.0: ([1.2], [1.07], False), 4.0: ([1e9], [1.0], True)})
    assert critical_constants(table).iloc[0].c_sharp == 1.0
    assert critical_constants(table, epsilon=0.05).iloc[0].c_sharp == 2.0


def test_first_c_divergent_and_no_divergence_at_all():
    first = critical_constants(_table({1.0: ([1e9], [1.0], True)})).iloc[0]
    assert math.isnan(first.c_max)
    open_ended = critical_constants(_table({1.0: ([0.9], [0.9], False), 2.0: ([1.1], [0.9], False)})).iloc[0]
    assert open_ended.censored and open_ended.c_max == 2.0 and open_ended.c_loss == 2.0


def test_order_violations_are_flagged_and_averages_have_bands():
    a = _table({1.0: ([0.9], [1.1], False), 2.0: ([1.2], [1.2], False), 4.0: ([1e9], [1], True)}, seed=0)
    b = _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], False), 4.0: ([1e9], [1], True)}, seed=1)
    constants = critical_constants(pd.concat([a, b]))
    assert constants["ordered"].tolist() == [False, True]
    averages = average_constants(constants)
    assert averages.loc[0, "c_sharp"] == pytest.approx(1.5)
    assert averages.loc[0, "c_sharp_low"] <= 1.5 <= averages.loc[0, "c_sharp_high"]
    assert averages.loc[0, "d_over_w"] == pytest.approx(4 / 64) and averages.loc[0, "n_init"] == 2


def test_each_initialization_gets_its_own_initial_sharpness():
    runs = {1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], True)}
    a, b = _table(runs, seed=0), _table(runs, seed=1).assign(sharpness0=30.0)
    wide = pd.concat([a, b, _table(runs, seed=0).assign(width=128, sharpness0=20.0)])
    out = with_initial_sharpness(critical_constants(wide), wide)
    assert len(out) == 3
    assert out.set_index(["width", "seed"]).sharpness0.to_dict() == {(64, 0): 10.0, (64, 1): 30.0, (128, 0): 20.0}


def test_polynomial_fit_recovers_a_quadratic_and_lowers_its_degree():
    x = np.linspace(0, 1, 7)
    fit = polynomial_fit(x, 2 + 3 * x - x**2, degree=2)
    assert fit.coeffs == pytest.approx([-1, 3, 2])
    assert polynomial_fit(np.array([0.1, 0.2]), np.array([1.0, 2.0]), degree=2).order == 1


def _curves(curves: dict[float, list[float]], seed: int = 0) -> pd.DataFrame:
    """Interpolation rows for runs c → L_int on a uniform τ grid."""
    rows = [dict(seed=seed, c=c, tau=i / (len(v) - 1), loss=x) for c, v in curves.items() for i, x in enumerate(v)]
    return pd.DataFrame(rows).assign(depth=4, width=64)


def test_a_small_interior_barrier_counts_under_definition_3_but_not_the_rounded_rule():
    flags = barrier_flags(_curves({2.0: [1.0, 1.001, 1.003, 1.001, 0.5]}), tolerance=1e-4).iloc[0]
    assert flags.barrier == pytest.approx(0.003) and flags.has_barrier and not flags.has_barrier_rounded
    assert not barrier_flags(_curves({2.0: [1.0, 1.00001, 0.5]}), tolerance=1e-4).iloc[0].has_barrier  # noise


def test_an_endpoint_maximum_is_a_barrier_by_definition_3_and_not_an_interior_one():
    flags = barrier_flags(_curves({2.0: [1.0, 1.2, 1.5, 2.0], 3.0: [1.0, 2.5, 1.8, 2.0], 4.0: [1.0, 0.7, 0.4]}),
                          tolerance=1e-4)
    still_rising, bump, falling = flags.iloc[0], flags.iloc[1], flags.iloc[2]
    assert still_rising.barrier == pytest.approx(1.0) and still_rising.has_barrier  # max over τ ∈ [0, 1]
    assert not still_rising.has_interior_barrier and still_rising.endpoint_max
    assert bump.has_barrier and bump.has_interior_barrier and not bump.endpoint_max  # above both ends
    assert falling.barrier == 0.0 and not falling.has_barrier  # the maximum at τ = 0: U* = 0


def test_c_barrier_is_the_smallest_barrier_below_c_max_else_filled():
    table = pd.concat([
        _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], False), 4.0: ([1.5], [1.5], False),
                8.0: ([1e9], [1.0], True)}, seed=0),
        _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], False), 4.0: ([1e9], [1.0], True)}, seed=1)])
    curves = pd.concat([_curves({1.0: [1.0, 0.8, 0.5], 2.0: [1.0, 1.5, 2.0], 4.0: [1.0, 1.3, 0.4]}, seed=0),
                        _curves({1.0: [1.0, 0.8, 0.5], 2.0: [1.0, 1.004, 0.9]}, seed=1)])
    out = barrier_constants(critical_constants(table), curves, tolerance=1e-4).set_index("seed")
    assert out.loc[0, "c_barrier"] == 2.0 and not out.loc[0, "c_barrier_filled"]  # Definition 3: the endpoint counts
    assert out.loc[0, "c_barrier_interior"] == 4.0  # c = 2 ends mid-catapult: no interior maximum
    assert out.loc[0, "c_barrier_rounded"] == 2.0
    assert out.loc[1, "c_barrier"] == 2.0 and out.loc[1, "c_barrier_rounded"] == out.loc[1, "c_max"] == 2.0
    assert out.loc[1, "c_barrier_rounded_filled"]
    seed1_no_barrier = barrier_constants(critical_constants(table), curves, tolerance=0.01).set_index("seed")
    assert seed1_no_barrier.loc[1, "c_barrier_filled"] and seed1_no_barrier.loc[1, "c_barrier"] == 2.0


def _averages(scale: float) -> pd.DataFrame:
    xs = np.array([0.01, 0.05, 0.1])
    values = {"c_loss": 2 + 10 * xs, "c_sharp": 3 + 10 * xs, "c_max": 8 + 10 * xs}
    columns = {"d_over_w": xs}
    for name, v in values.items():
        columns.update({name: scale * v, f"{name}_low": scale * v * 0.9, f"{name}_high": scale * v * 1.1})
    return pd.DataFrame(columns)


def test_panels_that_share_their_c_axis_show_every_point():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.analysis.plots import plot_phase_diagram

    fig, axes = plt.subplots(1, 2, sharey=True)
    tall, short = _averages(8.0), _averages(1.0)
    plot_phase_diagram(tall, axes[0])
    plot_phase_diagram(short, axes[1])  # drawn last, it must not shrink the shared axis below the tall panel
    top = axes[0].get_ylim()[1]
    assert top >= tall.c_max_high.max() and top == axes[1].get_ylim()[1]
    assert max(axes[0].get_yticks()) >= 64
    plt.close(fig)


def test_one_phase_classifier_names_the_studys_four_phases_and_the_other_case():
    from helpers.rules import PHASES, SHARPNESS_ONLY, phase_of

    assert [phase_of(c, 2.0, 4.0, 8.0) for c in (0.5, 2.0, 3.0, 4.0, 8.0, 9.0)] == [
        PHASES[0], PHASES[1], PHASES[1], PHASES[2], PHASES[2], PHASES[3]]
    assert phase_of(1.5, 2.0, 1.0, 8.0) == SHARPNESS_ONLY  # c_sharp ≤ c < c_loss
    assert phase_of(3.0, 2.0, 1.0, 8.0) == PHASES[2]


def test_means_over_observed_constants_leave_out_fills_and_censored_maxima():
    a = _table({1.0: ([0.9], [0.9], False), 2.0: ([1.2], [1.2], False), 4.0: ([1e9], [1], True)}, seed=0)
    b = _table({1.0: ([0.9], [0.9], False), 2.0: ([0.9], [0.9], False), 4.0: ([0.9], [0.9], False)}, seed=1)
    averages = average_constants(critical_constants(pd.concat([a, b]))).iloc[0]
    assert averages.c_loss == pytest.approx(3.0)  # seed 1's c_loss is filled with its (censored) c_max = 4
    assert averages.c_loss_observed == 2.0 and averages.c_loss_n_observed == 1
    assert averages.c_max == pytest.approx(3.0) and averages.c_max_observed == 2.0 and averages.c_max_n_observed == 1


def test_a_violation_is_observable_only_where_every_run_below_c_loss_and_c_sharp_had_its_sharpness_measured():
    seen = _table({1.0: ([0.9, 0.9], [0.9, 0.9], False), 2.0: ([0.9, 0.9], [0.9, 0.8], False),
                   4.0: ([1.2, 0.9], [1.2, 0.9], False), 8.0: ([1e9, 1e9], [1, 1], True)}, seed=0)
    blind = seen.copy().assign(seed=1)
    blind.loc[(blind.c == 2.0) & (blind.step == 2), "sharpness"] = math.nan  # one step of a run below c_loss unmeasured
    risen = seen.copy().assign(seed=2)
    risen.loc[(risen.c == 2.0) & (risen.step == 1), "sharpness"] = 12.0  # a violation seen, the rest not needed
    risen.loc[(risen.c == 2.0) & (risen.step == 2), "sharpness"] = math.nan
    between = seen.copy().assign(seed=3)
    between.loc[(between.c == 1.0) & (between.step == 1), "sharpness"] = 12.0  # c_sharp = 1 < c_loss = 4 is seen ...
    between.loc[(between.c == 2.0) & (between.step >= 1), "sharpness"] = math.nan  # ... the run at 2 is not needed
    hidden = seen.copy().assign(seed=4)
    hidden.loc[(hidden.c == 1.0) & (hidden.step == 2), "sharpness"] = math.nan  # below c_sharp = 2, not measured:
    hidden.loc[(hidden.c == 2.0) & (hidden.step == 1), "sharpness"] = 12.0  # c_sharp might be 1
    constants = critical_constants(pd.concat([seen, blind, risen, between, hidden]).assign(steps=2)).set_index("seed")
    assert constants.order_observable.tolist() == [True, False, True, True, False]
    assert constants.loc[2, "c_sharp"] == 2.0 and not constants.loc[2, "ordered"]
    assert constants.loc[3, "c_sharp"] == 1.0 and constants.loc[3, "c_loss"] == 4.0


def test_early_spread_is_the_seed_to_seed_deviation_of_the_trajectories():
    from helpers.analysis.phases import early_spread

    a = _table({1.0: ([0.9, 0.8], [0.9, 0.9], False)}, seed=0)
    b = _table({1.0: ([0.7, 0.6], [0.9, 0.9], False)}, seed=1)
    out = early_spread(pd.concat([a, b]), c=1.0).iloc[0]
    assert out.loss_spread == pytest.approx(np.std([0.9, 0.7], ddof=1)) and out.sharpness_spread == 0.0
    assert out.n_init == 2 and out.d_over_w == pytest.approx(4 / 64)


def test_the_barrier_claim_counts_observed_initializations_and_names_the_exceptions():
    from helpers.analysis.phases import barrier_claim

    constants = pd.DataFrame(dict(depth=2, width=[32, 32, 128], seed=[0, 1, 0], c_sharp=[2.0, 3.0, 4.0],
                                  c_sharp_filled=[False, False, True], c_barrier=[2.0, 2.5, 1.0],
                                  c_barrier_filled=[False, False, False]))
    found = barrier_claim(constants)
    assert (found["held"], found["total"]) == (1, 2)  # the third has c_sharp filled: not counted
    assert found["exceptions"] == [dict(depth=2, width=32, seed=1, c_sharp=3.0, c_barrier=2.5)]


def test_rule_changes_counts_the_initializations_whose_constants_move():
    from helpers.analysis.phases import rule_changes

    ours = pd.DataFrame(dict(depth=[2, 2, 2, 4], width=[8, 8, 8, 8], seed=[0, 1, 2, 0],
                             c_loss=[2.0, 2.0, np.nan, 3.0], c_sharp=[2.5, 2.5, 2.5, 3.0], c_max=[8.0, 9.0, 8.0, 6.0]))
    other = ours.assign(c_max=[8.0, 8.5, 8.0, 6.0], c_loss=[2.0, 2.0, np.nan, 3.0])
    other = pd.concat([other, pd.DataFrame(dict(depth=[2], width=[8], seed=[7], c_loss=[1.0], c_sharp=[1.0],
                                                c_max=[1.0]))])  # only in one table: left out
    table = rule_changes(ours, other).set_index(["depth", "width"])
    assert table.loc[(2, 8), "n_init"] == 3 and table.loc[(2, 8), "changed"] == 1  # NaN = NaN is no change
    assert table.loc[(2, 8), "c_max_changed"] == 1 and table.loc[(2, 8), "c_loss_changed"] == 0
    assert table.loc[(2, 8), "c_max"] == pytest.approx(25 / 3) and table.loc[(2, 8), "c_max_other"] == pytest.approx(
        24.5 / 3)
    assert table.loc[(4, 8), "changed"] == 0
