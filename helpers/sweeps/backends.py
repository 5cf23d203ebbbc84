"""Where a sweep's missing units are computed: one seam, with backends chosen by name.

The contract is the results store: ``backend.compute(units, store)`` computes each unit (one configuration × one
initialization) and saves it in ``store``, and returns the units that failed; the sweep then loads every unit
from the store. A new backend is a class with that one method, registered under a name.

- ``serial``: this process, one unit after another; an error propagates at once.
- ``processes``: a pool of local worker processes (``concurrent.futures``), each with its own torch threads.
- ``auto``: ``processes`` (one single-threaded worker per core) where this process runs torch on a CPU with
  several threads and cores, else ``serial`` (a GPU; or a process kept to one core, e.g. a pytest-xdist worker).
- ``dask``: a Dask cluster (a scheduler address, a ``Client``, or a ``LocalCluster`` started for the call); a
  lost worker costs only its unit, which Dask runs again.
"""

from __future__ import annotations

import contextlib
import inspect
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

import torch
from tqdm import tqdm

from helpers.sweeps.config import SweepConfig
from helpers.sweeps.engine import compute_unit
from helpers.sweeps.store import ResultsStore, config_key

UnitKey = tuple[SweepConfig, int]


@dataclass
class Failure:
    """A unit that raised: its parameters and the error."""

    config: dict
    seed: int
    error: str

    @classmethod
    def of(cls, config: SweepConfig, seed: int, err: BaseException) -> Failure:
        return cls(config.key_dict(), seed, f"{type(err).__name__}: {err}")


class Backend(Protocol):
    """Computes units into a results store."""

    def compute(self, units: list[UnitKey], store: ResultsStore, report: Report | None = None) -> list[Failure]:
        """Compute and store every unit of ``units``; return those that failed. ``report(config, seed)``, where the
        backend takes it, is called as each unit is stored."""
        ...


def compute_and_store(config: SweepConfig, seed: int, root: str, threads: int | None = None) -> str:
    """Compute one unit (in a worker) and store it; return where it was written."""
    if threads:
        torch.set_num_threads(threads)
    return str(ResultsStore(root).save(config, seed, compute_unit(config, seed)))


Report = Callable[[SweepConfig, int], None]


