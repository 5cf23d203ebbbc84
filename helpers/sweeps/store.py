"""Results on disk: one folder per sweep configuration, keyed by every parameter and the numerics version
(:mod:`helpers.sweeps.schema`); one gzip-compressed CSV per table of a unit (one configuration × one initialization).

Two layers: the *local* store (``results/``, or ``$EARLY_DYNAMICS_RESULTS``), where everything computed here is
written, over the *shipped* store (``store/`` in the repository, or ``$EARLY_DYNAMICS_SHIPPED``; empty: none), which
holds the results of every chapter's defaults and is only read. A unit is looked up in the local store first.

A unit counts as stored once its table of runs is in place. Tables are written under unique temporary names and
renamed (the interpolated losses first, the runs last), so a reader sees a whole unit or none, two writers of one
unit never clash, and a killed writer leaves only a temporary, deleted by the next save in its folder. Each unit has
its SHA-256 checksums beside it (``seed-N.sha256``, in ``sha256sum -c``'s format), written before its table of runs:
a file damaged later (a full disk, a copy cut short, an edit, even one that still decompresses) is reported on
stderr, deleted where it can be and computed again into the local store. Reading never writes: a store that holds
every unit a call needs can be read-only.
Values measured in float32 are stored with float32's shortest exact digits and read back bit for bit.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import __version__
from helpers.sweeps.config import SweepConfig
from helpers.core.files import (FolderNotWritable, check_writable, folder_lock, remove_stale_temporaries, write_bytes,
                                write_text)
from helpers.core.checksums import ChecksumMismatch, checksums, verify
from helpers.core.paths import configured_folder
from helpers.sweeps.schema import FLOAT32_COLUMNS, INTERPOLATION_COLUMNS, NUMERICS_VERSION, Unit, sweep_key

RESULTS_ENV_VAR = "EARLY_DYNAMICS_RESULTS"
SHIPPED_ENV_VAR = "EARLY_DYNAMICS_SHIPPED"
LOCK = ".save.lock"
DAMAGED = (OSError, EOFError, zlib.error, ValueError, pd.errors.ParserError)


def results_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$EARLY_DYNAMICS_RESULTS``, else ``results/`` in the repository."""
    return configured_folder(root, RESULTS_ENV_VAR, "results")


def shipped_root() -> Path | None:
    """The shipped store: ``$EARLY_DYNAMICS_SHIPPED`` if set (empty: none), else ``store/`` in the repository."""
    value = os.environ.get(SHIPPED_ENV_VAR)
    if value is not None:
        return Path(value) if value else None
    return configured_folder(None, SHIPPED_ENV_VAR, "store")


def config_key(config: SweepConfig) -> str:
    """The sweep key of ``config`` (:func:`helpers.sweeps.schema.sweep_key`)."""
    return sweep_key(config)


def _encode(table: pd.DataFrame) -> bytes:
    """A table as gzip-compressed CSV, float32 measurements with float32's digits, ``lr`` left out (it is c/λ^H_0)."""
    table = table.drop(columns="lr", errors="ignore")
    table = table.astype({name: np.float32 for name in FLOAT32_COLUMNS if name in table.columns})
    return gzip.compress(table.to_csv(index=False).encode(), mtime=0)


def earlier_divergence_rule(runs: pd.DataFrame, config: SweepConfig) -> bool:
    """Whether a unit stored under the study's divergence rule was in fact computed under the earlier one: a run
    marked divergent whose minibatch loss was finite and at most the threshold (its measurement loss stopped it),
    which the study's rule never does."""
    if config.divergence != "minibatch" or not {"diverged", "batch_loss"} <= set(runs.columns):
        return False
    marked = runs["diverged"].astype(bool).to_numpy()
    batch = runs["batch_loss"].to_numpy(dtype=float)
    return bool((marked & np.isfinite(batch) & (batch <= config.diverge_loss)).any())


def _unit_blobs(folder: Path, seed: int, config: SweepConfig) -> dict[str, bytes]:
    """The bytes of a unit's files in ``folder``, by name: its runs, and its interpolated losses where the sweep
    measures them."""
    names = [f"seed-{seed}.csv.gz"] + ([f"seed-{seed}.interpolation.csv.gz"] if config.interpolation_points else [])
    return {name: (folder / name).read_bytes() for name in names}


def _decode(blob: bytes) -> pd.DataFrame:
    table = pd.read_csv(io.BytesIO(gzip.decompress(blob)))
    for name in FLOAT32_COLUMNS:
        if name in table.columns:
            table[name] = table[name].astype(np.float32).astype(np.float64)
    if {"c", "sharpness0"} <= set(table.columns) and "lr" not in table.columns:
        table.insert(2, "lr", table["c"] / table["sharpness0"])
    return table


def folder_name(config: SweepConfig) -> str:
    """A sweep's folder, named by its main hyperparameters and its key."""
    m = config.model
    value = "" if m.output_value is None else f"{m.output_value:g}"
    return (f"{m.arch}-d{m.depth}-w{m.width}-{m.parameterization}-{m.output}{value}-{config.loss}-{config.dataset}-"
            f"{sweep_key(config)}")


