"""The early-training engine: one step by hand, full-batch gradient descent, divergence, stacking, the exact
searches (against the full scan on every rise pattern), the interpolation endpoint after the transient."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
import torch

from helpers.nets.build import build_model
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.sweeps.engine import compute_unit
from helpers.sweeps.store import config_key
from helpers.curvature.operators import model_loss
from helpers.curvature.reference import exact_hessian
from helpers.sweeps.engine import run_unit, walk_grid
from helpers.rules import diverged
from helpers.sweeps.problem import batch_order, load_sweep_data
from helpers.nets.losses import mse
from helpers.analysis.phases import critical_constants


def test_one_engine_step_is_a_hand_computed_sgd_step(tiny_config):
    config = tiny_config.updated(steps=1, c_values=[1.5], seeds=[0])
    data = load_sweep_data(config, "cpu")
    table = run_unit(config, 0, data, "cpu").runs
    model = build_model(config.model, (1, 28, 28), seed=0, device="cpu")
    xs, ys = data.x[:16], data.y[:16]
    params, fn = model_loss(model, mse, xs, ys)
    sharpness0 = torch.linalg.eigvalsh(exact_hessian(fn, params).double())[-1].item()
    lr = 1.5 / sharpness0
    index = torch.randperm(40, generator=torch.Generator().manual_seed(0))[:8]
    loss = mse(model(data.x[index]), data.y[index])
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p -= lr * g
    step1 = table[table["step"] == 1].iloc[0]
    assert table["sharpness0"].iloc[0] == pytest.approx(sharpness0, rel=1e-5)
    assert step1["lr"] == pytest.approx(lr, rel=1e-5)
    assert step1["batch_loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert step1["loss"] == pytest.approx(mse(model(data.x), data.y).item(), rel=1e-5)
    params1, fn1 = model_loss(model, mse, xs, ys)
    assert step1["sharpness"] == pytest.approx(torch.linalg.eigvalsh(exact_hessian(fn1, params1).double())[-1].item(),
                                               rel=1e-4)


def test_a_batch_of_the_whole_subset_is_full_batch_gradient_descent(tiny_config):
    config = tiny_config.updated(batch_size=40, steps=3, c_values=[1.0], search="scan")
    data = load_sweep_data(config, "cpu")
    table = run_unit(config, 0, data, "cpu").runs
    assert config.full_batch and all(torch.equal(b, torch.arange(40)) for b in batch_order(40, 40, 3, seed=5))
    model = build_model(config.model, (1, 28, 28), seed=0, device="cpu")
    lr = 1.0 / table.sharpness0.iloc[0]
    for step in range(1, 4):
        loss = mse(model(data.x), data.y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        row = table[table.step == step].iloc[0]
        assert row.batch_loss == pytest.approx(loss.item(), rel=1e-5)  # the step's batch is the whole subset
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= lr * g
        assert row.loss == pytest.approx(mse(model(data.x), data.y).item(), rel=1e-5)


def test_divergence_is_detected_and_the_grid_stops_at_the_first_divergent_c(tiny_config):
    config = tiny_config.updated(c_values=[1.0, 2.0, 1e6, 2e6], seeds=[0])
    table = run_unit(config, 0, load_sweep_data(config, "cpu"), "cpu").runs
    assert sorted(table["c"].unique()) == [1.0, 2.0, 1e6]
    blown = table[table["c"] == 1e6]
    assert blown["diverged"].sum() == 1 and blown["step"].max() == blown.loc[blown["diverged"], "step"].iloc[0]
    assert not table.loc[table["c"] < 1e6, "diverged"].any()
    verdict = diverged(torch.tensor([float("nan"), float("inf"), 2e5, 1.0]), 1e5)
    assert verdict.tolist() == [True, True, True, False]


def test_stacked_runs_equal_runs_one_at_a_time(tiny_config):
    config = tiny_config.updated(c_values=[1.0, 2.0, 3.0], seeds=[0], stack=1, search="scan")
    data = load_sweep_data(config, "cpu")
    looped = run_unit(config, 0, data, "cpu").runs
    stacked = run_unit(config.updated(stack=3), 0, data, "cpu").runs
    assert len(looped) == len(stacked)
    for column in ("loss", "batch_loss", "sharpness"):
        assert stacked[column].to_numpy() == pytest.approx(looped[column].to_numpy(), rel=1e-4, nan_ok=True)


def test_batch_order_is_seeded_and_covers_each_epoch():
    order = batch_order(20, 5, 6, seed=1)
    assert len(order) == 6 and all(len(b) == 5 for b in order)
    assert sorted(torch.cat(order[:4]).tolist()) == list(range(20))
    assert all(torch.equal(a, b) for a, b in zip(order, batch_order(20, 5, 6, seed=1)))
    assert all(torch.equal(a, b) for a, b in zip(order, batch_order(20, 5, 9, seed=1)))  # a longer order extends it
    with pytest.raises(ValueError, match="batch_size=30 is larger"):
        batch_order(20, 30, 1, seed=0)


# The searches on synthetic runs: any pattern of rises, through the real grid walk.

def synthetic_train(loss_flags: str, sharp_flags: str, diverge_at: int | None, steps: int = 3):
    """A ``train(chunk, policy)`` for :func:`walk_grid` over c = 1, 2, …: run i's loss (sharpness) rises at step 2
    when ``loss_flags[i]`` (``sharp_flags[i]``) is "1"; run ``diverge_at`` diverges at its last step. It honours the
    policy's sharpness measurement and logs every run whose sharpness it measured."""
    measured: list[float] = []

    def train(chunk, policy):
        records = []
        for c in chunk:
            i = int(c) - 1
            rises_loss, rises_sharp = loss_flags[i] == "1", sharp_flags[i] == "1"
            for t in range(steps + 1):
                sharp = 1.5 if rises_sharp and t == 2 else 0.5
                if policy.sharpness == "never" and t >= 1:
                    sharp = math.nan
                if policy.sharpness == "until risen" and t > 2 and rises_sharp:
                    sharp = math.nan  # risen: no longer measured
                records.append(dict(seed=0, c=c, step=t, loss=1.5 if rises_loss and t == 2 else 0.5, loss0=0.5,
                                    batch_loss=0.5, sharpness=1.0 if t == 0 else sharp, sharpness0=1.0,
                                    diverged=i == diverge_at and t == steps, products=1, converged=True))
            if policy.sharpness != "never":
                measured.append(c)
        return records, []

    return train, measured


