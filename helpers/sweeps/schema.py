"""The tables of a sweep, defined once: a unit's columns, the parameter columns derived from the configuration
dataclasses, and the sweep key that tells sweeps apart.

Every field of :class:`~helpers.nets.build.ModelSpec` and :class:`~helpers.sweeps.config.SweepConfig` that can change a
number enters the key; the scalar ones also become columns of a sweep's table (renamed where a measured column has the
name: the loss *function* is ``loss_fn``, the sharpness *estimator* ``sharpness_method``). Groupings use
:func:`sweep_columns`, so two sweeps that differ in any parameter are never pooled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

import pandas as pd

from helpers.sweeps.config import SweepConfig

NUMERICS_VERSION = 1
"""Changes when the same configuration would produce other numbers (a changed rule, estimator or training step),
and only then: stored results are keyed by it, not by the package version, so a refactor keeps them valid."""

RUN_COLUMNS = ("seed", "c", "lr", "step", "loss", "loss0", "batch_loss", "sharpness", "sharpness0", "diverged",
               "products", "converged")
"""One row per run (c) and step t: L_t on the measurement set, the minibatch loss of step t, λ^H_t (NaN where not
measured), λ^H_0 and L_0, whether the run diverged at t, the Hessian-vector products spent, whether Lanczos
converged."""
PROVENANCE_COLUMNS = ("device", "version", "threads", "seconds", "stack", "processor")
"""Where and how a unit was computed: the device, the package version, torch's threads, the unit's wall time (s),
how many runs trained together as one stack, and the processor's model name (the last two absent in units written
before they were recorded: those were computed one run at a time, on a CPU)."""
INTERPOLATION_COLUMNS = ("seed", "c", "tau", "loss")
"""One row per run and point τ of L_int(τ) = L((1 − τ)θ₀ + τθ_T)."""
FLOAT32_COLUMNS = ("loss", "loss0", "batch_loss", "sharpness", "sharpness0", "movement")
"""Measured in float32: stored with float32's shortest exact digits, read back bit for bit."""
RENAMED = {"loss": "loss_fn", "sharpness": "sharpness_method"}
NOT_KEYED = ("seeds", "stack")
"""Not in the key: the seeds index units; the stack size moves L_t at float32 rounding level and λ^H_t only where
the top of the spectrum is crowded after a catapult, and changes no constant and no rise decision
(``tests/test_stack.py``, near-edge ratios included); each unit records its stack in the ``stack`` column."""
SWEEP = "sweep"


@dataclass
class Unit:
    """One unit's results (one configuration × one initialization): a row per (c, step) in ``runs``, a row per
    (c, τ) in ``interpolation``."""

    runs: pd.DataFrame
    interpolation: pd.DataFrame


def sweep_key(config: SweepConfig) -> str:
    """A hash of every parameter that determines the numbers, and of :data:`NUMERICS_VERSION`."""
    blob = json.dumps({"config": config.key_dict(), "numerics": NUMERICS_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _columns(source) -> list[str]:
    """The scalar fields of a configuration dataclass (not lists such as the grid of c, which only the key holds)."""
    return [f.name for f in fields(source) if f.name not in NOT_KEYED and not any(
        kind in str(f.type) for kind in ("tuple", "ModelSpec"))]


def parameter_values(config: SweepConfig) -> dict:
    """The sweep's key and its scalar parameters, by column name (constant within a sweep)."""
    values = {SWEEP: sweep_key(config)}
    for source in (config.model, config):
        values.update({RENAMED.get(name, name): getattr(source, name) for name in _columns(source)})
    return values


PARAMETER_COLUMNS = tuple(parameter_values(SweepConfig()))
"""Every parameter column a sweep's table carries (the first is the sweep key)."""


def with_parameters(table: pd.DataFrame, config: SweepConfig) -> pd.DataFrame:
    """``table`` with a column for the sweep key and every scalar parameter of ``config``."""
    return table.assign(**parameter_values(config))


def sweep_columns(table: pd.DataFrame) -> list[str]:
    """The parameter columns of ``table`` that tell its sweeps apart (all of them present; the sweep key first)."""
    return [name for name in PARAMETER_COLUMNS if name in table.columns]
