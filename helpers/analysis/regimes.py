"""The four regimes of the sharpness over a whole run (the study's Fig. 1), read off one measured trajectory λ^H_t:
the early transient, an intermediate saturation, progressive sharpening and the edge of stability, where λ^H_t hovers
near 2/η (for MSE under gradient descent).

Where each regime begins is read from the numbers with stated thresholds (:class:`Regimes`), not at fixed steps:

- the early transient runs from step 0 until the intermediate saturation begins, at the first step where λ^H_t is
  within ``rise`` (10 %) of m, the smallest λ^H_t of the first third of the run (step 0 when it never falls);
- progressive sharpening begins at the first step after that minimum with λ^H_t above (1 + ``rise``)·m;
- the edge of stability begins at the first step after the transient with λ^H_t ≥ ``edge`` (0.9) · 2/η (a run that
  starts above the edge and catapults below it is not at the edge before it falls).

A regime the run never reaches begins at None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RISE = 0.1
EDGE = 0.9


@dataclass(frozen=True)
class Regimes:
    """The step at which each regime begins (None: not reached) and the thresholds that decided it."""

    transient: int
    saturation: int
    sharpening: int | None
    edge_of_stability: int | None
    rise: float = RISE
    edge: float = EDGE

    def as_dict(self) -> dict:
        """Plain values for gluing: each regime's first step."""
        return {"early transient": self.transient, "intermediate saturation": self.saturation,
                "progressive sharpening": self.sharpening, "edge of stability": self.edge_of_stability}


def sharpness_regimes(steps, sharpness, lr: float, rise: float = RISE, edge: float = EDGE) -> Regimes:
    """Where each regime begins on the trajectory (``steps``, ``sharpness``: λ^H_t at the measured steps, NaN ones
    dropped) of a run at learning rate ``lr``."""
    steps, sharpness = _measured(steps, sharpness)
    first_third = steps <= steps[0] + (steps[-1] - steps[0]) / 3
    low = int(np.argmin(np.where(first_third, sharpness, np.inf)))
    index = np.arange(len(steps))
    saturation = int(np.argmax(sharpness <= (1 + rise) * sharpness[low]))
    sharpening = _first(steps, (index > low) & (sharpness > (1 + rise) * sharpness[low]))
    at_edge = _first(steps, (index > saturation) & (sharpness >= edge * 2 / lr))
    return Regimes(int(steps[0]), int(steps[saturation]), sharpening, at_edge, rise, edge)


def edge_ratio(steps, sharpness, lr: float, window: float = 0.25) -> dict:
    """λ^H_t/(2/η) over the last ``window`` of the run's steps: its mean, smallest and largest, and how many
    measurements it holds."""
    steps, sharpness = _measured(steps, sharpness)
    late = steps >= steps[-1] - window * (steps[-1] - steps[0])
    ratio = sharpness[late] * lr / 2
    return {"mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max()),
            "from_step": int(steps[late][0]), "n": int(late.sum())}


def _measured(steps, sharpness) -> tuple[np.ndarray, np.ndarray]:
    steps, sharpness = np.asarray(steps, dtype=float), np.asarray(sharpness, dtype=float)
    keep = np.isfinite(sharpness)
    steps, sharpness = steps[keep], sharpness[keep]
    if len(steps) < 2:
        raise ValueError(f"a trajectory needs at least two measured steps, got {len(steps)}")
    order = np.argsort(steps, kind="stable")
    return steps[order], sharpness[order]


def _first(steps: np.ndarray, mask: np.ndarray) -> int | None:
    return int(steps[np.argmax(mask)]) if mask.any() else None
