"""Cluster benchmark: one sweep run locally, and on a Dask LocalCluster of 1 and 2 worker processes.

Writes ``benchmarks/results/cluster.md``. Run: ``.venv/bin/python -m benchmarks.cluster``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from dask.distributed import Client

from benchmarks.machine import describe_machine, write_results
from helpers.backends import Dask, local_cluster
from helpers.build import ModelSpec
from helpers.config import SweepConfig, c_grid
from helpers.store import ResultsStore
from helpers.sweep import run_sweep

RESULTS = Path(__file__).parent / "results" / "cluster.md"
CONFIG = SweepConfig(model=ModelSpec("fcn", 4, 128), n_train=2560, n_sharpness=512, c_values=c_grid(7.0, 0.5),
                     seeds=(0, 1, 2, 3))


def on_cluster(workers: int, threads: int) -> float:
    """Wall seconds for the sweep on a fresh LocalCluster (worker start-up excluded)."""
    with local_cluster(workers) as cluster, Client(cluster) as client, tempfile.TemporaryDirectory() as root:
        client.run(lambda: __import__("helpers.sweep"))  # import torch and helpers on every worker first
        start = time.perf_counter()
        failures = Dask(client, threads=threads).compute([(CONFIG, s) for s in CONFIG.seeds], ResultsStore(root))
        assert not failures, failures
        return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        run_sweep(CONFIG, store=ResultsStore(root), device="cpu")
        local = time.perf_counter() - start
    rows = [("local, one process", f"{torch.get_num_threads()}", local)]
    for workers, threads in ((1, 1), (2, 1), (1, 2), (2, 2)):
        rows.append((f"LocalCluster, {workers} worker(s)", f"{threads} per worker", on_cluster(workers, threads)))
    lines = ["# Cluster benchmark", "", describe_machine(torch.device("cpu")), "",
             f"One sweep: FCN depth 4, width 128, {CONFIG.n_train} training examples, sharpness on "
             f"{CONFIG.n_sharpness}, T = {CONFIG.steps}, c = 2^x for x = 0, 0.5, …, 7 up to the first divergence, "
             f"{len(CONFIG.seeds)} initializations (4 units). Wall time, worker start-up excluded.", "",
             "| run | torch threads | wall (s) | speed-up vs 1 worker × 1 thread |", "| --- | --- | --- | --- |"]
    base = rows[1][2]
    lines += [f"| {name} | {threads} | {wall:.1f} | {base / wall:.2f} |" for name, threads, wall in rows]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