class ResultsStore:
    """Units of sweeps stored under ``root`` (written here), over the read-only ``shipped`` store (default:
    :func:`shipped_root`; None: none), one folder per sweep configuration."""

    def __init__(self, root: str | os.PathLike | None = None, shipped: str | os.PathLike | None | bool = True) -> None:
        self.root = results_root(root)
        chosen = shipped_root() if shipped is True else (Path(shipped) if shipped else None)
        self.shipped = None if chosen is not None and chosen.resolve() == self.root.resolve() else chosen

    def folder(self, config: SweepConfig) -> Path:
        """The folder of a sweep in the local store."""
        return self.root / folder_name(config)

    def unit_path(self, config: SweepConfig, seed: int) -> Path:
        """The unit's table of runs (its presence marks the unit as stored)."""
        return self.folder(config) / f"seed-{seed}.csv.gz"

    def interpolation_path(self, config: SweepConfig, seed: int) -> Path:
        """The unit's table of interpolated losses (only for sweeps that measure them)."""
        return self.folder(config) / f"seed-{seed}.interpolation.csv.gz"

    def checksum_path(self, config: SweepConfig, seed: int) -> Path:
        """The unit's checksums (``sha256sum -c seed-N.sha256`` checks them by hand)."""
        return self.folder(config) / f"seed-{seed}.sha256"

    def check_writable(self) -> None:
        """Raise one clear :class:`~helpers.core.files.FolderNotWritable` line, before any work, when the store cannot
        take results."""
        check_writable(self.root, f"point ${RESULTS_ENV_VAR} (or --results) at a writable folder with free space")

    def _read(self, config: SweepConfig, seed: int) -> Unit | None:
        for root in [self.root] + ([self.shipped] if self.shipped else []):
            folder = root / folder_name(config)
            path = folder / f"seed-{seed}.csv.gz"
            if not path.exists():
                continue
            try:
                blobs = _unit_blobs(folder, seed, config)
                verify(folder / f"seed-{seed}.sha256", blobs)
                runs = _decode(blobs[path.name])
                interpolation = (_decode(blobs[f"seed-{seed}.interpolation.csv.gz"]) if config.interpolation_points
                                 else pd.DataFrame(columns=list(INTERPOLATION_COLUMNS)))
            except DAMAGED as err:
                problem = f"is damaged ({type(err).__name__}: {err})"
            else:
                if not earlier_divergence_rule(runs, config):
                    return Unit(runs, interpolation)
                problem = "was computed under the measurement-set divergence rule (helpers < 0.7), not the study's"
            local = root == self.root
            where = "" if local else " (shipped; it stays as it is, and the new unit goes to the local store)"
            self._report(f"{path} {problem}{where}; it will be computed again")
            if local:
                self._discard_if_possible(config, seed)
        return None

    @staticmethod
    def _report(message: str) -> None:
        """One line on stderr: what a terminal shows (and papermill with ``--log-output``), like the progress lines."""
        print(f"store: {message}", file=sys.stderr, flush=True)

    def _discard_if_possible(self, config: SweepConfig, seed: int) -> None:
        with contextlib.suppress(OSError):  # a read-only store: computed again only if asked; the save says why
            self.discard(config, seed)

    def is_stored(self, config: SweepConfig, seed: int) -> bool:
        """Whether the unit is stored and intact; a damaged one (or one stored under the earlier divergence rule) is
        reported on stderr and deleted, so that it is computed again."""
        return self._read(config, seed) is not None

    def load(self, config: SweepConfig, seed: int) -> Unit | None:
        """The stored unit, or None when it has not been computed or was damaged (see :meth:`is_stored`)."""
        return self._read(config, seed)

    def discard(self, config: SweepConfig, seed: int) -> None:
        """Delete a unit's files."""
        for path in (self.interpolation_path(config, seed), self.checksum_path(config, seed),
                     self.unit_path(config, seed)):
            path.unlink(missing_ok=True)

    def save(self, config: SweepConfig, seed: int, unit: Unit) -> Path:
        """Store one unit (the interpolated losses, the checksums, then the runs), with ``config.json`` beside it."""
        folder = self.folder(config)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(folder)
            meta = folder / "config.json"
            if not meta.exists():
                write_text(meta, json.dumps({"config": config.key_dict(), "numerics": NUMERICS_VERSION,
                                             "written_by": __version__}, indent=1, default=str))
            with folder_lock(folder, LOCK):  # one writer of the folder at a time: a unit's files and checksums agree
                if not self._intact(config, seed):
                    self._write(config, seed, unit)
        except FolderNotWritable as err:
            raise FolderNotWritable(err.errno, f"{err}; point ${RESULTS_ENV_VAR} (or --results) at a writable "
                                               "folder with free space") from None
        return self.unit_path(config, seed)

    def _intact(self, config: SweepConfig, seed: int) -> bool:
        """Whether the local store holds the whole unit already, checksums included (another writer stored it
        first)."""
        listing = self.checksum_path(config, seed)
        if not listing.exists():
            return False
        try:
            verify(listing, _unit_blobs(self.folder(config), seed, config))
        except (OSError, ChecksumMismatch):
            return False
        return True

    def _write(self, config: SweepConfig, seed: int, unit: Unit) -> None:
        runs, extra = self.unit_path(config, seed), self.interpolation_path(config, seed)
        blobs = {runs.name: _encode(unit.runs)}
        if config.interpolation_points:
            blobs[extra.name] = _encode(unit.interpolation)
            write_bytes(extra, blobs[extra.name])
        write_text(self.checksum_path(config, seed), checksums(blobs))
        write_bytes(runs, blobs[runs.name])

    def stored_units(self, shipped: bool = False) -> Iterator[tuple[dict, int, Path]]:
        """Every unit in the local store (or the shipped one): (the ``config.json`` of its folder, seed, path of its
        runs)."""
        root = self.shipped if shipped else self.root
        for meta in sorted(root.glob("*/config.json")) if root else []:
            description = json.loads(meta.read_text())
            for path in sorted(meta.parent.glob("seed-*.csv.gz")):
                if not path.name.endswith(".interpolation.csv.gz"):
                    yield description, int(path.name.split("-")[1].split(".")[0]), path