def constants_of_records(records: list[dict]) -> pd.Series:
    return critical_constants(pd.DataFrame(records).assign(depth=1, width=1)).iloc[0]


def definition_1(flags: str, diverge_at: int | None) -> float:
    """c_sharp by Definition 1: the smallest c below the first divergence whose sharpness rose (c_max if none)."""
    below = flags if diverge_at is None else flags[:diverge_at]
    return float(below.index("1") + 1) if "1" in below else float(len(below))


@pytest.mark.parametrize("size", [1, 3, 16])
@pytest.mark.parametrize("sharp_flags, loss_flags", [
    ("0100000111", "0000011111"),  # a rise below c_loss that a bracket from c_loss never visits: the 2nd c
    ("1100000000", "0000011111"),  # only runs below c_loss rise
    ("0000100000", "0000000011"),  # a single isolated rise
    ("0000000000", "0000011111"),  # none rises: filled with c_max
])
def test_first_rise_finds_definition_1s_c_sharp_on_non_monotone_rises(size, sharp_flags, loss_flags):
    config = SweepConfig(c_values=tuple(float(i) for i in range(1, 11)))
    for search in ("first-rise", "scan"):
        train, _ = synthetic_train(loss_flags, sharp_flags, diverge_at=None)
        records, _ = walk_grid(config.updated(search=search), train, size)
        found = constants_of_records(records)
        assert found.c_sharp == definition_1(sharp_flags, None), (search, size)
        assert found.c_loss == float(loss_flags.index("1") + 1)


