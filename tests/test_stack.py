"""The stack size is not part of a unit's key: training 1, 3 or 16 runs as one stack (the GPU path on a CPU) changes
no critical constant and no rise decision, on units whose ratios L_t/L_0 or λ^H_t/λ^H_0 come close to the
two-decimal rule's edge 1.005, where a decision would flip first. Each unit records the stack that computed it.

What a stack does change: the losses at float32 rounding level (measured ≤ 3e-7 relative), and λ^H_t where both
runs converged to ≤ 1e-5 — except after a catapult, where λ^H_t has fallen to a few per cent of λ^H_0 and the top
of the spectrum is crowded: there a warm-started Lanczos at tol 1e-3 can settle on another eigenvalue of the
cluster (measured up to a factor 2 at λ^H_t/λ^H_0 ≈ 0.03), far below any rise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.nets.build import ModelSpec
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.sweeps.engine import compute_unit
from helpers.analysis.phases import critical_constants
from helpers.rules import rises
from helpers.sweeps.schema import SWEEP

CONFIG = SweepConfig(model=ModelSpec("fcn", 2, 32), n_train=512, n_sharpness=128, batch_size=128, steps=10,
                     c_values=c_grid(6.0, 0.25))
SEEDS = (0, 1, 2)
STACKS = (1, 3, 16)
EDGE = 1.005  # a ratio at or above it rounds to more than 1.00: the rise rule's edge
CROWDED = 0.5  # below this λ^H_t/λ^H_0 the top of the spectrum may be crowded (see the module docstring)

pytestmark = pytest.mark.full


def _constants(runs: pd.DataFrame) -> pd.DataFrame:
    return critical_constants(runs.assign(**{SWEEP: "x"}))[["c_loss", "c_sharp", "c_max"]]


def _ratios(runs: pd.DataFrame) -> pd.DataFrame:
    """Per row after step 0: L_t/L_0, and λ^H_t/λ^H_0 where Lanczos converged (NaN elsewhere)."""
    later = runs[runs.step >= 1]
    return pd.DataFrame(dict(loss=later.loss / later.loss0,
                             sharpness=(later.sharpness / later.sharpness0).where(later.converged.astype(bool))))


def _rose(seed: int, c: float, quantity: str) -> bool:
    """Whether the single run at c rose in ``quantity`` by the two-decimal rule (one run at a time)."""
    search = "loss" if quantity == "loss" else "scan"
    return rises(_ratios(compute_unit(CONFIG.updated(c_values=(c,), search=search), seed, device="cpu").runs)[quantity])


def edge_grid(seed: int, quantity: str, iterations: int = 14) -> tuple[float, ...]:
    """CONFIG's grid with two more c that straddle, to 2^-14 of a grid step, a c at which the run's ``quantity``
    starts to rise: bisected from c_loss (or c_sharp) and the grid point below it, so that the unit holds ratios at
    the rise rule's edge itself."""
    k = _constants(compute_unit(CONFIG, seed, device="cpu").runs).iloc[0]
    above = float(k["c_loss" if quantity == "loss" else "c_sharp"])
    below = max(c for c in CONFIG.c_values if c < above)
    for _ in range(iterations):
        middle = float(np.sqrt(below * above))
        below, above = (below, middle) if _rose(seed, middle, quantity) else (middle, above)
    return tuple(sorted(set(CONFIG.c_values) | {below, above}))


@pytest.fixture(scope="module")
def units() -> dict[tuple[int, int], pd.DataFrame]:
    grids = {seed: edge_grid(seed, quantity) for seed, quantity in zip(SEEDS, ("loss", "sharpness", "loss"))}
    return {(stack, seed): compute_unit(CONFIG.updated(stack=stack, c_values=grids[seed]), seed, device="cpu").runs
            for stack in STACKS for seed in SEEDS}


def test_each_unit_records_the_stack_that_computed_it(units):
    for (stack, _), runs in units.items():
        assert (runs["stack"] == stack).all()


def test_the_set_reaches_the_rise_rules_edge(units):
    distance = pd.concat([np.abs(_ratios(r) - EDGE) for r in units.values()]).min().min()
    assert distance < 1e-3, f"the nearest ratio is {distance:.1e} from the edge: the set does not test what it claims"


def test_the_constants_are_identical_whatever_the_stack(units):
    for seed in SEEDS:
        alone = _constants(units[(1, seed)])
        for stack in STACKS[1:]:
            pd.testing.assert_frame_equal(_constants(units[(stack, seed)]), alone, check_exact=True,
                                          obj=f"seed {seed}, stack {stack}")


def test_every_rise_decision_and_number_agrees_with_one_run_at_a_time(units):
    for seed in SEEDS:
        alone = units[(1, seed)]
        for stack in STACKS[1:]:
            runs = units[(stack, seed)]
            assert list(zip(runs.c, runs.step)) == list(zip(alone.c, alone.step))
            a, b = _ratios(alone), _ratios(runs)
            for column in ("loss", "sharpness"):
                both = a[column].notna() & b[column].notna()
                assert [rises([v]) for v in a[column][both]] == [rises([v]) for v in b[column][both]], column
            loss = a.loss.notna() & b.loss.notna()
            np.testing.assert_allclose(b.loss[loss], a.loss[loss], rtol=1e-5)
            clear = a.sharpness.notna() & b.sharpness.notna() & (a.sharpness > CROWDED)
            np.testing.assert_allclose(b.sharpness[clear], a.sharpness[clear], rtol=1e-4)
