"""Sweeps on a Dask cluster: every unit (one configuration × one initialization) is a task that stores its result.

Units already in the store are not submitted. A unit's task key is derived from its configuration and seed, so a
unit is never computed twice at once; a worker lost mid-unit loses only that unit, which Dask runs again
elsewhere; a unit that raises is reported with its parameters while the others complete.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from tqdm import tqdm

from helpers.config import SweepConfig
from helpers.store import ResultsStore, config_key
from helpers.sweep import compute_unit


@dataclass
class Failure:
    """A unit that raised: its parameters and the error."""

    config: dict
    seed: int
    error: str


def compute_and_store(config: SweepConfig, seed: int, root: str, threads: int | None) -> str:
    """Compute one unit on a worker and store it atomically; return where it was written."""
    if threads:
        torch.set_num_threads(threads)
    return str(ResultsStore(root).save(config, seed, compute_unit(config, seed)))


@contextlib.contextmanager
def local_cluster(n_workers: int, **kwargs):
    """A Dask ``LocalCluster`` of ``n_workers`` single-threaded processes.

    Dask sets variables such as ``OMP_NUM_THREADS=1`` in the *calling* process's environment when it starts its
    workers; they are restored on exit, so that later work here (or kernels started from here) keeps its threads.
    """
    from dask.distributed import LocalCluster

    saved = dict(os.environ)
    try:
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None, **kwargs) as cluster:
            yield cluster
    finally:
        os.environ.clear()
        os.environ.update(saved)


def connect(scheduler):
    """A ``dask.distributed.Client`` for a client, a scheduler address, or a cluster object."""
    from dask.distributed import Client

    return scheduler if isinstance(scheduler, Client) else Client(scheduler)


def submit_units(configs: list[SweepConfig], scheduler, store: ResultsStore | None = None,
                 threads: int | None = None, retries: int = 2, progress: bool = False) -> list[Failure]:
    """Compute every unit of ``configs`` that is not stored yet on the cluster; return the units that failed.

    ``threads`` is the torch thread count on the workers (default: this process's, so that CPU results are bit
    for bit those of a local run; 1 avoids oversubscribing a machine that runs several workers).
    """
    from dask.distributed import as_completed

    client = connect(scheduler)
    store = store or ResultsStore()
    threads = torch.get_num_threads() if threads is None else threads
    pending = {}
    for config in configs:
        for seed in config.seeds:
            if not store.unit_path(config, seed).exists():
                key = f"unit-{config_key(config)}-seed-{seed}"
                future = client.submit(compute_and_store, config, seed, str(store.root), threads, key=key,
                                       retries=retries, pure=False)
                pending[future] = (config, seed)
    failures = []
    for future in tqdm(as_completed(list(pending)), total=len(pending), disable=not progress, desc="units"):
        config, seed = pending[future]
        try:
            future.result()
        except Exception as err:  # a failing unit is reported; the rest of the sweep goes on
            failures.append(Failure(config.key_dict(), seed, f"{type(err).__name__}: {err}"))
    return failures
