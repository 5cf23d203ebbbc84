"""The intermediate regime: τ = K/c rounding, the window, the end of the transient, and c_crit recovered from a
synthetic χ(c) with noise on both grids (uniform in c, and the study's c = 2^x)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.chapters.parameters import chapter_parameters
from helpers.chapters.sweeps import saturation_c_values
from helpers.sweeps.config import c_grid
from helpers.analysis.saturation import (chi_from_runs, critical_c, critical_c_argmin, grid_spacing, leading_curve,
                                         saturation_step, saturation_window, savgol_derivatives, steepest_drop,
                                         transient_end)


def test_tau_rounds_half_up_and_is_at_least_one_at_the_grid_ends():
    assert saturation_step(0.5, 200) == 400           # the small end of a grid: many steps
    assert saturation_step(4.0, 200) == 50
    assert saturation_step(0.125 * 31, 200) == 52      # 51.61… rounds to 52
    assert saturation_step(8.0, 4.0) == 1              # exactly ½ rounds up
    assert saturation_step(8.0, 3.9) == 1              # 0.4875 would round to 0: at least one step
    assert saturation_step(1000.0, 1.0) == 1
    assert saturation_window(8.0, 4.0, 2) == [1, 2]     # from τ on
    assert saturation_window(1.0, 10.0, 4) == [10, 11, 12, 13]
    with pytest.raises(ValueError):
        saturation_step(0.0, 1.0)
    with pytest.raises(ValueError, match="at least one step"):
        saturation_window(1.0, 10.0, 0)


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


def test_savgol_needs_a_uniform_grid_in_c_or_in_log2_c():
    with pytest.raises(ValueError, match="uniform grid"):
        savgol_derivatives(np.array([1, 2, 3, 5, 8, 13, 21.0]), np.ones(7))
    assert grid_spacing(np.array(c_grid(2.0, 0.1, -1.0))) == ("x", pytest.approx(0.1, abs=1e-6))
    x = np.arange(-1, 2.0001, 0.1)
    _, d1, d2 = savgol_derivatives(np.round(2.0 ** x, 6), x ** 2, window=5, order=2)   # derivatives in x
    assert d1[10] == pytest.approx(2 * x[10], abs=1e-4) and d2[10] == pytest.approx(2.0, abs=1e-3)
    _, d1, d2 = savgol_derivatives(np.linspace(0, 1, 11), np.linspace(0, 1, 11) ** 2, window=5, order=2)
    assert d1[5] == pytest.approx(1.0) and d2[5] == pytest.approx(2.0)


def test_chi_averages_windows_and_leaves_out_divergent_runs():
    window = (15, 16)
    runs = [_run([0.5] * 16, window=window, seed=0, sharpness=(5.0, 7.0)),
            _run([0.5] * 16, window=window, seed=1, sharpness=(3.0, 3.0)),
            _run([0.5] * 16, window=window, seed=2, sharpness=(1.0, np.nan)).assign(diverged=lambda r: r.step == 16)]
    chi = chi_from_runs(pd.concat(runs)).iloc[0]
    assert chi.chi == pytest.approx((0.6 + 0.3) / 2) and chi.n_init == 2 and chi.n_diverged == 1


@pytest.mark.parametrize("kink", [1.7, 2.0, 2.6])
def test_definition_4_finds_a_kink_on_the_studys_log_grid(kink):
    c = np.array(c_grid(2.3, 0.05, -1.0))
    chi = np.where(c < kink, 1.0, np.maximum(1.0 - 1.5 * np.log2(c / kink), 0.25))
    noisy = chi + np.random.default_rng(1).normal(0, 0.005, size=c.shape)
    found = critical_c_argmin(c, noisy, window=9, order=3, c_max=3.0)
    assert abs(np.log2(found / kink)) <= 0.1           # within two grid steps in x


def _run(batch_losses, loss0=1.0, window=(), seed=0, c=1.0, sharpness=()):
    """A hand-built run: the minibatch loss at every step 1…T (θ_{t-1} on batch t), L_t and λ^H_t in the window."""
    rows = [dict(step=0, loss=loss0, batch_loss=np.nan, loss0=loss0, sharpness=10.0, sharpness0=10.0,
                 diverged=False, seed=seed, c=c, depth=2, width=8)]
    for step, batch in enumerate(batch_losses, start=1):
        inside = step in window
        rows.append(dict(step=step, loss=0.1 if inside else np.nan, batch_loss=batch, loss0=loss0,
                         sharpness=sharpness[window.index(step)] if inside else np.nan, sharpness0=10.0,
                         diverged=False, seed=seed, c=c, depth=2, width=8))
    return pd.DataFrame(rows)


def test_the_transient_ends_after_the_catapult_and_not_before_the_minimum():
    quiet = [0.9, 0.5, 0.3] + [0.2] * 17
    assert transient_end(_run(quiet), min_steps=10) == 10
    # the loss is back above L(θ₀) at θ_13 (seen as the minibatch loss of step 14): the transient ends at step 14
    late = [0.9, 3.0, 5.0] + [0.2] * 10 + [1.5] + [0.2] * 6
    assert transient_end(_run(late), min_steps=10) == 14
    assert transient_end(_run(late), min_steps=20) == 20
    running = [0.9, 3.0] + [2.0] * 18                   # never back below L(θ₀)
    assert transient_end(_run(running), min_steps=10) == np.inf


def test_chi_averages_only_windows_after_the_transient():
    window = (16, 17)
    after = _run([0.5] * 17, window=window, seed=0, sharpness=(6.0, 4.0))
    inside = _run([0.5] * 16 + [2.0], window=window, seed=1, sharpness=(1.0, 1.0))  # θ_16 above L(θ₀)
    late = _run([0.5] * 17, window=window, seed=2, sharpness=(9.0, 9.0))
    row = chi_from_runs(pd.concat([after, inside]), min_steps=10).iloc[0]
    assert row.chi == pytest.approx(0.5) and row.n_init == 1 and row.n_in_transient == 1
    assert row.transient_end == 17 and row.window_start == 16
    row = chi_from_runs(pd.concat([after, late]), min_steps=17).iloc[0]     # a minimum transient past the start
    assert np.isnan(row.chi) and row.n_in_transient == 2


def test_every_default_window_starts_after_a_transient_of_the_studys_length():
    p = chapter_parameters("05_intermediate_saturation")
    grid = saturation_c_values(p)
    assert grid[0] <= 0.5 and grid[-1] >= 4.0 and grid_spacing(np.array(grid))[1] <= 0.1 + 1e-6
    for c in grid:
        assert saturation_window(c, p.K, p.window_steps)[0] > p.transient_steps, c


def test_leading_curve_and_steepest_drop():
    c = np.array([0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0])
    chi = np.array([1.0, 0.98, 0.95, 0.6, 0.3, np.nan, 0.2])
    kept_c, kept = leading_curve(c, chi)
    assert list(kept_c) == [0.5, 0.71, 1.0, 1.41, 2.0] and len(kept) == 5
    drop = steepest_drop(c, chi)
    assert drop["chi_drop"] == pytest.approx(0.65) and drop["c_from"] == 1.0 and drop["chi_to"] == 0.3
    assert np.isnan(steepest_drop(c[:2], chi[:2])["chi_drop"])


def _plateau_then_drop(c: np.ndarray, c0: float = 2.0, width: float = 0.15, low: float = 0.4) -> np.ndarray:
    """A smooth χ: flat at 1 for small c, a sharp drop around c0, then a plateau at ``low``."""
    x = np.log2(c)
    return low + (1 - low) / (1 + np.exp((x - np.log2(c0)) / width))


def test_the_curvature_in_c_is_the_chain_rule_of_the_curvature_in_x():
    from helpers.analysis.saturation import curvatures

    c = 2.0 ** np.arange(-1, 2.21, 0.05)
    d2x, d2c = curvatures(c, _plateau_then_drop(c, width=0.4), window=7, order=3)
    x = np.log2(c)
    h = 1e-4  # the exact derivatives of the same function, by central differences
    f = lambda cc: _plateau_then_drop(cc, width=0.4)
    exact_c = (f(c + h) - 2 * f(c) + f(c - h)) / h**2
    fx = lambda xx: f(2.0**xx)
    exact_x = (fx(x + h) - 2 * fx(x) + fx(x - h)) / h**2
    inner = slice(4, -4)  # the filter's edges extrapolate
    assert np.allclose(d2x[inner], exact_x[inner], atol=0.02 * np.abs(exact_x).max())
    assert np.allclose(d2c[inner], exact_c[inner], atol=0.02 * np.abs(exact_c).max())


def test_definition_4_in_c_and_in_x_differ_on_a_broad_drop_as_the_chain_rule_says():
    from helpers.analysis.saturation import critical_c_both

    c = 2.0 ** np.arange(-1, 3.01, 0.1)
    sharp = critical_c_both(c, _plateau_then_drop(c, width=0.05), window=7, order=3)
    # the beginning of the drop: at or below its centre c = 2, within the filter's reach (0.35 octave)
    assert all(-0.35 <= np.log2(sharp[k] / 2) <= 0 for k in ("c_crit_x", "c_crit_c"))
    broad = critical_c_both(c, _plateau_then_drop(c, width=0.5), window=7, order=3)
    assert broad["c_crit_c"] != broad["c_crit_x"]


def test_stage1_holds_for_a_flat_plateau_and_not_for_a_curve_that_declines_from_the_start():
    from helpers.analysis.saturation import stage1

    rng = np.random.default_rng(0)
    c = 2.0 ** np.arange(-1, 2.21, 0.1)
    se = np.full_like(c, 0.01)
    flat = _plateau_then_drop(c) + rng.normal(0, 0.005, len(c))
    declining = 1 - 0.15 * (np.log2(c) + 1) + rng.normal(0, 0.005, len(c))
    found = stage1(c, flat, se, c_drop=2.0)
    assert found["stage1"] and found["stage1_points"] == len(c[c <= 2 / np.sqrt(2)]) and found["drop"] > 0.4
    assert not stage1(c, declining, se, c_drop=2.0)["stage1"]
    assert not stage1(c, flat, np.full_like(c, np.nan), c_drop=2.0)["stage1"]  # one initialization: no noise
    assert not stage1(c, np.ones_like(c), se, c_drop=2.0)["stage1"]  # flat, but no drop
    assert not stage1(c, flat, se, c_drop=0.6)["stage1"]  # too few points before the drop


def test_the_saturation_table_reports_c_crit_only_where_stage1_holds():
    from helpers.analysis.saturation import saturation_table

    c = 2.0 ** np.arange(-1, 2.21, 0.1)
    rows = [dict(depth=2, width=2048, c=v, chi=x, chi_se=0.01, n_init=5) for v, x in zip(c, _plateau_then_drop(c))]
    rows += [dict(depth=4, width=64, c=v, chi=1 - 0.15 * (np.log2(v) + 1), chi_se=0.01, n_init=5) for v in c]
    table = saturation_table(pd.DataFrame(rows), window=7, order=3, c_max=3.0).set_index("width")
    assert table.loc[2048, "stage1"] and -0.35 <= np.log2(table.loc[2048, "c_crit"] / 2) <= 0
    assert not table.loc[64, "stage1"] and np.isnan(table.loc[64, "c_crit"]) and np.isfinite(table.loc[64, "c_crit_x"])
    assert set(table.n_init) == {5}


def test_stage1_judges_the_plateau_against_the_drop_not_against_the_seeds_agreement():
    from helpers.analysis.saturation import stage1

    c = 2.0 ** np.arange(-1, 2.21, 0.1)
    precise = _plateau_then_drop(c) + 0.002 * np.sin(7 * c)  # a plateau measured to 1e-4: its range is 40 noise
    found = stage1(c, precise, np.full_like(c, 1e-4), c_drop=2.0)
    assert found["stage1"] and found["stage1_range"] > 4 * found["stage1_noise"] and found["range_share"] < 0.1
    gradual = 0.37 - 0.19 * (np.log2(c) + 1) / 3.2  # a steady decline under noise as large as itself
    found = stage1(c, gradual, np.full_like(c, 0.05), c_drop=2.0)
    assert not found["stage1"] and found["range_share"] > 0.1


def test_the_shipped_curves_of_05_have_stage_1_where_the_figure_shows_a_plateau(tmp_path):
    from helpers.analysis.saturation import chi_from_runs, saturation_table
    from helpers.chapters.parameters import chapter_parameters
    from helpers.chapters.sweeps import chapter_sweeps
    from helpers.sweeps.compute import sweeps_results
    from tests.test_shipped import shipped_only

    p = chapter_parameters("05_intermediate_saturation")
    configs, store = chapter_sweeps(p)["chi"], shipped_only(tmp_path)
    assert all(store.is_stored(config, seed) for config in configs for seed in config.seeds)  # read, never computed
    runs = sweeps_results(configs, store=store).runs
    table = saturation_table(chi_from_runs(runs, p["transient_steps"]), p["savgol_window"], p["savgol_order"],
                             p["ccrit_c_max"]).set_index(["depth", "width"])
    assert table.loc[(2, 1024), "stage1"] and not table.loc[(4, 128), "stage1"]


def test_why_not_stage1_names_the_test_that_failed_with_its_numbers():
    from helpers.analysis.saturation import why_not_stage1

    row = dict(stage1_points=17, drop=0.2, stage1_noise=0.02, range_share=0.16)
    assert why_not_stage1(row) == "χ already falls by 16% of the drop before it"
    both = why_not_stage1(dict(row, drop=0.05))
    assert "16%" in both and "within 4 standard errors" in both
    assert "at least 4" in why_not_stage1(dict(row, stage1_points=2))
    assert "one initialization" in why_not_stage1(dict(row, stage1_noise=float("nan")))
