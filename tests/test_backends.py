"""Backends: serial, local processes and Dask compute the same units into the store; a toy backend plugs in; a
killed Dask worker loses only its unit; failures are reported; the command line and the chapter share the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import papermill
import pytest
import torch
from dask.distributed import Client

from helpers.sweeps import backends as backends_module
from helpers.sweeps.backends import (BACKENDS, Dask, Processes, Serial, compute_and_store, get_backend, local_cluster,
                                     register_backend, usable_cores)
from helpers.nets.build import ModelSpec
from helpers.chapters.parameters import chapter_parameters
from helpers.chapters.sweeps import SWEEPS, chapter_sweeps, phase_diagram_sweeps, unique_configs
from helpers.sweeps.config import SweepConfig, c_grid
from tests.conftest import numbers
from helpers.sweeps.store import ResultsStore
from helpers.sweeps.compute import SweepFailed, compute_missing, compute_sweeps, run_sweep
from tests.chapters import BOOK, ROOT

CONFIG = SweepConfig(model=ModelSpec("fcn", 2, 16), n_train=256, n_sharpness=64, batch_size=64, steps=3,
                     c_values=c_grid(5.0, 1.0), seeds=(0, 1, 2, 3))
BAD = CONFIG.updated(seeds=[0], n_train=64, n_sharpness=32, batch_size=128)  # a batch larger than the data


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client


def test_a_local_cluster_leaves_the_environment_as_it_was():
    before = dict(os.environ)
    with local_cluster(1):
        pass
    assert dict(os.environ) == before


def test_local_workers_keep_glibcs_adaptive_memory_trimming(client):
    # Dask's default MALLOC_TRIM_THRESHOLD_ makes every large tensor a fresh mmap: a sweep ~2× slower
    assert set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {None}


def test_dask_sweep_equals_the_serial_sweep_bit_for_bit(client, tmp_path):
    local = run_sweep(CONFIG, store=ResultsStore(tmp_path / "local"), device="cpu")
    remote = run_sweep(CONFIG, store=ResultsStore(tmp_path / "remote"), backend=Dask(client))
    pd.testing.assert_frame_equal(numbers(local), numbers(remote), check_exact=True)
    assert len(list((tmp_path / "remote").glob("*/seed-*[0-9].csv.gz"))) == len(CONFIG.seeds)


@pytest.mark.full
def test_process_pool_sweep_equals_the_serial_sweep_bit_for_bit(tmp_path):
    local = run_sweep(CONFIG, store=ResultsStore(tmp_path / "local"), device="cpu")
    pool = Processes(workers=2, threads=torch.get_num_threads())
    pd.testing.assert_frame_equal(numbers(local), numbers(run_sweep(CONFIG, store=ResultsStore(tmp_path / "pool"),
                                                                    backend=pool)), check_exact=True)
    failures = pool.compute([(BAD, 0), (CONFIG, 0)], ResultsStore(tmp_path / "bad"))
    assert len(failures) == 1 and "batch_size=128" in failures[0].error


def test_a_new_backend_is_a_class_with_one_method(tmp_path, monkeypatch):
    class Recording:
        """Computes units in this process, in reverse order, and records them."""

        def __init__(self):
            self.seen = []

        def compute(self, units, store):
            for config, seed in reversed(units):
                self.seen.append(seed)
                compute_and_store(config, seed, str(store.root))
            return []

    monkeypatch.setitem(BACKENDS, "recording", Recording)
    register_backend("recording", Recording)
    store = ResultsStore(tmp_path)
    table = run_sweep(CONFIG, store=store, backend="recording")
    assert sorted(table.seed.unique()) == list(CONFIG.seeds)
    recorder = Recording()
    run_sweep(CONFIG, store=store, backend=recorder)
    assert recorder.seen == [], "stored units are not handed to the backend again"
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        run_sweep(CONFIG, store=store, backend="nope")


def test_a_killed_worker_loses_only_its_unit(client, tmp_path):
    config = CONFIG.updated(width=48, n_train=1024, seeds=[0, 1, 2, 3, 4, 5])
    reference = run_sweep(config, store=ResultsStore(tmp_path / "local"), device="cpu")
    store = ResultsStore(tmp_path / "remote")
    outcome: dict = {}
    units = [(config, seed) for seed in config.seeds]
    worker = threading.Thread(target=lambda: outcome.update(failures=Dask(client).compute(units, store)))
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
    pd.testing.assert_frame_equal(numbers(reference), numbers(table), check_exact=True)
    assert not table.duplicated(["seed", "c", "step"]).any()


def test_a_failing_unit_is_reported_and_the_rest_completes(client, tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(SweepFailed, match=r"(?s)1 unit.*failed.*batch_size=128"):
        compute_missing([BAD, CONFIG], store, Dask(client))
    assert all(store.is_stored(CONFIG, s) for s in CONFIG.seeds)
    with pytest.raises(ValueError, match="batch_size=128"):
        compute_missing([BAD], store, Serial("cpu"))  # in this process the error itself is raised


@pytest.mark.full
def test_command_line_sweep_is_loaded_by_the_chapter(tmp_path, monkeypatch):
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", "03_phase_diagrams", "smoke", "--results",
                          str(results)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    stored = {p: p.stat().st_mtime_ns for p in results.rglob("*.csv.gz")}
    parameters = chapter_parameters("03_phase_diagrams", "smoke")
    expected = {ResultsStore(results).unit_path(c, s) for c in unique_configs(phase_diagram_sweeps(parameters))
                for s in c.seeds}
    assert set(stored) == expected, "the command line and the chapter's definition disagree on the store keys"
    monkeypatch.setenv("EARLY_DYNAMICS_RESULTS", str(results))
    papermill.execute_notebook(str(BOOK / "03_phase_diagrams.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters=dict(parameters), cwd=str(BOOK), progress_bar=False)
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*.csv.gz")}
    assert after == stored, "the chapter recomputed units that the command line had stored"


@pytest.mark.full
def test_command_line_sweeps_every_chapter_in_one_pool(tmp_path):
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", "all", "smoke", "--backend", "processes",
                          "--workers", "2", "--results", str(results)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    store = ResultsStore(results)
    expected = {store.unit_path(c, s) for chapter in SWEEPS
                for c in unique_configs(chapter_sweeps(chapter_parameters(chapter, "smoke"))) for s in c.seeds}
    one = {store.unit_path(c, s) for c in unique_configs(phase_diagram_sweeps(chapter_parameters(
        "03_phase_diagrams", "smoke"))) for s in c.seeds}
    assert one < expected
    runs = {p for p in results.rglob("seed-*.csv.gz") if not p.name.endswith(".interpolation.csv.gz")}
    assert runs == expected, "'sweep all' and the chapters disagree on the units"
    assert f"done: {len(expected)} unit(s) computed" in run.stdout
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", "all", "cross_entropy", "--results",
                          str(results)], capture_output=True, text=True, cwd=ROOT)  # only 03 and 05 have it
    assert run.returncode == 2 and "02_catapult_dynamics/cross_entropy.yml" in run.stderr


def test_a_unit_named_by_two_configurations_is_computed_once(tmp_path):
    class Counting(Serial):
        def compute(self, units, store):
            self.units = list(units)
            return super().compute(units, store)

    backend = Counting("cpu")
    overlapping = [CONFIG.updated(seeds=(0, 1)), CONFIG.updated(seeds=(1, 2))]
    assert compute_missing(overlapping, ResultsStore(tmp_path), backend) == 3
    assert [seed for _, seed in backend.units] == [0, 1, 2]


def test_a_process_pool_has_one_single_threaded_worker_per_usable_core():
    pool = Processes()
    assert (pool.workers, pool.threads) == (usable_cores(), 1) and usable_cores() >= 1


@pytest.mark.parametrize("cores, threads, cuda, expected", [(2, 2, False, Processes), (1, 2, False, Serial),
                                                            (2, 1, False, Serial), (2, 2, True, Serial)])
def test_auto_uses_a_pool_only_where_it_has_the_cores_to_itself(monkeypatch, cores, threads, cuda, expected):
    monkeypatch.setattr(backends_module, "usable_cores", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    backend = get_backend("auto")
    assert type(backend) is expected
    if expected is Processes:
        assert (backend.workers, backend.threads) == (cores, 1)


def test_a_chapters_sweeps_are_computed_in_one_batch(tmp_path):
    class Counting(Serial):
        def __init__(self):
            super().__init__("cpu")
            self.batches = []

        def compute(self, units, store):
            self.batches.append([seed for _, seed in units])
            return super().compute(units, store)

    groups = {"a": [CONFIG.updated(seeds=(0, 1))], "b": [CONFIG.updated(seeds=(1, 2)), CONFIG.updated(seeds=(3,))]}
    store, backend = ResultsStore(tmp_path), Counting()
    assert compute_sweeps(groups, store=store, backend=backend) == 4
    assert backend.batches == [[0, 1, 2, 3]]
    assert compute_sweeps(groups["a"], store=store, backend=backend) == 0
    assert backend.batches == [[0, 1, 2, 3]], "a stored chapter starts no backend"


def test_command_line_rejects_unknown_preset_parameters(tmp_path):
    preset = tmp_path / "bad.yml"
    preset.write_text("widhts: [3]\n")
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", "03_phase_diagrams", str(preset)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "widhts" in run.stderr
    run = subprocess.run([sys.executable, "-m", "helpers", "sweep", "01_uv_model"], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 2 and "runs no sweeps" in run.stderr


def test_every_stored_unit_is_a_line_with_the_count_and_the_time_left(tiny_config, tmp_path, capsys):
    from helpers.sweeps.compute import compute_missing

    config = tiny_config.updated(seeds=[0, 1, 2])
    assert compute_missing([config], ResultsStore(tmp_path), Serial()) == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("units ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("fcn depth 2 width 4" in line and "left" in line for line in lines)
    assert "seed 2" in lines[-1] and "about 0 s left" in lines[-1]
    assert compute_missing([config], ResultsStore(tmp_path), Serial()) == 0     # nothing to do: no line
    assert "units " not in capsys.readouterr().err
