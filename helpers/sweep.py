"""A whole sweep: every initialization of a configuration, loaded from the results store or computed."""

from __future__ import annotations

import sys
from dataclasses import asdict

import pandas as pd
import torch
from tqdm import tqdm

from helpers import __version__
from helpers.config import SweepConfig
from helpers.data import Data
from helpers.device import resolve_device
from helpers.engine import Unit, load_sweep_data, run_unit
from helpers.store import ResultsStore

# Column name → sweep parameter; the loss and sharpness *methods* get names apart from the measured values.
PARAMETER_COLUMNS = {"arch": "arch", "depth": "depth", "width": "width", "parameterization": "parameterization",
                     "bias": "bias", "output": "output", "output_value": "output_value", "dataset": "dataset",
                     "loss_fn": "loss", "n_train": "n_train", "n_sharpness": "n_sharpness",
                     "batch_size": "batch_size", "steps": "steps", "sharpness_method": "sharpness"}


def compute_unit(config: SweepConfig, seed: int, data: Data | None = None,
                 device: str | torch.device | None = None) -> Unit:
    """One unit's tables, the runs marked with the device and package version that produced them."""
    target = resolve_device(device)
    unit = run_unit(config, seed, data if data is not None else load_sweep_data(config, target), target)
    return Unit(unit.runs.assign(device=target.type, version=__version__), unit.interpolation)


def with_parameters(table: pd.DataFrame, config: SweepConfig) -> pd.DataFrame:
    """Add a column for every parameter of the sweep (constant within one sweep)."""
    values = {**asdict(config.model), **asdict(config)}
    return table.assign(**{column: values[name] for column, name in PARAMETER_COLUMNS.items()})


def sweep_results(config: SweepConfig, *, store: ResultsStore | None = None,
                  device: str | torch.device | None = None, cache: bool = True,
                  progress: bool | None = None, scheduler=None) -> Unit:
    """Both tables of a sweep (runs, and the interpolated losses if asked for), with the sweep's parameters.

    Stored units are loaded, not recomputed; each finished initialization is written at once, so an interrupted
    sweep resumes where it stopped. With ``scheduler`` (a Dask client, cluster or address) the missing units are
    computed on the cluster first.
    """
    store = store or ResultsStore()
    if scheduler is not None:
        compute_on_cluster([config], scheduler, store)
    show = sys.stderr.isatty() if progress is None else progress
    units, data = [], None
    for seed in tqdm(config.seeds, desc=f"{config.model.arch} d={config.model.depth} w={config.model.width}",
                     disable=not show, leave=False):
        unit = store.load(config, seed) if cache else None
        if unit is None:
            data = data if data is not None else load_sweep_data(config, device)
            unit = compute_unit(config, seed, data, device)
            if cache:
                store.save(config, seed, unit)
        units.append(unit)
    runs = pd.concat([u.runs for u in units], ignore_index=True)
    interpolation = pd.concat([u.interpolation for u in units], ignore_index=True)
    return Unit(with_parameters(runs, config), with_parameters(interpolation, config))


def run_sweep(config: SweepConfig, **kwargs) -> pd.DataFrame:
    """The tidy table of a sweep, a row per (initialization, c, step); see :func:`sweep_results`."""
    return sweep_results(config, **kwargs).runs


def compute_on_cluster(configs: list[SweepConfig], scheduler, store: ResultsStore) -> None:
    """Compute the missing units of ``configs`` on a Dask cluster; raise one error listing any that failed."""
    from helpers.distributed import submit_units

    failures = submit_units(configs, scheduler, store)
    if failures:
        lines = "\n".join(f"  seed {f.seed} of {f.config}: {f.error}" for f in failures)
        raise RuntimeError(f"{len(failures)} unit(s) failed on the cluster (the others are stored):\n{lines}")


def grid_results(config: SweepConfig, depths: list[int], widths: list[int], **kwargs) -> Unit:
    """Both tables of the sweep of ``config`` at every (depth, width), concatenated."""
    if not depths or not widths:
        raise ValueError("depths and widths must be non-empty lists")
    if kwargs.get("scheduler") is not None:
        store = kwargs.setdefault("store", ResultsStore())
        compute_on_cluster([config.with_model(depth=d, width=w) for d in depths for w in widths],
                           kwargs.pop("scheduler"), store)
    found = [sweep_results(config.with_model(depth=d, width=w), **kwargs) for d in depths for w in widths]
    return Unit(pd.concat([u.runs for u in found], ignore_index=True),
                pd.concat([u.interpolation for u in found], ignore_index=True))


def run_grid(config: SweepConfig, depths: list[int], widths: list[int], **kwargs) -> pd.DataFrame:
    """The runs of ``config`` at every (depth, width), concatenated."""
    return grid_results(config, depths, widths, **kwargs).runs
