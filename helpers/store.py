"""Results on disk: one CSV per unit (sweep × initialization), in a folder keyed by every parameter of the sweep.

A change of any parameter (or of the package version) changes the key, so a stale result is never returned.
Writes are atomic (write a temporary file, then rename), and a unit counts as stored only once its checksum file,
written last, matches its tables: a file truncated or corrupted later (a full disk, a copy cut short) is detected
on load, deleted and computed again, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
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


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        """The unit's table of runs."""
        return self.folder(config) / f"seed-{seed}.csv"

    def interpolation_path(self, config: SweepConfig, seed: int) -> Path:
        return self.folder(config) / f"seed-{seed}.interpolation.csv"

    def checksum_path(self, config: SweepConfig, seed: int) -> Path:
        """The SHA-256 of the unit's tables, written after them: its presence marks the unit as complete."""
        return self.folder(config) / f"seed-{seed}.sha256"

    def _tables(self, config: SweepConfig, seed: int) -> list[Path]:
        return [self.unit_path(config, seed), self.interpolation_path(config, seed)]

    def is_stored(self, config: SweepConfig, seed: int) -> bool:
        """Whether the unit is complete and intact; a damaged one (tables that do not match the checksums written
        with them) is reported with a warning and deleted, so that it is computed again."""
        checksums = self.checksum_path(config, seed)
        try:
            expected = json.loads(checksums.read_text()) if checksums.exists() else None
        except ValueError:
            expected = {}
        if expected is not None and expected == {p.name: _digest(p) for p in self._tables(config, seed) if p.exists()}:
            return True
        if self.unit_path(config, seed).exists():
            warnings.warn(f"{self.unit_path(config, seed)} is incomplete or corrupt (checksum mismatch); it will be "
                          "computed again", RuntimeWarning, stacklevel=2)
            self.discard(config, seed)
        return False

    def load(self, config: SweepConfig, seed: int) -> Unit | None:
        """The stored unit, or None when it has not been computed or was damaged (see :meth:`is_stored`)."""
        if not self.is_stored(config, seed):
            return None
        path, extra = self._tables(config, seed)
        interpolation = pd.read_csv(extra) if extra.exists() else pd.DataFrame(columns=["seed", "c", "tau", "loss"])
        return Unit(pd.read_csv(path), interpolation)

    def discard(self, config: SweepConfig, seed: int) -> None:
        """Delete a unit's files."""
        for p in [*self._tables(config, seed), self.checksum_path(config, seed)]:
            p.unlink(missing_ok=True)

    def save(self, config: SweepConfig, seed: int, unit: Unit) -> Path:
        """Store one unit atomically (interpolation, runs, then their checksums), with ``config.json`` beside it."""
        folder = self.folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "config.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps({"config": config.key_dict(), "version": __version__}, indent=1,
                                           default=str))
        path, extra = self._tables(config, seed)
        if len(unit.interpolation):
            _atomic_write(extra, unit.interpolation.to_csv(index=False))
        _atomic_write(path, unit.runs.to_csv(index=False))
        written = {p.name: _digest(p) for p in (path, extra) if p.exists()}
        _atomic_write(self.checksum_path(config, seed), json.dumps(written, indent=1))
        return path
