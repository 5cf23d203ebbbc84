"""One line naming the machine a benchmark ran on, and how results are written."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from helpers.core.files import write_text


def describe_machine(device: torch.device) -> str:
    """CPU model, core count, torch version and threads, and the device used, with today's date."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"Machine: {cpu}, {os.cpu_count()} cores{gpu}; torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; device {device}; run on {date.today().isoformat()}.")


def write_results(path: Path, lines: list[str]) -> None:
    """Write a benchmark's Markdown table to ``path`` and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")
    print("\n".join(lines))


def timed(fn: Callable[[], object], repeats: int = 5) -> tuple[float, object]:
    """Median wall seconds of ``repeats`` calls of ``fn`` after one warm-up call (a GPU synchronized after each),
    and the last call's result."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def median_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn`` after one warm-up call (see :func:`timed`)."""
    return timed(fn, repeats)[0]
