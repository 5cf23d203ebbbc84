"""The calibration's jobs on disk: one JSON file per architecture × optimizer in the protocol's folder, claimed by one
process at a time, and read back as tables."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from helpers.diagnosis.calibration.protocol import SHIPPED, protocol_key


def job_path(folder: Path, model: str, optimizer: str) -> Path:
    return Path(folder) / f"{model}-{optimizer}.json"


def load(folder: Path = SHIPPED) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The stored rows (one per architecture × optimizer × seed), grid runs, and the fitted runs (empty if none)."""
    jobs = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*-*.json"))
            if not path.name.startswith("fitted-")]
    if not jobs:
        raise FileNotFoundError(f"no calibration results in {folder}: "
                                "run `python -m helpers.diagnosis.calibration` (hours)")
    keys = {protocol_key(job["protocol"]) for job in jobs}
    if keys != {Path(folder).name.removeprefix("calibration-")}:
        raise ValueError(f"{folder} holds jobs made under protocols {sorted(keys)}, not the one its name keys")
    rows = pd.DataFrame([dict(r, steps=job["protocol"]["steps"]) for job in jobs for r in job["rows"]])
    runs = pd.DataFrame([dict(r, model=job["model"], optimizer=job["optimizer"]) for job in jobs for r in job["runs"]])
    parts = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("fitted-*.json"))]
    fitted = dict(rule={k: v for part in parts for k, v in part["rule"].items()},
                  runs=[r for part in parts for r in part["runs"]]) if parts else {}
    return rows, runs, fitted


def cost(folder: Path = SHIPPED) -> dict:
    """What the stored calibration took to compute, as its jobs recorded it: the number of jobs, their wall time
    plus that of the fitted rules' training runs (seconds), and the thread counts of the processes."""
    jobs = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*-*.json"))]
    main = [job for job in jobs if "seconds" in job]
    fitted = sum(run["seconds"] for job in jobs if "rule" in job for run in job["runs"])
    return dict(jobs=len(main), seconds=float(sum(job["seconds"] for job in main) + fitted),
                threads=sorted({int(job["threads"]) for job in main}))


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Whether this process holds the claim on the job at ``path`` (several processes share the jobs: each takes the
    ones no other has claimed); the claim is released after."""
    claim = path.with_suffix(".claimed")
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        yield False
        return
    try:
        yield True
    finally:
        claim.unlink()
