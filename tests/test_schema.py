"""The table schema: parameter columns and the sweep key come from the configuration dataclasses, so sweeps that
differ in any parameter are never pooled."""

from __future__ import annotations

from dataclasses import fields

from helpers.nets.build import ModelSpec
from helpers.sweeps.config import SweepConfig
from helpers.analysis.phases import average_constants, critical_constants
from helpers.sweeps.schema import PARAMETER_COLUMNS, RENAMED, SWEEP, sweep_key
from helpers.sweeps.compute import run_sweeps


def test_every_scalar_parameter_is_a_column_and_every_parameter_is_in_the_key():
    names = {RENAMED.get(f.name, f.name) for source in (ModelSpec, SweepConfig) for f in fields(source)}
    listed = set(PARAMETER_COLUMNS) - {SWEEP}
    assert listed <= names
    assert names - listed == {"model", "c_values", "seeds", "measure_at", "stack"}  # lists (in the key) and non-keys
    base = SweepConfig(c_values=(1.0, 2.0))
    changes = {"n_sharpness": 1024, "n_train": 4096, "steps": 9, "rise_epsilon": 0.05, "data_seed": 3,
               "lanczos_tol": 1e-4, "diverge_loss": 1e4, "c_values": [1.0, 3.0], "measure_at": [0, 1],
               "search": "scan", "width": 7, "output": "centered", "bias": True, "transient_cap": 20}
    for name, value in changes.items():
        extra = {"search": "scan"} if name == "measure_at" else {}
        assert sweep_key(base.updated(**{name: value}, **extra)) != sweep_key(base.updated(**extra)), name


def test_two_sweeps_differing_only_in_n_sharpness_are_never_pooled(tiny_config, tmp_path):
    from helpers.sweeps.store import ResultsStore

    store = ResultsStore(tmp_path)
    configs = [tiny_config.updated(seeds=[0, 1], n_sharpness=n, c_values=[1.0, 2.0, 4.0, 8.0]) for n in (8, 16)]
    table = run_sweeps(configs, store=store, device="cpu")
    constants = critical_constants(table)
    assert len(constants) == 4 and set(constants.n_sharpness) == {8, 16}
    averages = average_constants(constants)
    assert len(averages) == 2 and set(averages.n_init) == {2}
    assert set(averages[SWEEP]) == {sweep_key(c) for c in configs}
