"""Backend benchmark: one sweep run in this process (1 and 2 torch threads), on a pool of local worker processes,
and on a Dask LocalCluster of 1 and 2 worker processes.

Writes ``benchmarks/results/cluster.md``. Run: ``.venv/bin/python -m benchmarks.cluster``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from dask.distributed import Client

from benchmarks.machine import describe_machine, write_results
from helpers.sweeps.backends import Dask, Processes, local_cluster
from helpers.nets.build import ModelSpec
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.sweeps.store import ResultsStore
from helpers.sweeps.compute import run_sweep

RESULTS = Path(__file__).parent / "results" / "cluster.md"
CONFIG = SweepConfig(model=ModelSpec("fcn", 4, 128), n_train=2560, n_sharpness=512, c_values=c_grid(7.0, 0.5),
                     seeds=(0, 1, 2, 3))


def on_cluster(workers: int, threads: int) -> float:
    """Wall seconds for the sweep on a fresh LocalCluster (worker start-up excluded)."""
    with local_cluster(workers) as cluster, Client(cluster) as client, tempfile.TemporaryDirectory() as root:
        client.run(lambda: __import__("helpers.sweeps.compute"))  # import torch and helpers on every worker first
        start = time.perf_counter()
        failures = Dask(client, threads=threads).compute([(CONFIG, s) for s in CONFIG.seeds], ResultsStore(root))
        assert not failures, failures
        return time.perf_counter() - start


def in_process(threads: int) -> float:
    """Wall seconds for the sweep in this process with ``threads`` torch threads."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            run_sweep(CONFIG, store=ResultsStore(root), device="cpu")
            return time.perf_counter() - start
    finally:
        torch.set_num_threads(saved)


def on_processes(workers: int, threads: int) -> float:
    """Wall seconds for the sweep on a fresh pool of local processes (their start-up included)."""
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        failures = Processes(workers, threads).compute([(CONFIG, s) for s in CONFIG.seeds], ResultsStore(root))
        assert not failures, failures
        return time.perf_counter() - start


def main() -> None:
    in_process(1)  # warm the data cache and the imports
    rows = [("this process", "1", in_process(1)), ("this process", "2", in_process(2))]
    for workers, threads in ((2, 1), (1, 2)):
        rows.append((f"process pool, {workers} worker(s) (start-up included)", f"{threads} per worker",
                     on_processes(workers, threads)))
    for workers, threads in ((1, 1), (2, 1)):
        rows.append((f"LocalCluster, {workers} worker(s)", f"{threads} per worker", on_cluster(workers, threads)))
    lines = ["# Backend benchmark", "", describe_machine(torch.device("cpu")), "",
             f"One sweep: FCN depth 4, width 128, {CONFIG.n_train} training examples, sharpness on "
             f"{CONFIG.n_sharpness}, T = {CONFIG.steps}, c = 2^x for x = 0, 0.5, …, 7 up to the first divergence, "
             f"{len(CONFIG.seeds)} initializations (4 units), search {CONFIG.search!r}. Wall time; the process pool's "
             "start-up is included, the Dask workers' is not.", "",
             "| run | torch threads | wall (s) | speed-up vs this process, 1 thread |", "| --- | --- | --- | --- |"]
    base = rows[0][2]
    lines += [f"| {name} | {threads} | {wall:.1f} | {base / wall:.2f} |" for name, threads, wall in rows]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
