"""Sweeps on a Dask LocalCluster: the same table as a local run, a killed worker, failures, the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import papermill
import pytest
import yaml
from dask.distributed import Client

from helpers.build import ModelSpec
from helpers.config import SweepConfig, c_grid
from helpers.distributed import local_cluster, submit_units
from helpers.store import ResultsStore
from helpers.sweep import run_sweep
from tests.chapters import BOOK, ROOT
from tests.test_chapters import TINY

CONFIG = SweepConfig(model=ModelSpec("fcn", 2, 16), n_train=256, n_sharpness=64, batch_size=64, steps=3,
                     c_values=c_grid(5.0, 1.0), seeds=(0, 1, 2, 3))


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client


def test_a_local_cluster_leaves_the_environment_as_it_was():
    before = dict(os.environ)
    with local_cluster(1):
        pass
    assert dict(os.environ) == before


def test_cluster_sweep_equals_the_local_sweep_bit_for_bit(client, tmp_path):
    local = run_sweep(CONFIG, store=ResultsStore(tmp_path / "local"), device="cpu")
    remote = run_sweep(CONFIG, store=ResultsStore(tmp_path / "remote"), device="cpu", scheduler=client)
    pd.testing.assert_frame_equal(local, remote, check_exact=True)
    assert len(list((tmp_path / "remote").glob("*/seed-*.csv"))) == len(CONFIG.seeds)


def test_a_killed_worker_loses_only_its_unit(client, tmp_path):
    config = SweepConfig.from_dict({**CONFIG.key_dict(), **CONFIG.model.as_dict(), "width": 48, "n_train": 1024,
                                    "seeds": [0, 1, 2, 3, 4, 5]})
    reference = run_sweep(config, store=ResultsStore(tmp_path / "local"), device="cpu")
    store = ResultsStore(tmp_path / "remote")
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(failures=submit_units([config], client, store)))
    worker.start()
    deadline = time.time() + 60
    busy = []
    while time.time() < deadline and not busy:
        busy = [addr for addr, tasks in client.processing().items() if tasks]
        time.sleep(0.05)
    assert busy, "no unit started"
    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
    os.kill(pid, signal.SIGKILL)
    worker.join(timeout=300)
    assert outcome["failures"] == []
    table = run_sweep(config, store=store, device="cpu")
    pd.testing.assert_frame_equal(reference, table, check_exact=True)
    assert not table.duplicated(["seed", "c", "step"]).any()


def test_a_failing_unit_is_reported_and_the_rest_completes(client, tmp_path):
    bad = SweepConfig.from_dict({**CONFIG.key_dict(), **CONFIG.model.as_dict(), "seeds": [0], "n_train": 64,
                                 "n_sharpness": 32, "batch_size": 128})
    store = ResultsStore(tmp_path)
    failures = submit_units([bad, CONFIG], client, store)
    assert len(failures) == 1 and failures[0].seed == 0 and "batch_size=128" in failures[0].error
    assert failures[0].config["batch_size"] == 128
    assert all(store.unit_path(CONFIG, s).exists() for s in CONFIG.seeds)


def test_command_line_sweep_is_loaded_by_the_chapter(tmp_path, monkeypatch):
    preset = tmp_path / "03_phase_diagrams" / "tiny.yml"
    preset.parent.mkdir()
    preset.write_text(yaml.safe_dump(TINY["03_phase_diagrams"]))
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", str(preset), "--results", str(results)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    stored = {p: p.stat().st_mtime_ns for p in results.rglob("*.csv")}
    assert stored
    monkeypatch.setenv("EARLY_DYNAMICS_RESULTS", str(results))
    papermill.execute_notebook(str(BOOK / "03_phase_diagrams.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters=TINY["03_phase_diagrams"], cwd=str(BOOK), progress_bar=False)
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*.csv")}
    assert after == stored, "the chapter recomputed units that the command line had stored"


def test_command_line_rejects_unknown_preset_parameters(tmp_path):
    preset = tmp_path / "03_phase_diagrams" / "bad.yml"
    preset.parent.mkdir()
    preset.write_text("widhts: [3]\n")
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", str(preset)], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2 and "widhts" in run.stderr
