"""The results store: stored units are returned and any change of a parameter recomputes; writes are whole under
concurrent writers and killed processes; damaged files are recomputed; a folder that cannot be written is one clear
line before any work."""

from __future__ import annotations

import errno
import gzip
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers.sweeps import backends as backends_module
from helpers.core.files import HOST, FolderNotWritable, check_writable, temporary_name
from helpers.sweeps.store import ResultsStore, _decode, config_key
from helpers.sweeps.compute import compute_missing, run_sweep
from tests.conftest import numbers

ROOT = Path(__file__).resolve().parent.parent


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
    pd.testing.assert_frame_equal(first, again)  # loaded, not recomputed: the same wall time too
    assert {"sweep", "depth", "width", "loss_fn", "device", "version", "n_sharpness"} <= set(first.columns)
    assert first["loss"].dtype == float and (first["loss_fn"] == "mse").all()
    for change in ({"width": 5}, {"batch_size": 4}, {"lanczos_tol": 1e-5}, {"c_values": [1.0, 2.5]},
                   {"search": "scan"}, {"n_sharpness": 8}, {"data_seed": 1}):
        changed = tiny_config.updated(seeds=[0], **change)
        assert config_key(changed) != config_key(tiny_config)
        assert store.folder(changed) != store.folder(tiny_config)
        run_sweep(changed, store=store, device="cpu")
    assert calls == [0] * 8
    assert config_key(tiny_config.updated(stack=2, seeds=[3])) == config_key(tiny_config)  # neither changes a number