@pytest.mark.parametrize("size", [1, 3, 16])
def test_first_rise_equals_the_full_scan_on_every_rise_pattern(size):
    n = 7
    config = SweepConfig(c_values=tuple(float(i) for i in range(1, n + 1)))
    for bits in itertools.product("01", repeat=n):
        sharp_flags = "".join(bits)
        for loss_flags, diverge_at in (("0011111", None), ("0111111", 5), ("0000000", 3)):
            train, measured = synthetic_train(loss_flags, sharp_flags, diverge_at)
            fast, _ = walk_grid(config, train, size)
            scan, _ = walk_grid(config.updated(search="scan"), synthetic_train(loss_flags, sharp_flags, diverge_at)[0],
                                size)
            a, b = constants_of_records(fast), constants_of_records(scan)
            assert (a.c_loss, a.c_sharp, a.c_max) == (b.c_loss, b.c_sharp, b.c_max)
            assert a.c_sharp == definition_1(sharp_flags, diverge_at)
            # the search is a shortcut: no run is measured beyond the chunk that settles c_sharp
            settled = a.c_sharp if not a.c_sharp_filled else a.c_max
            assert max(measured) <= (math.ceil(settled / size) * size if size > 1 else settled) or a.c_sharp_filled


def test_first_rise_gives_the_scans_constants_on_a_real_network(tiny_config):
    config = tiny_config.updated(c_values=list(c_grid(6.0, 0.25)), seeds=[0, 1, 2, 3], width=8)
    data = load_sweep_data(config, "cpu")
    for seed in config.seeds:
        scan = run_unit(config.updated(search="scan"), seed, data, "cpu").runs.assign(seed=seed)
        fast = run_unit(config, seed, data, "cpu").runs.assign(seed=seed)
        # the same training: equal minibatch losses everywhere, equal L_t and λ^H_t wherever the search computed them
        # to convergence; where Lanczos stopped at a risen lower bound, that bound lies below the scan's value
        pd.testing.assert_series_equal(scan.batch_loss, fast.batch_loss, check_exact=True)
        computed = fast.loss.notna() & (fast.step >= 1)
        pd.testing.assert_series_equal(scan.loss[computed], fast.loss[computed], check_exact=True)
        measured = fast.sharpness.notna() & (fast.step >= 1)
        converged = measured & fast.converged
        pd.testing.assert_series_equal(scan.sharpness[converged], fast.sharpness[converged], check_exact=True)
        bounds = measured & ~fast.converged
        assert (fast.sharpness[bounds] <= scan.sharpness[bounds] * (1 + 1e-6)).all()
        k_scan, k_fast = critical_constants(scan).iloc[0], critical_constants(fast).iloc[0]
        assert (k_scan.c_loss, k_scan.c_sharp, k_scan.c_max) == (k_fast.c_loss, k_fast.c_sharp, k_fast.c_max)
        # every run below c_sharp measured at every step; the runs above it, none
        later = fast[fast.step >= 1]
        assert later[later.c < k_fast.c_sharp].sharpness.notna().all()
        assert later[later.c > k_fast.c_sharp].sharpness.isna().all() or k_fast.c_sharp_filled
        # L_t at every step below c_loss, at every run's last step
        assert later[later.c < k_scan.c_loss].loss.notna().all()
        assert fast.groupby("c").tail(1).loss.notna().all()
        assert later.products.sum() < scan[scan.step >= 1].products.sum() or k_fast.c_sharp_filled


def test_bad_search_settings_are_clear_errors():
    with pytest.raises(ValueError, match="search must be one of"):
        SweepConfig.from_dict({"search": "bisect"})
    with pytest.raises(ValueError, match="use search='scan'"):
        SweepConfig.from_dict({"search": "first-rise", "measure_at": [0, 1]})


# The interpolated loss L_int(τ) = L((1 − τ)θ₀ + τθ_end).

def test_interpolated_loss_ends_at_the_endpoint_losses(tiny_config):
    config = tiny_config.updated(seeds=[0], interpolation_points=11)
    unit = run_unit(config, 0, load_sweep_data(config, "cpu"), "cpu")
    for c, curve in unit.interpolation.groupby("c"):
        run = unit.runs[unit.runs.c == c]
        assert len(curve) == 11 and curve.tau.iloc[0] == 0.0 and curve.tau.iloc[-1] == 1.0
        assert curve.loss.iloc[0] == pytest.approx(run.loss0.iloc[0], rel=1e-5)
        assert curve.loss.iloc[-1] == pytest.approx(run[run.step == config.steps].loss.iloc[0], rel=1e-5)