class UnitProgress:
    """One line to ``stream`` (stderr) as each unit is stored: units done of the total, which unit, the time
    since the first started and an estimate of the time left (the mean time per unit so far, times the units left)."""

    def __init__(self, total: int, stream=None) -> None:
        self.total, self.done, self.stream, self.started = total, 0, stream, time.perf_counter()

    def __call__(self, config: SweepConfig, seed: int) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        m = config.model
        print(f"units {self.done}/{self.total} done ({m.arch} depth {m.depth} width {m.width}, seed {seed}); "
              f"{_duration(elapsed)} so far, about {_duration(left)} left", file=self.stream or sys.stderr,
              flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def collect(pending: dict, finished, progress: bool, report: Report | None = None) -> list[Failure]:
    """Wait for every future of ``pending`` (future → (config, seed)) in the order ``finished`` yields them; a
    unit's error becomes its :class:`Failure` and the other units go on; ``report`` is told of each stored unit."""
    failures = []
    for future in tqdm(finished, total=len(pending), disable=not progress, desc="units"):
        try:
            future.result()
        except Exception as err:  # reported with its parameters
            failures.append(Failure.of(*pending[future], err))
        else:
            if report:
                report(*pending[future])
    return failures


class Serial:
    """One unit after another in this process, on ``device``; the first error is raised as it is."""

    def __init__(self, device: str | torch.device | None = None, progress: bool = False) -> None:
        self.device, self.progress = device, progress

    def compute(self, units: list[UnitKey], store: ResultsStore, report: Report | None = None) -> list[Failure]:
        for config, seed in tqdm(units, desc="units", disable=not self.progress, leave=False):
            store.save(config, seed, compute_unit(config, seed, device=self.device))
            if report:
                report(config, seed)
        return []


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Processes:
    """A pool of ``workers`` local processes (default: one per usable core) with ``threads`` torch threads each
    (processes are spawned fresh)."""

    def __init__(self, workers: int | None = None, threads: int = 1, progress: bool = False) -> None:
        self.workers, self.threads, self.progress = workers or usable_cores(), threads, progress

    def compute(self, units: list[UnitKey], store: ResultsStore, report: Report | None = None) -> list[Failure]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            pending = {pool.submit(compute_and_store, config, seed, str(store.root), self.threads): (config, seed)
                       for config, seed in units}
            return collect(pending, as_completed(pending), self.progress, report)


def automatic(progress: bool = False) -> Backend:
    """:class:`Processes` with one single-threaded worker per usable core when this process runs torch on a CPU
    with several threads and cores; :class:`Serial` otherwise (a GPU, where units stack their runs instead; or a
    process kept to one thread, e.g. a pytest-xdist worker, whose kernels would otherwise oversubscribe the cores).

    Units computed by single-threaded workers agree with those of a two-threaded process up to float32 rounding
    (the threads split reductions differently)."""
    if torch.cuda.is_available() or usable_cores() < 2 or torch.get_num_threads() < 2:
        return Serial(progress=progress)
    return Processes(progress=progress)


WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask configuration for torch workers: glibc's default memory trimming (see :func:`local_cluster`)."""


@contextlib.contextmanager
def local_cluster(n_workers: int, **kwargs):
    """A Dask ``LocalCluster`` of ``n_workers`` single-threaded processes.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's adaptive mmap
    threshold: every tensor over 128 KiB is then mapped and unmapped afresh, and a sweep runs about 2× slower
    (``benchmarks/cluster.py``); the workers here start without it (:data:`WORKER_ENVIRON`; set it for a cluster you
    start yourself). Dask also sets variables such as ``OMP_NUM_THREADS=1`` in the *calling* process's environment
    when it starts its workers; they are restored on exit, so that later work here (or kernels started from here)
    keeps its threads.
    """
    import dask
    from dask.distributed import LocalCluster

    saved = dict(os.environ)
    try:
        with dask.config.set(WORKER_ENVIRON), LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                                           dashboard_address=None, **kwargs) as cluster:
            yield cluster
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Dask:
    """Units as Dask tasks on ``scheduler`` (an address, a ``Client`` or a cluster; None: a ``LocalCluster`` of
    ``workers`` processes for the call).

    ``threads`` is the torch thread count on the workers (default: this process's, so that CPU results are bit
    for bit those of a local run). A unit's task key is derived from its configuration and seed, so no unit is
    computed twice at once.
    """

    def __init__(self, scheduler=None, workers: int = 2, threads: int | None = None, retries: int = 2,
                 progress: bool = False) -> None:
        self.scheduler, self.workers, self.threads = scheduler, workers, threads
        self.retries, self.progress = retries, progress

    @contextlib.contextmanager
    def client(self):
        """A ``dask.distributed.Client`` for the scheduler (closed afterwards unless it was given)."""
        from dask.distributed import Client

        if isinstance(self.scheduler, Client):
            yield self.scheduler
            return
        with contextlib.ExitStack() as stack:
            target = self.scheduler or stack.enter_context(local_cluster(self.workers))
            yield stack.enter_context(Client(target))

    def compute(self, units: list[UnitKey], store: ResultsStore, report: Report | None = None) -> list[Failure]:
        from dask.distributed import as_completed as completed

        threads = torch.get_num_threads() if self.threads is None else self.threads
        with self.client() as client:
            pending = {client.submit(compute_and_store, config, seed, str(store.root), threads,
                                     key=f"unit-{config_key(config)}-seed-{seed}", retries=self.retries,
                                     pure=False): (config, seed) for config, seed in units}
            return collect(pending, completed(list(pending)), self.progress, report)


BACKENDS: dict[str, Callable[..., Backend]] = {"serial": Serial, "processes": Processes, "dask": Dask,
                                               "auto": automatic}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make ``factory(**options)`` available as the backend called ``name``."""
    BACKENDS[name] = factory


def takes_report(backend: Backend) -> bool:
    """Whether ``backend.compute`` takes a ``report`` (a backend registered by a user may not)."""
    return "report" in inspect.signature(backend.compute).parameters


def get_backend(backend: str | Backend | None = None, **options) -> Backend:
    """The backend called ``backend`` (None: ``serial``) built with ``options``; a backend object is returned as is."""
    if backend is None:
        backend = "serial"
    if not isinstance(backend, str):
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[backend](**options)
