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
from helpers.engine import load_sweep_data, run_unit
from helpers.store import ResultsStore

# Column name → sweep parameter; the loss and sharpness *methods* get names apart from the measured values.
PARAMETER_COLUMNS = {"arch": "arch", "depth": "depth", "width": "width", "parameterization": "parameterization",
                     "bias": "bias", "output": "output", "output_value": "output_value", "dataset": "dataset",
                     "loss_fn": "loss", "n_train": "n_train", "n_sharpness": "n_sharpness",
                     "batch_size": "batch_size", "steps": "steps", "sharpness_method": "sharpness"}


def compute_unit(config: SweepConfig, seed: int, data: Data | None = None,
                 device: str | torch.device | None = None) -> pd.DataFrame:
    """One unit's table, with the device and package version that produced it."""
    target = resolve_device(device)
    table = run_unit(config, seed, data if data is not None else load_sweep_data(config, target), target)
    return table.assign(device=target.type, version=__version__)


def with_parameters(table: pd.DataFrame, config: SweepConfig) -> pd.DataFrame:
    """Add a column for every parameter of the sweep (constant within one sweep)."""
    values = {**asdict(config.model), **asdict(config)}
    return table.assign(**{column: values[name] for column, name in PARAMETER_COLUMNS.items()})


def run_sweep(config: SweepConfig, *, store: ResultsStore | None = None, device: str | torch.device | None = None,
              cache: bool = True, progress: bool | None = None) -> pd.DataFrame:
    """The tidy table of a sweep, a row per (initialization, c, step); stored units are loaded, not recomputed.

    Each finished initialization is written at once, so an interrupted sweep resumes where it stopped.
    """
    store = store or ResultsStore()
    show = sys.stderr.isatty() if progress is None else progress
    tables, data = [], None
    for seed in tqdm(config.seeds, desc=f"{config.model.arch} d={config.model.depth} w={config.model.width}",
                     disable=not show, leave=False):
        table = store.load(config, seed) if cache else None
        if table is None:
            data = data if data is not None else load_sweep_data(config, device)
            table = compute_unit(config, seed, data, device)
            if cache:
                store.save(config, seed, table)
        tables.append(table)
    return with_parameters(pd.concat(tables, ignore_index=True), config)


def run_grid(config: SweepConfig, depths: list[int], widths: list[int], **kwargs) -> pd.DataFrame:
    """The sweep of ``config`` at every (depth, width), concatenated."""
    if not depths or not widths:
        raise ValueError("depths and widths must be non-empty lists")
    tables = [run_sweep(config.with_model(depth=d, width=w), **kwargs) for d in depths for w in widths]
    return pd.concat(tables, ignore_index=True)