def test_the_endpoint_after_the_transient_is_where_the_loss_stays_below_its_start(tiny_config):
    cap = 12
    config = tiny_config.updated(c_values=list(c_grid(5.0, 0.5)), seeds=[0], interpolation_points=3, transient_cap=cap,
                                 search="scan")
    data = load_sweep_data(config, "cpu")
    unit = run_unit(config, 0, data, "cpu")
    batches = batch_order(len(data), config.batch_size, cap, seed=0)
    checked_later = 0
    for c, curve in unit.interpolation.groupby("c"):
        # train the run by hand to the cap: the endpoint is the first step t ≥ T after which L_t < L(θ₀) up to it
        model = build_model(config.model, (1, 28, 28), seed=0, device="cpu")
        lr = c / unit.runs.sharpness0.iloc[0]
        loss0, losses, states = mse(model(data.x), data.y).item(), [], {}
        for step in range(1, cap + 1):
            index = batches[step - 1]
            grads = torch.autograd.grad(mse(model(data.x[index]), data.y[index]), list(model.parameters()))
            with torch.no_grad():
                for p, g in zip(model.parameters(), grads):
                    p -= lr * g
                losses.append(mse(model(data.x), data.y).item())
                states[step] = losses[-1]
        candidates = [t for t in range(config.steps, cap + 1) if all(v < loss0 for v in losses[t - 1 :])]
        expected = candidates[0] if candidates else config.steps
        assert curve.end_step.iloc[0] == expected, c
        assert curve.loss.iloc[-1] == pytest.approx(states[expected], rel=1e-4)
        checked_later += expected > config.steps
    assert checked_later, "no run was still in its transient at T: the test would not test the cap"


def test_init_seed_and_batch_seed_take_the_two_sources_of_spread_apart(tiny_config):
    from tests.conftest import numbers

    config = tiny_config.updated(seeds=[0, 1])
    assert "init_seed" not in config.key_dict() and "batch_seed" not in config.key_dict()
    fixed_init, fixed_batches = config.updated(init_seed=0), config.updated(batch_seed=0)
    assert len({config_key(c) for c in (config, fixed_init, fixed_batches)}) == 3
    runs = {name: {s: compute_unit(c, s).runs for s in (0, 1)} for name, c in
            (("both", config), ("init", fixed_init), ("batches", fixed_batches))}
    # seed 0 is the same unit in every arm: its initialization and batch order are both drawn from 0
    for name in ("init", "batches"):
        pd.testing.assert_frame_equal(numbers(runs[name][0]), numbers(runs["both"][0]))
    assert runs["init"][1].sharpness0.iloc[0] == runs["init"][0].sharpness0.iloc[0]  # one θ₀
    assert not runs["init"][1].loss.equals(runs["init"][0].loss)  # another batch order
    assert runs["batches"][1].sharpness0.iloc[0] != runs["batches"][0].sharpness0.iloc[0]  # another θ₀
    assert runs["batches"][1].sharpness0.iloc[0] == runs["both"][1].sharpness0.iloc[0]  # θ₀ from seed 1 in both
    assert not runs["batches"][1].batch_loss.iloc[1:].equals(runs["both"][1].batch_loss.iloc[1:])  # batches from 0
    with pytest.raises(ValueError, match="init_seed must be an integer"):
        config.updated(init_seed=1.5)


def test_the_recorded_movement_of_the_first_step_is_eta_times_the_gradient_norm(tiny_config):
    from helpers.nets.build import build_model
    from helpers.nets.losses import get_loss
    from helpers.sweeps.problem import batch_order, load_sweep_data

    config = tiny_config.updated(record_movement=True, search="scan", c_values=[0.5, 1.0])
    assert config.key_dict()["record_movement"] and "record_movement" not in tiny_config.key_dict()
    runs = compute_unit(config, 0).runs
    data = load_sweep_data(config, "cpu")
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=0, reference_x=data.x[: config.n_sharpness])
    first = batch_order(len(data), config.batch_size, config.steps, 0)[0]
    loss = get_loss(config.loss)(model(data.x[first]), data.y[first])
    grads = torch.autograd.grad(loss, list(model.parameters()))
    gradient = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    norm0 = torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.parameters()))
    for _, run in runs.groupby("c"):
        at = run.set_index("step").movement
        assert at[0] == 0.0
        assert at[1] == pytest.approx(float(run.lr.iloc[0] * gradient / norm0), rel=1e-4)
        assert (at.diff().dropna() != 0).all()  # it moves at every step
