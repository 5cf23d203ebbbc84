"""``scripts/gpu_check.sh``, the one prepared call for a GPU machine, runs end to end in its dry-run form here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.full
def test_the_gpu_check_runs_dry_on_a_cpu_and_writes_its_table():
    out = Path("/tmp/gpu_check_dry_run.md")
    out.unlink(missing_ok=True)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    table = out.read_text()
    assert "Machine: " in table and "device cpu" in table
    assert "| fcn d2 w16" in table and "| myrtle d5 w2" in table        # parts 1 and 2 ran
    assert "stack 16" in table and "identical" in table                   # part 3 ran and agreed
    assert "skipped" not in table
