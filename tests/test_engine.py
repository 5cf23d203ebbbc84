"""The early-training engine: one step by hand, divergence, the grid scan, stacking, the store, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from helpers import backends as backends_module
from helpers.build import ModelSpec, build_model
from helpers.config import SweepConfig, c_grid, refined_grid
from helpers.curvature import exact_hessian, model_loss
from helpers.engine import _diverged, batch_order, bracket_sharpness, load_sweep_data, run_unit
from helpers.losses import mse
from helpers.store import ResultsStore, config_key
from helpers.sweep import run_sweep


@pytest.fixture
def tiny_config(tiny_mnist, monkeypatch) -> SweepConfig:
    root, _ = tiny_mnist
    monkeypatch.setenv("EARLY_DYNAMICS_DATA", str(root))
    return SweepConfig(model=ModelSpec("fcn", 2, 4), dataset="mnist", n_train=40, n_sharpness=16, batch_size=8,
                       steps=3, c_values=(1.0, 2.0), seeds=(0,), lanczos_tol=1e-6)


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


def test_divergence_is_detected_and_the_grid_stops_at_the_first_divergent_c(tiny_config):
    config = tiny_config.updated(c_values=[1.0, 2.0, 1e6, 2e6], seeds=[0])
    table = run_unit(config, 0, load_sweep_data(config, "cpu"), "cpu").runs
    assert sorted(table["c"].unique()) == [1.0, 2.0, 1e6]
    blown = table[table["c"] == 1e6]
    assert blown["diverged"].sum() == 1 and blown["step"].max() == blown.loc[blown["diverged"], "step"].iloc[0]
    assert not table.loc[table["c"] < 1e6, "diverged"].any()
    verdict = _diverged(torch.tensor([float("nan"), float("inf"), 2e5, 1.0]), 1e5)
    assert verdict.tolist() == [True, True, True, False]


def test_stacked_runs_equal_runs_one_at_a_time(tiny_config):
    config = tiny_config.updated(c_values=[1.0, 2.0, 3.0], seeds=[0], stack=1, search="scan")
    data = load_sweep_data(config, "cpu")
    looped = run_unit(config, 0, data, "cpu").runs
    stacked = run_unit(config.updated(stack=3), 0, data,
                       "cpu").runs
    assert len(looped) == len(stacked)
    for column in ("loss", "batch_loss", "sharpness"):
        assert stacked[column].to_numpy() == pytest.approx(looped[column].to_numpy(), rel=1e-4, nan_ok=True)


def test_batch_order_is_seeded_and_covers_each_epoch():
    order = batch_order(20, 5, 6, seed=1)
    assert len(order) == 6 and all(len(b) == 5 for b in order)
    assert sorted(torch.cat(order[:4]).tolist()) == list(range(20))
    assert all(torch.equal(a, b) for a, b in zip(order, batch_order(20, 5, 6, seed=1)))
    with pytest.raises(ValueError, match="batch_size=30 is larger"):
        batch_order(20, 30, 1, seed=0)


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = backends_module.compute_unit

    def counted(config, seed, *args, **kwargs):
        calls.append(seed)
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(backends_module, "compute_unit", counted)
    return calls


def test_store_returns_stored_results_and_recomputes_on_any_change(tiny_config, tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results")
    calls = _counting(monkeypatch)
    first = run_sweep(tiny_config, store=store, device="cpu")
    assert calls == [0]
    again = run_sweep(tiny_config, store=store, device="cpu")
    assert calls == [0]
    pd.testing.assert_frame_equal(first, again)
    assert {"depth", "width", "loss_fn", "device", "version", "n_sharpness"} <= set(first.columns)
    assert first["loss"].dtype == float and (first["loss_fn"] == "mse").all()
    for change in ({"width": 5}, {"batch_size": 4}, {"lanczos_tol": 1e-5}, {"c_values": [1.0, 2.5]}):
        changed = tiny_config.updated(seeds=[0], **change)
        assert config_key(changed) != config_key(tiny_config)
        run_sweep(changed, store=store, device="cpu")
    assert calls == [0, 0, 0, 0, 0]


def test_an_interrupted_sweep_resumes_from_what_finished(tiny_config, tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results")
    config = tiny_config.updated(seeds=[0, 1, 2])
    real = backends_module.compute_unit

    def interrupted(config, seed, *args, **kwargs):
        if seed == 1:
            raise KeyboardInterrupt
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(backends_module, "compute_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, store=store, device="cpu")
    assert store.load(config, 0) is not None and store.load(config, 1) is None
    monkeypatch.setattr(backends_module, "compute_unit", real)
    calls = _counting(monkeypatch)
    table = run_sweep(config, store=store, device="cpu")
    assert calls == [1, 2]
    assert sorted(table["seed"].unique()) == [0, 1, 2]


@pytest.mark.parametrize("change,match", [
    ({"arch": "transformer"}, "unknown architecture"),
    ({"dataset": "imagenet"}, "unknown dataset"),
    ({"width": 0}, "width must be a positive integer"),
    ({"depth": -2}, "depth must be a positive integer"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"c_values": []}, "c_values is empty"),
    ({"c_values": [1.0, 2.0, 2.0]}, "strictly increasing"),
    ({"c_values": [2.0, 1.0]}, "strictly increasing"),
    ({"c_values": [-1.0, 1.0]}, "positive and finite"),
    ({"n_sharpness": 4096, "n_train": 2048}, "sharpness subset"),
    ({"n_train": 70000}, "larger than the fashion-mnist training set"),
    ({"loss": "hinge"}, "unknown loss"),
    ({"sharpness": "exact"}, "sharpness must be one of"),
    ({"seeds": []}, "seeds must be"),
    ({"widht": 3}, "unknown sweep parameters"),
])
def test_bad_input_is_one_clear_error_before_any_work(change, match):
    with pytest.raises(ValueError, match=match):
        SweepConfig.from_dict({"c_values": [1.0, 2.0], **change})


def test_c_grid_is_powers_of_two():
    grid = c_grid(x_max=1.0, x_step=0.5)
    assert grid == (1.0, round(2**0.5, 6), 2.0)
    assert len(c_grid()) == 61 and c_grid()[-1] == 64.0
    with pytest.raises(ValueError):
        c_grid(x_step=0)


def test_refined_grid_is_fine_up_to_its_edge_and_coarse_above():
    import numpy as np

    grid = refined_grid(x_max=3.0, x_step=0.5, fine_x_max=1.0, fine_step=0.25)
    x = np.log2(grid)
    assert np.allclose(x, [0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0], atol=1e-6)
    assert refined_grid(2.0, 0.1, 2.0, 0.1) == c_grid(2.0, 0.1)
    assert refined_grid(2.0, 0.5, 0.0, 1.0) == c_grid(2.0, 0.5)


def test_interpolated_loss_ends_at_the_endpoint_losses(tiny_config):
    config = tiny_config.updated(seeds=[0], interpolation_points=11)
    unit = run_unit(config, 0, load_sweep_data(config, "cpu"), "cpu")
    for c, curve in unit.interpolation.groupby("c"):
        run = unit.runs[unit.runs.c == c]
        assert len(curve) == 11 and curve.tau.iloc[0] == 0.0 and curve.tau.iloc[-1] == 1.0
        assert curve.loss.iloc[0] == pytest.approx(run.loss0.iloc[0], rel=1e-5)
        assert curve.loss.iloc[-1] == pytest.approx(run[run.step == config.steps].loss.iloc[0], rel=1e-5)


def test_barrier_absent_on_a_convex_problem_and_present_on_a_double_well():
    from helpers.data import Data
    from helpers.engine import interpolate
    from helpers.phases import barrier_flags

    def forward(theta, x):
        return theta[0].view(-1, 1, 1).expand(-1, x.shape[0], 1)

    data = Data(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4), "crafted")
    convex = lambda f, y: ((f - 1) ** 2).mean()
    double_well = lambda f, y: ((f**2 - 1) ** 2).mean()
    rows = []
    for name, loss, start, end in (("convex", convex, -0.5, 2.0), ("double well", double_well, -1.0, 1.0)):
        taus, values = interpolate(loss, forward, [torch.tensor([start])], [torch.tensor([end])], data, 101)
        assert values[0, 0].item() == pytest.approx(loss(torch.tensor(start), None).item())
        c = 1.0 if name == "convex" else 2.0
        rows += [dict(seed=0, c=c, tau=t, loss=float(v)) for t, v in zip(taus, values[0])]
    flags = barrier_flags(pd.DataFrame(rows))
    assert flags.has_barrier.tolist() == [False, True]
    assert flags.barrier.iloc[0] <= 0 and flags.barrier.iloc[1] == pytest.approx(1.0, abs=1e-6)


def test_updated_routes_model_fields_and_rejects_unknown_names(tiny_config):
    changed = tiny_config.updated(width=9, seeds=[3, 4], c_values=[1.0, 4.0])
    assert changed.model.width == 9 and changed.seeds == (3, 4) and changed.c_values == (1.0, 4.0)
    assert changed.model.depth == tiny_config.model.depth and changed.n_train == tiny_config.n_train
    with pytest.raises(ValueError, match="unknown sweep parameters.*'widht'"):
        tiny_config.updated(widht=9)


def test_a_truncated_unit_is_detected_and_computed_again(tiny_config, tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results")
    calls = _counting(monkeypatch)
    first = run_sweep(tiny_config, store=store, device="cpu")
    path = store.unit_path(tiny_config, 0)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # a process killed mid-copy, a full disk
    with pytest.warns(RuntimeWarning, match="corrupt"):
        again = run_sweep(tiny_config, store=store, device="cpu")
    assert calls == [0, 0]
    pd.testing.assert_frame_equal(first, again)
    store.checksum_path(tiny_config, 0).write_text("{not json")
    with pytest.warns(RuntimeWarning, match="corrupt"):
        assert store.load(tiny_config, 0) is None
    assert not path.exists()
    run_sweep(tiny_config, store=store, device="cpu")
    assert calls == [0, 0, 0]


def test_the_bisect_search_finds_the_full_scans_constants(tiny_config):
    from helpers.phases import critical_constants, run_flags

    config = tiny_config.updated(c_values=list(c_grid(6.0, 0.25)), seeds=[0, 1, 2, 3], width=8)
    data = load_sweep_data(config, "cpu")
    monotone = 0
    for seed in config.seeds:
        scan = run_unit(config.updated(search="scan"), seed, data, "cpu").runs.assign(seed=seed)
        bisect = run_unit(config, seed, data, "cpu").runs.assign(seed=seed)
        # the same training: equal minibatch losses everywhere, equal L_t wherever the bisect search computed it
        pd.testing.assert_series_equal(scan.batch_loss, bisect.batch_loss, check_exact=True)
        computed = bisect.loss.notna()
        pd.testing.assert_series_equal(scan.loss[computed], bisect.loss[computed], check_exact=True)
        k_scan, k_bisect = critical_constants(scan).iloc[0], critical_constants(bisect).iloc[0]
        assert (k_scan.c_loss, k_scan.c_max) == (k_bisect.c_loss, k_bisect.c_max)
        # c_sharp: a bracket finds a c where the scan's "sharpness rose" switches from no to yes (the smallest such c
        # when the switch happens once); with the sharpness at the bracketed runs the same as the scan's
        flags = run_flags(scan)
        flags = flags[flags.c <= k_scan.c_max]
        rose = dict(zip(flags.c, flags.sharp_rises))
        if k_bisect.c_sharp_filled:  # no visited run rose, the last below the divergence among them
            assert not rose[k_bisect.c_max]
        else:
            below = [c for c in rose if c < k_bisect.c_sharp]
            assert rose[k_bisect.c_sharp] and (not below or not rose[below[-1]])
        if list(rose.values()) == sorted(rose.values()):  # monotone in c: no run rises below one that does not
            assert k_bisect.c_sharp == k_scan.c_sharp
            monotone += 1
        # L_t is skipped only where c_loss is decided: every run below c_loss has it at every step, the run at
        # c_loss until it rose, every run at its last step (whether θ_T diverged); later runs skip the rest
        assert bisect[bisect.c < k_scan.c_loss].loss.notna().all()
        assert bisect[bisect.c == k_scan.c_loss].loss.notna().iloc[:2].all()
        assert bisect.groupby("c").tail(1).loss.notna().all()
        assert k_scan.c_loss_filled or not computed[bisect.c > k_scan.c_loss].all()
        measured = bisect[bisect.step >= 1].groupby("c").sharpness.apply(lambda s: s.notna().any())
        assert 0 < measured.sum() < len(measured), "the bracket measures some runs, not all"
        assert bisect[bisect.step >= 1].products.sum() < scan[scan.step >= 1].products.sum()
    assert monotone >= 2, "most of these initializations are monotone, where c_sharp must be the scan's"


def synthetic_unit(n: int, loss_at: int, sharp_at: int, steps: int = 3):
    """Loss-only records of ``n`` runs (c = 1, …, n; the last one diverges) whose loss rises from index ``loss_at``,
    and a ``train`` that re-runs any of them with a sharpness that rises from index ``sharp_at`` (and logs them)."""
    records = [dict(c=float(i + 1), step=t, loss=1.5 if i >= loss_at and t >= 1 else 0.5, loss0=0.5,
                    diverged=i == n - 1 and t == steps, sharpness=float("nan"), sharpness0=1.0, products=0,
                    converged=False) for i in range(n) for t in range(steps + 1)]
    visits: list[list[float]] = []

    def train(cs, **_):
        visits.append(list(cs))
        return [dict(c=c, step=t, sharpness=1.5 if c >= sharp_at + 1 and t >= 1 else 0.5, products=1, converged=True)
                for c in cs for t in range(steps + 1)], []

    return records, train, visits


@pytest.mark.parametrize("size", [1, 3, 16])
def test_the_bracket_starts_at_c_loss_and_finds_every_monotone_c_sharp(size):
    n = 12  # 11 runs below the first divergence
    for loss_at in range(n - 1):
        for sharp_at in range(n):  # n - 1: no run below the divergence rises
            records, train, visits = synthetic_unit(n, loss_at, sharp_at)
            found = bracket_sharpness(SweepConfig(), records, train, size)
            flags = pd.DataFrame(found).assign(depth=1, width=1)
            rising = [c for c, r in flags.groupby("c") if (r.sharpness / r.sharpness0).round(2).gt(1).any()]
            assert min(rising, default=float(n)) == float(min(sharp_at, n - 1) + 1)
            assert visits[0][0] == loss_at + 1 or (size > 1 and loss_at + 1 in visits[0])
            assert all(len(v) <= size for v in visits)
            assert len(found) == len(records)
            if size == 1 and sharp_at == loss_at > 0:  # c_sharp = c_loss: its run and the one below settle it
                assert visits == [[loss_at + 1.0], [float(loss_at)]]


def test_loss_only_runs_record_no_sharpness_and_searches_are_stored_apart(tiny_config, tmp_path):
    config = tiny_config.updated(c_values=list(c_grid(4.0, 0.5)), seeds=[0])
    runs = run_unit(config, 0, load_sweep_data(config, "cpu"), "cpu").runs
    unmeasured = runs[runs.step >= 1].groupby("c").filter(lambda r: r.sharpness.isna().all())
    assert len(unmeasured) and (unmeasured.products == 0).all()
    assert config_key(config) != config_key(config.updated(search="scan"))
    store = ResultsStore(tmp_path)
    assert store.folder(config) != store.folder(config.updated(search="scan"))


@pytest.mark.parametrize("change, match", [
    ({"search": "binary"}, "search must be one of"),
    ({"search": "bisect", "measure_at": [0, 1]}, "use search='scan'"),
    ({"rise_epsilon": -0.1}, "rise_epsilon must be"),
])
def test_bad_search_settings_are_clear_errors(change, match):
    with pytest.raises(ValueError, match=match):
        SweepConfig.from_dict({"c_values": [1.0, 2.0], **change})


def test_units_that_share_theta0_measure_its_sharpness_once(tiny_config, monkeypatch):
    # the one-c sweeps of χ(c) share θ₀: its λ^H_0 is measured by the first and reused, with the same numbers
    from helpers import engine

    cold = []
    measure = engine.measure_sharpness
    monkeypatch.setattr(engine, "measure_sharpness",
                        lambda op, config, v0, seed, *settled: cold.append(v0 is None) or measure(op, config, v0, seed,
                                                                                                  *settled))
    monkeypatch.setattr(engine, "STARTS", {})
    first = tiny_config.updated(c_values=[1.0])
    other_c = tiny_config.updated(c_values=[2.0], steps=2, search="scan")
    engine.compute_unit(first, 0)
    assert sum(cold) == 1
    reused = engine.compute_unit(other_c, 0).runs
    assert sum(cold) == 1
    engine.compute_unit(other_c, 1)  # another initialization: measured
    assert sum(cold) == 2
    engine.STARTS.clear()
    fresh = engine.compute_unit(other_c, 0).runs
    assert sum(cold) == 3
    pd.testing.assert_frame_equal(reused, fresh, check_exact=True)
    engine.compute_unit(other_c.updated(n_sharpness=8), 0)  # another sharpness subset: measured
    assert sum(cold) == 4