def test_stored_values_are_the_computed_ones_bit_for_bit(tiny_config, tmp_path):
    from helpers.sweeps.engine import compute_unit

    config = tiny_config.updated(interpolation_points=5, seeds=[0])
    unit = compute_unit(config, 0)
    store = ResultsStore(tmp_path)
    store.save(config, 0, unit)
    loaded = store.load(config, 0)
    pd.testing.assert_frame_equal(loaded.runs[unit.runs.columns], unit.runs, check_exact=True, check_dtype=False)
    assert {"device", "version", "threads", "seconds"} <= set(loaded.runs.columns)
    pd.testing.assert_frame_equal(loaded.interpolation, unit.interpolation, check_exact=True, check_dtype=False)


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


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_unit_is_detected_and_computed_again(tiny_config, tmp_path, monkeypatch, damage, capfd):
    store = ResultsStore(tmp_path / "results")
    calls = _counting(monkeypatch)
    first = run_sweep(tiny_config, store=store, device="cpu")
    path = store.unit_path(tiny_config, 0)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":  # a copy cut short, a full disk
        blob = blob[: len(blob) // 2]
    else:  # one byte changed inside the compressed data
        blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    again = run_sweep(tiny_config, store=store, device="cpu")
    assert "is damaged" in capfd.readouterr().err  # one line on stderr, where a terminal shows it
    assert calls == [0, 0]
    pd.testing.assert_frame_equal(numbers(first), numbers(again))


def test_a_unit_cut_short_that_still_decompresses_fails_its_checksum(tiny_config, tmp_path, monkeypatch, capfd):
    store = ResultsStore(tmp_path / "results")
    calls = _counting(monkeypatch)
    first = run_sweep(tiny_config, store=store, device="cpu")
    path = store.unit_path(tiny_config, 0)
    table = _decode(path.read_bytes())
    shortened = table.iloc[: len(table) // 2].drop(columns="lr")
    path.write_bytes(gzip.compress(shortened.to_csv(index=False).encode()))  # a valid gzip, half the rows
    assert len(_decode(path.read_bytes())) == len(table) // 2
    again = run_sweep(tiny_config, store=store, device="cpu")
    assert "does not match its checksum" in capfd.readouterr().err
    assert calls == [0, 0]
    pd.testing.assert_frame_equal(numbers(first), numbers(again))


def test_checksums_are_sha256sum_listings(tiny_config, tmp_path):
    store = ResultsStore(tmp_path / "results")
    run_sweep(tiny_config.updated(interpolation_points=3), store=store, device="cpu")
    listing = store.checksum_path(tiny_config.updated(interpolation_points=3), 0)
    checked = subprocess.run(["sha256sum", "-c", listing.name], cwd=listing.parent, capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == 2


def test_a_damaged_shipped_unit_is_reported_and_computed_into_the_local_store(tiny_config, tmp_path, monkeypatch,
                                                                              capfd):
    shipped = ResultsStore(tmp_path / "shipped", shipped=None)
    run_sweep(tiny_config, store=shipped, device="cpu")
    path = shipped.unit_path(tiny_config, 0)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    store = ResultsStore(tmp_path / "local", shipped=tmp_path / "shipped")
    calls = _counting(monkeypatch)
    run_sweep(tiny_config, store=store, device="cpu")
    err = capfd.readouterr().err
    assert "is damaged" in err and "shipped" in err
    assert calls == [0]
    assert path.read_bytes() == bytes(blob)  # the shipped file is left as it is
    assert store.unit_path(tiny_config, 0).exists()


def test_reading_needs_no_write_access(tiny_config, tmp_path, monkeypatch):
    shipped = ResultsStore(tmp_path / "shipped", shipped=None)
    first = run_sweep(tiny_config, store=shipped, device="cpu")
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder below a file can be neither made nor written, even by root
    store = ResultsStore(blocker / "results", shipped=tmp_path / "shipped")
    calls = _counting(monkeypatch)
    again = run_sweep(tiny_config, store=store, device="cpu")
    assert calls == []
    pd.testing.assert_frame_equal(numbers(first), numbers(again))
    with pytest.raises(FolderNotWritable):
        run_sweep(tiny_config.updated(width=5), store=store, device="cpu")  # a unit to compute: one clear error


def _save_same_unit(root: str, data_root: str, barrier) -> str:
    os.environ["EARLY_DYNAMICS_DATA"] = data_root
    import torch

    from helpers.nets.build import ModelSpec
    from helpers.sweeps.config import SweepConfig
    from helpers.sweeps.engine import compute_unit

    torch.set_num_threads(1)
    config = SweepConfig(model=ModelSpec("fcn", 2, 4), dataset="mnist", n_train=40, n_sharpness=16, batch_size=8,
                         steps=3, c_values=(1.0, 2.0), seeds=(0,), lanczos_tol=1e-6, interpolation_points=3)
    unit = compute_unit(config, 0)
    barrier.wait()  # all writers save at once
    return str(ResultsStore(root).save(config, 0, unit))


def test_concurrent_writers_of_one_unit_leave_one_whole_unit(tiny_config, tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(4)
    root = tmp_path / "results"
    with context.Pool(4) as pool:
        paths = pool.starmap(_save_same_unit, [(str(root), os.environ["EARLY_DYNAMICS_DATA"], barrier)] * 4)
    assert len(set(paths)) == 1
    folder = Path(paths[0]).parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "config.json", "seed-0.csv.gz", "seed-0.interpolation.csv.gz", "seed-0.sha256"]
    config = tiny_config.updated(interpolation_points=3)
    assert ResultsStore(root).load(config, 0) is not None


SWEEP_SCRIPT = textwrap.dedent("""
    import sys, torch
    from helpers.nets.build import ModelSpec
    from helpers.sweeps.config import SweepConfig
    from helpers.sweeps.store import ResultsStore
    from helpers.sweeps.compute import compute_missing
    from helpers.sweeps.backends import Serial
    torch.set_num_threads(1)
    config = SweepConfig(model=ModelSpec("fcn", 2, 16), dataset="mnist", n_train=40, n_sharpness=16, batch_size=8,
                         steps=3, c_values=tuple(2 ** (x / 4) for x in range(24)), seeds=tuple(range(12)),
                         interpolation_points=11, search="scan")
    print(compute_missing([config], ResultsStore(sys.argv[1]), Serial()), flush=True)
""")


def _sweep(script: Path, results: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(results)], env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.full
def test_a_sweep_killed_while_writing_resumes_with_every_unit_stored_once_and_intact(tiny_config, tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = _sweep(script, killed, env)
    deadline = time.monotonic() + 120
    while len(list(killed.glob("*/seed-*[0-9].csv.gz"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {p.name for p in killed.glob("*/seed-*[0-9].csv.gz")}
    assert 3 <= len(done_before) < 12, "the kill did not land while units were being written"
    resumed = _sweep(script, killed, env)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert int(out.split()[-1]) == 12 - len(done_before)  # only the missing units were computed
    reference = _sweep(script, clean, env)
    assert reference.communicate(timeout=300)[0].split()[-1] == "12"
    (folder,) = killed.iterdir()
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], f"temporaries left behind: {names}"
    units = sorted(n for n in names if n.endswith(".csv.gz") and "interpolation" not in n)
    assert units == sorted(f"seed-{s}.csv.gz" for s in range(12))
    (clean_folder,) = clean.iterdir()
    for name in names:
        if name.endswith(".csv.gz"):  # intact: the same numbers as an uninterrupted sweep's
            read = [numbers(_decode((f / name).read_bytes())) for f in (folder, clean_folder)]
            pd.testing.assert_frame_equal(*read, check_exact=True)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process may not create files in (root may write anywhere chmod allows; sysfs refuses it)."""
    if os.geteuid() != 0:
        tmp_path.chmod(0o500)
        return tmp_path / "results"
    candidate = Path("/sys/fs/early-dynamics-check")
    try:
        candidate.mkdir()
    except OSError as err:
        assert err.errno in (errno.EPERM, errno.EACCES, errno.EROFS)
        return candidate
    candidate.rmdir()
    pytest.skip("no folder on this machine refuses root")


def test_an_unwritable_results_folder_is_one_clear_line_before_any_work(tmp_path):
    folder = unwritable_folder(tmp_path)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "helpers", "sweep", "03_phase_diagrams", "smoke", "--results",
                           str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "EARLY_DYNAMICS_RESULTS" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - start < 60


def test_an_unwritable_data_folder_is_one_clear_line_before_any_work(tmp_path):
    folder = unwritable_folder(tmp_path)
    env = {**os.environ, "EARLY_DYNAMICS_DATA": str(folder)}
    done = subprocess.run([sys.executable, "-m", "helpers", "sweep", "03_phase_diagrams", "smoke", "--results",
                           str(tmp_path.parent / f"{tmp_path.name}-results")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0] and "EARLY_DYNAMICS_DATA" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_full_folder_is_reported_before_any_work(tiny_config, tmp_path, monkeypatch):
    import shutil

    calls = _counting(monkeypatch)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(FolderNotWritable, match=r"is full \(1 MiB free.*EARLY_DYNAMICS_RESULTS"):
        compute_missing([tiny_config], ResultsStore(tmp_path), backends_module.Serial())
    assert calls == []


def test_a_write_refused_midway_names_the_folder_and_leaves_no_temporary(tmp_path, monkeypatch):
    from helpers.core import files

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", refuse)
    with pytest.raises(FolderNotWritable, match=f"{tmp_path} is full"):
        files.write_text(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FolderNotWritable, match="not a directory|Not a directory"):
        (tmp_path / "file").write_text("")
        check_writable(tmp_path / "file" / "sub", "move it")


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    from helpers.core.files import remove_stale_temporaries

    live = temporary_name(tmp_path / "a.csv.gz")
    live.write_text("x")
    dead = tmp_path / f".b.csv.gz.{HOST}.999999999.abcd.tmp"
    dead.write_text("x")
    assert remove_stale_temporaries(tmp_path) == 1
    assert live.exists() and not dead.exists()


def test_the_shipped_store_is_read_under_the_local_one_and_never_written(tiny_config, tmp_path, monkeypatch):
    shipped, local = tmp_path / "shipped", tmp_path / "local"
    ResultsStore(shipped, shipped=None).save(tiny_config, 0, run_sweep_unit(tiny_config))
    store = ResultsStore(local, shipped=shipped)
    calls = _counting(monkeypatch)
    table = run_sweep(tiny_config.updated(seeds=[0, 1]), store=store, device="cpu")
    assert calls == [1] and sorted(table.seed.unique()) == [0, 1]  # seed 0 shipped, seed 1 computed locally
    assert not (local / store.folder(tiny_config).name / "seed-0.csv.gz").exists()
    assert sorted(p.name for p in (shipped / store.folder(tiny_config).name).iterdir()
                  if not p.name.startswith(".")) == ["config.json", "seed-0.csv.gz", "seed-0.sha256"]
    monkeypatch.setenv("EARLY_DYNAMICS_SHIPPED", "")
    assert ResultsStore(local).shipped is None and not ResultsStore(local).is_stored(tiny_config, 0)
    monkeypatch.setenv("EARLY_DYNAMICS_SHIPPED", str(shipped))
    assert ResultsStore(local).is_stored(tiny_config, 0)


def run_sweep_unit(config):
    from helpers.sweeps.engine import compute_unit

    return compute_unit(config, 0)
