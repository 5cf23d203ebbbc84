"""Results on disk: one CSV per unit (sweep × initialization), in a folder keyed by every parameter of the sweep.

A change of any parameter (or of the package version) changes the key, so a stale result is never returned.
Writes are atomic (write a temporary file, then rename), so an interrupted or concurrent run never leaves a
half-written unit behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from helpers import __version__
from helpers.config import SweepConfig
from helpers.engine import Unit
from helpers.paths import configured_folder

RESULTS_ENV_VAR = "EARLY_DYNAMICS_RESULTS"


def results_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$EARLY_DYNAMICS_RESULTS``, else ``results/`` in the repository."""
    return configured_folder(root, RESULTS_ENV_VAR, "results")


def config_key(config: SweepConfig) -> str:
    """A hash of every parameter that determines the numbers, and of the package version."""
    blob = json.dumps({"config": config.key_dict(), "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class ResultsStore:
    """Units of a sweep stored under ``root``, one folder per sweep configuration."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = results_root(root)

    def folder(self, config: SweepConfig) -> Path:
        """The folder of a sweep, named by its main hyperparameters and its key."""
        m = config.model
        value = "" if m.output_value is None else f"{m.output_value:g}"
        name = (f"{m.arch}-d{m.depth}-w{m.width}-{m.parameterization}-{m.output}{value}-{config.loss}-"
                f"{config.dataset}-{config_key(config)}")
        return self.root / name

    def unit_path(self, config: SweepConfig, seed: int) -> Path:
        """The unit's table of runs; its existence marks the unit as complete."""
        return self.folder(config) / f"seed-{seed}.csv"

    def interpolation_path(self, config: SweepConfig, seed: int) -> Path:
        return self.folder(config) / f"seed-{seed}.interpolation.csv"

    def load(self, config: SweepConfig, seed: int) -> Unit | None:
        """The stored unit, or None when it has not been computed."""
        path, extra = self.unit_path(config, seed), self.interpolation_path(config, seed)
        if not path.exists():
            return None
        interpolation = pd.read_csv(extra) if extra.exists() else pd.DataFrame(columns=["seed", "c", "tau", "loss"])
        return Unit(pd.read_csv(path), interpolation)

    def save(self, config: SweepConfig, seed: int, unit: Unit) -> Path:
        """Store one unit atomically (its interpolation first, its runs last), with ``config.json`` beside it."""
        folder = self.folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "config.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps({"config": config.key_dict(), "version": __version__}, indent=1,
                                           default=str))
        if len(unit.interpolation):
            _atomic_write(self.interpolation_path(config, seed), unit.interpolation.to_csv(index=False))
        path = self.unit_path(config, seed)
        _atomic_write(path, unit.runs.to_csv(index=False))
        return path
