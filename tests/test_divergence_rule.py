"""The study's divergence rule (a run diverges when its minibatch loss exceeds the threshold or is not finite) is the
engine's default; the measurement-set rule of earlier versions is an option with its own key; a unit stored under the
earlier rule is recognised and computed again."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.sweeps.config import SweepConfig
from helpers.sweeps.engine import compute_unit
from helpers.sweeps.store import ResultsStore, config_key, earlier_divergence_rule
from helpers.sweeps.compute import run_sweep

BOTH = "minibatch or measurement"


def _grid_config(tiny_config):
    # steep c so that the last step's measured loss explodes while the minibatch loss that step (at θ_{T-1}) does not
    return tiny_config.updated(c_values=tuple(np.round(2 ** np.arange(0, 5.01, 0.25), 6)), diverge_loss=2.0,
                               search="scan")


def test_the_study_s_rule_is_the_default_and_not_in_the_key():
    config = SweepConfig()
    assert config.divergence == "minibatch" and "divergence" not in config.key_dict()
    other = config.updated(divergence=BOTH)
    assert other.key_dict()["divergence"] == BOTH and config_key(other) != config_key(config)
    with pytest.raises(ValueError, match="divergence must be one of"):
        config.updated(divergence="measurement")


def test_only_the_minibatch_loss_decides_divergence_by_default(tiny_config):
    config = _grid_config(tiny_config)
    study, earlier = compute_unit(config, 0).runs, compute_unit(config.updated(divergence=BOTH), 0).runs
    limit = config.diverge_loss
    marked = study[study.diverged.astype(bool)]
    assert len(marked) and ((marked.batch_loss > limit) | ~np.isfinite(marked.batch_loss)).all()
    by_measurement = earlier[earlier.diverged.astype(bool) & (earlier.batch_loss <= limit)]
    assert len(by_measurement), "the constructed grid must hold a run stopped by its measured loss alone"
    assert (by_measurement.loss > limit).all()
    first = lambda runs: runs[runs.diverged.astype(bool)].c.min()  # noqa: E731
    assert first(earlier) < first(study)  # the earlier rule finds the divergence at a smaller c
    assert not earlier_divergence_rule(study, config) and earlier_divergence_rule(earlier, config)


def test_a_unit_stored_under_the_earlier_rule_is_computed_again(tiny_config, tmp_path, capfd):
    config = _grid_config(tiny_config)
    store = ResultsStore(tmp_path / "results", shipped=None)
    store.save(config, 0, compute_unit(config.updated(divergence=BOTH), 0))  # as an old version stored it
    table = run_sweep(config, store=store, device="cpu")
    assert "measurement-set divergence rule" in capfd.readouterr().err
    marked = table[table.diverged.astype(bool)]
    assert ((marked.batch_loss > config.diverge_loss) | ~np.isfinite(marked.batch_loss)).all()
    assert store.load(config, 0) is not None  # stored again, under the study's rule


def test_the_full_scan_and_first_rise_agree_on_every_constant_under_the_study_s_rule(tiny_config):
    from helpers.analysis.phases import critical_constants
    from helpers.sweeps.schema import with_parameters

    def constants(rule):
        out = {}
        for search in ("scan", "first-rise"):
            c = _grid_config(tiny_config).updated(search=search, divergence=rule)
            out[search] = critical_constants(with_parameters(compute_unit(c, 0).runs, c)).iloc[0]
        return out

    study = constants("minibatch")
    for name in ("c_loss", "c_sharp", "c_max"):
        assert study["scan"][name] == study["first-rise"][name], name
    # the earlier rule reads the measured loss only where a search measures it, so the two searches can disagree:
    earlier = constants(BOTH)
    assert earlier["scan"].c_max < earlier["first-rise"].c_max
