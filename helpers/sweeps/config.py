"""What defines a sweep of early-training runs, validated before any work starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from helpers.nets.build import ModelSpec
from helpers.data.images import TRAIN_SIZES, canonical_name
from helpers.nets.losses import LOSSES
from helpers.rules import DIVERGE_LOSS

SHARPNESS_METHODS = ("lanczos", "power")
SEARCHES = ("first-rise", "scan", "loss")
LANCZOS_STARTS = ("warm", "mixed")
DIVERGENCE_RULES = ("minibatch", "minibatch or measurement")
"""How a run is found divergent: the study's rule, its minibatch loss above ``diverge_loss`` or not finite
(``minibatch``), or that or the measurement set's L_t above it (``minibatch or measurement``)."""
_TUPLES = ("c_values", "seeds", "measure_at")


def c_grid(x_max: float = 6.0, x_step: float = 0.1, x_min: float = 0.0) -> tuple[float, ...]:
    """The study's grid c = 2^x for x = x_min, x_min + x_step, …, x_max (rounded to 1e-6 to be exact in files)."""
    if x_step <= 0 or x_max < x_min:
        raise ValueError(f"need x_step > 0 and x_max ≥ x_min, got x_min={x_min}, x_max={x_max}, x_step={x_step}")
    count = int(math.floor((x_max - x_min) / x_step + 1e-9)) + 1
    return tuple(round(2.0 ** (x_min + i * x_step), 6) for i in range(count))


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Training:
    """How the runs from one initialization train and what they measure: the part of a sweep the engine reads
    (:func:`helpers.sweeps.engine.run_model`), without the network or the data, so that any model on any data
    (:func:`helpers.diagnosis.diagnose`) is walked with the same settings. The fields mean what
    :class:`SweepConfig`'s of the same names mean, and default to the same values."""

    loss: str = "mse"
    n_sharpness: int = 2048
    batch_size: int = 512
    steps: int = 10
    c_values: tuple[float, ...] = field(default_factory=c_grid)
    sharpness: str = "lanczos"
    search: str = "first-rise"
    rise_epsilon: float = 0.0
    lanczos_tol: float = 1e-3
    lanczos_start: str = "warm"
    measure_at: tuple[int, ...] | None = None
    diverge_loss: float = DIVERGE_LOSS
    divergence: str = "minibatch"
    interpolation_points: int = 0
    transient_cap: int | None = None
    loss_every_step: bool = True
    record_movement: bool = False
    stack: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "c_values", tuple(float(c) for c in self.c_values))
        if self.measure_at is not None:
            object.__setattr__(self, "measure_at", tuple(sorted(set(int(t) for t in self.measure_at))))
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSSES)}")
        for name in ("n_sharpness", "batch_size", "steps"):
            _positive_int(name, getattr(self, name))
        if not self.c_values:
            raise ValueError("c_values is empty: give at least one learning-rate constant c")
        if any(not (c > 0 and math.isfinite(c)) for c in self.c_values):
            raise ValueError(f"every c must be positive and finite, got {self.c_values}")
        if any(b <= a for a, b in zip(self.c_values, self.c_values[1:])):
            raise ValueError(f"c_values must be strictly increasing, got {self.c_values}")
        if self.sharpness not in SHARPNESS_METHODS:
            raise ValueError(f"sharpness must be one of {SHARPNESS_METHODS}, got {self.sharpness!r}")
        if self.lanczos_start not in LANCZOS_STARTS:
            raise ValueError(f"lanczos_start must be one of {LANCZOS_STARTS}, got {self.lanczos_start!r}")
        if self.divergence not in DIVERGENCE_RULES:
            raise ValueError(f"divergence must be one of {DIVERGENCE_RULES}, got {self.divergence!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {self.search!r}")
        if self.measure_at is not None and self.search != "scan":
            raise ValueError("measure_at asks for the sharpness at given steps of every run: use search='scan'")
        if not (self.rise_epsilon >= 0 and math.isfinite(self.rise_epsilon)):
            raise ValueError(f"rise_epsilon must be a finite number ≥ 0, got {self.rise_epsilon!r}")
        if self.measure_at is not None and any(t < 0 or t > self.steps for t in self.measure_at):
            raise ValueError(f"measure_at steps must lie in [0, steps={self.steps}], got {self.measure_at}")
        if self.interpolation_points == 1 or self.interpolation_points < 0:
            raise ValueError(f"interpolation_points must be 0 (off) or at least 2, got {self.interpolation_points}")
        if self.transient_cap is not None and not (isinstance(self.transient_cap, int) and
                                                   self.transient_cap > self.steps):
            raise ValueError(f"transient_cap must be a step after steps={self.steps} (or None), got "
                             f"{self.transient_cap!r}")
        if self.stack is not None:
            _positive_int("stack", self.stack)


