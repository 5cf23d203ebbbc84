"""Sweeps: every initialization of one or more configurations, loaded from the results store or computed.

Missing units are computed by a backend (:mod:`helpers.sweeps.backends`: ``serial`` here by default, ``processes``,
``dask``, ``auto``) into the store, then every unit is loaded from it; each finished unit is stored at once, so an
interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import pandas as pd
import torch

from helpers.sweeps.backends import Backend, Serial, UnitProgress, get_backend, takes_report
from helpers.sweeps.config import SweepConfig
from helpers.data.images import prepare_dataset
from helpers.sweeps.engine import compute_unit
from helpers.sweeps.problem import load_sweep_data
from helpers.sweeps.schema import Unit, with_parameters
from helpers.sweeps.store import ResultsStore

class SweepFailed(RuntimeError):
    """Some units raised on a backend; the others are stored."""


def compute_missing(configs: list[SweepConfig], store: ResultsStore, backend: Backend) -> int:
    """Have ``backend`` compute every unit of ``configs`` not yet in ``store`` (once, however many configurations
    name it: configurations that differ only in their seeds share units); return how many it computed.

    Before any unit starts, the store must take files and every dataset the units need is made ready here, once
    (:func:`~helpers.data.images.prepare_dataset`), so that a read-only or full folder or missing data is one clear
    error in this process, not one per worker. Raises :class:`SweepFailed` listing the units that failed (the others are
    stored).
    """
    missing, named = [], set()
    for config in configs:
        for seed in config.seeds:
            path = store.unit_path(config, seed)
            if path not in named and not store.is_stored(config, seed):
                missing.append((config, seed))
            named.add(path)
    missing.sort(key=lambda unit: -work(unit[0]))  # the largest first, so that a pool's workers finish together
    if missing:
        store.check_writable()
        for dataset in sorted({config.dataset for config, _ in missing}):
            prepare_dataset(dataset)
    failures = []
    if missing:
        extra = {"report": UnitProgress(len(missing))} if takes_report(backend) else {}
        failures = backend.compute(missing, store, **extra)
    if failures:
        lines = "\n".join(f"  seed {f.seed} of {f.config}: {f.error}" for f in failures)
        raise SweepFailed(f"{len(failures)} unit(s) failed (the others are stored):\n{lines}")
    return len(missing)


def work(config: SweepConfig) -> float:
    """A rough measure of a unit's work, to order units (not a prediction of its time): width² · depth · steps ·
    runs · examples."""
    m = config.model
    return float(m.width) ** 2 * m.depth * config.steps * len(config.c_values) * (config.n_train + config.n_sharpness)


def compute_sweeps(sweeps: dict[str, list[SweepConfig]] | list[SweepConfig], *, store: ResultsStore | None = None,
                   backend: str | Backend | None = None) -> int:
    """Compute every unit of ``sweeps`` (a chapter's named groups of configurations, or a list) that ``store`` lacks,
    as one batch on ``backend`` (a name or an object; default ``serial``): a pool of workers then starts once for the
    whole chapter, not once per group. Returns how many units it computed; the chapter's later calls load them."""
    configs = [c for group in sweeps.values() for c in group] if isinstance(sweeps, dict) else list(sweeps)
    return compute_missing(configs, store or ResultsStore(), get_backend(backend))


def sweeps_results(configs: list[SweepConfig], *, store: ResultsStore | None = None,
                   backend: str | Backend | None = None, device: str | torch.device | None = None,
                   cache: bool = True, progress: bool = False) -> Unit:
    """Both tables (runs, and interpolated losses if asked for) of every sweep in ``configs``, with parameters.

    ``backend`` (a name or an object; default ``serial`` on ``device``) computes the units missing from ``store``;
    ``cache=False`` computes every unit here without reading or writing the store.
    """
    if not configs:
        raise ValueError("no sweep configurations given")
    store = store or ResultsStore()
    if cache:
        chosen = Serial(device, progress) if backend in (None, "serial") else get_backend(backend)
        compute_missing(configs, store, chosen)
    found = []
    for config in configs:
        units = [_stored(store, config, seed) if cache else
                 compute_unit(config, seed, load_sweep_data(config, device), device) for seed in config.seeds]
        found.append(Unit(with_parameters(pd.concat([u.runs for u in units], ignore_index=True), config),
                          with_parameters(pd.concat([u.interpolation for u in units], ignore_index=True), config)))
    return Unit(pd.concat([u.runs for u in found], ignore_index=True),
                pd.concat([u.interpolation for u in found], ignore_index=True))


def _stored(store: ResultsStore, config: SweepConfig, seed: int) -> Unit:
    unit = store.load(config, seed)
    if unit is None:
        raise SweepFailed(f"seed {seed} of {config.key_dict()} is missing from {store.root} after it was computed")
    return unit


def run_sweep(config: SweepConfig, **options) -> pd.DataFrame:
    """The tidy table of a sweep, a row per (initialization, c, step); see :func:`sweeps_results`."""
    return sweeps_results([config], **options).runs


def run_sweeps(configs: list[SweepConfig], **options) -> pd.DataFrame:
    """The runs of several sweeps, concatenated; see :func:`sweeps_results`."""
    return sweeps_results(configs, **options).runs