TRAINING_FIELDS = tuple(f.name for f in fields(Training))


@dataclass(frozen=True)
class SweepConfig:
    """One sweep: a network, data, loss, SGD settings, the grid of c (η = c/λ^H_0) and the initialization seeds.

    ``n_train`` examples (a seeded subset) are the training set and the measurement set of L_t; the first
    ``n_sharpness`` of them are the fixed subset on which λ^H_t is measured. ``batch_size == n_train`` is full-batch
    gradient descent (every step on the whole subset, in its stored order). ``interpolation_points`` > 0 also
    measures, after each run, the loss L((1 − τ)θ₀ + τθ_end) at that many τ ∈ [0, 1] (the study uses 101), with
    θ_end = θ_T, or with ``transient_cap`` set the parameters at the end of the run's early transient: the first
    step t ≥ T after which L_t stays below L(θ₀) up to step ``transient_cap`` (θ_T when it never does).
    ``loss_every_step=False`` measures L_t only where the sharpness is measured (long runs; the minibatch loss
    still detects divergence at every step). ``search`` is how the grid is searched (see :mod:`helpers.sweeps.engine`):
    ``first-rise`` measures λ^H in every run up to the first whose sharpness rose and ``scan`` in every run (both
    give the study's constants), ``loss`` in none (c_loss and c_max only); ``measure_at`` lists the steps at which
    ``scan`` measures it (None: every step).
    ``lanczos_start`` is how Lanczos starts at t ≥ 1: ``warm``, from the last step's top eigenvector (the shipped
    store's estimator), or ``mixed``, from that vector plus a seeded random one of equal weight, which keeps the top
    eigenpair in reach where two eigenvalues cross between steps (:func:`~helpers.curvature.operators.lanczos`).
    ``record_movement`` adds the relative distance the weights have moved, ‖θ_t − θ₀‖/‖θ₀‖, at every step of every run
    (the ``movement`` column: how lazy a run is).
    A unit's seed draws both its initialization and its batch order; ``init_seed`` (``batch_seed``) fixes the one for
    every unit of the sweep, so that the seeds vary only the other (the two sources of spread apart, App. A).
    ``divergence`` is the rule a run diverges by (:data:`DIVERGENCE_RULES`): the study's, on the minibatch loss, or
    that or the measurement set's loss above ``diverge_loss`` (the rule of the units stored before 0.7).
    ``rise_epsilon`` is ε in the rule "λ^H_t/λ^H_0, rounded to two decimals, exceeds 1 + ε" (the study's 0.05 for
    zero-output networks). ``stack`` is how many runs train together as one stack of models (None: one on CPU, up
    to 16 on a GPU).
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    dataset: str = "fashion-mnist"
    loss: str = "mse"
    n_train: int = 5120
    n_sharpness: int = 2048
    batch_size: int = 512
    steps: int = 10
    c_values: tuple[float, ...] = field(default_factory=c_grid)
    seeds: tuple[int, ...] = (0,)
    data_seed: int = 0
    init_seed: int | None = None
    batch_seed: int | None = None
    sharpness: str = "lanczos"
    search: str = "first-rise"
    rise_epsilon: float = 0.0
    lanczos_tol: float = 1e-3
    lanczos_start: str = "warm"
    measure_at: tuple[int, ...] | None = None
    diverge_loss: float = DIVERGE_LOSS
    divergence: str = "minibatch"
    interpolation_points: int = 0
    transient_cap: int | None = None
    loss_every_step: bool = True
    record_movement: bool = False
    stack: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", canonical_name(self.dataset))
        object.__setattr__(self, "c_values", tuple(float(c) for c in self.c_values))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if self.measure_at is not None:
            object.__setattr__(self, "measure_at", tuple(sorted(set(int(t) for t in self.measure_at))))
        _positive_int("n_train", self.n_train)
        for name in ("init_seed", "batch_seed"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"{name} must be an integer or None, got {value!r}")
        if not self.seeds or any(not isinstance(s, int) or isinstance(s, bool) for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty list of integers, got {self.seeds}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if self.n_train > TRAIN_SIZES[self.dataset]:
            raise ValueError(f"n_train={self.n_train} is larger than the {self.dataset} training set "
                             f"({TRAIN_SIZES[self.dataset]} examples)")
        self.training  # noqa: B018 -- validates the run settings
        if self.n_sharpness > self.n_train:
            raise ValueError(f"the sharpness subset (n_sharpness={self.n_sharpness}) is larger than the training "
                             f"subset it is drawn from (n_train={self.n_train})")

    @property
    def training(self) -> Training:
        """The run settings of this sweep, as the engine reads them."""
        return Training(**{name: getattr(self, name) for name in TRAINING_FIELDS})

    @property
    def full_batch(self) -> bool:
        """Whether every step uses the whole training subset (gradient descent rather than SGD)."""
        return self.batch_size == self.n_train

    def with_model(self, **changes: Any) -> SweepConfig:
        """The same sweep for a model with some fields changed (e.g. ``width=256``)."""
        return replace(self, model=replace(self.model, **changes))

    def updated(self, **changes: Any) -> SweepConfig:
        """The same sweep with some fields changed; model fields (``width``, ``arch``, …) go to the model.

        Values are normalized and validated as in :meth:`from_dict` (lists become tuples; unknown names are an error).
        """
        model_fields = {f.name for f in fields(ModelSpec)}
        own_fields = {f.name for f in fields(self)} - {"model"}
        unknown = set(changes) - model_fields - own_fields
        if unknown:
            raise ValueError(f"unknown sweep parameters {sorted(unknown)}")
        model = {k: v for k, v in changes.items() if k in model_fields}
        rest = {k: tuple(v) if k in _TUPLES and v is not None else v
                for k, v in changes.items() if k not in model_fields}
        return replace(self, model=replace(self.model, **model), **rest)

    def key_dict(self) -> dict:
        """Everything that determines a run's numbers: not the seeds, which index units, nor ``stack``, which changes
        them only at float32 rounding level (:data:`~helpers.sweeps.schema.NOT_KEYED`). ``lanczos_start`` enters only
        when it is not ``warm``, the estimator every unit stored before it existed was computed with; ``divergence``
        only when it is not the study's ``minibatch``: a unit stored before the rule existed has the same numbers
        unless one of its runs diverged by its measurement loss alone, which the store recognises and computes again
        (:func:`~helpers.sweeps.store.earlier_divergence_rule`)."""
        out = asdict(self)
        out.pop("seeds")
        out.pop("stack")
        if out["lanczos_start"] == "warm":
            out.pop("lanczos_start")
        if out["divergence"] == "minibatch":
            out.pop("divergence")
        for name in ("init_seed", "batch_seed"):  # None: the unit's seed, as for every unit stored before they existed
            if out[name] is None:
                out.pop(name)
        if not out["record_movement"]:
            out.pop("record_movement")
        return out

    @classmethod
    def from_dict(cls, values: dict) -> SweepConfig:
        """Build from plain values (a preset or papermill parameters); unknown keys are an error."""
        return cls().updated(**values)
