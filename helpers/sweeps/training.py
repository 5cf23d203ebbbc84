"""One chunk of early-training runs from one initialization, trained together: the SGD step at η_m = c_m/λ^H_0, what
each step measures (a :class:`Policy`), and after the runs the loss along θ₀ → θ_end. :mod:`helpers.sweeps.engine`
walks the grid of c in such chunks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from helpers.curvature.operators import Eigen
from helpers.rules import diverged, rises
from helpers.sweeps.config import Training
from helpers.sweeps.problem import Initialization, Problem, measure_sharpness


MEASURES = {"sharpness": ("every step", "until risen", "never"),
            "loss": ("every step", "until c_loss", "last step", "never")}


@dataclass(frozen=True)
class Policy:
    """What a chunk of runs measures. ``sharpness``: λ^H_t at the config's steps (``every step``), in each run
    until its λ^H_t/λ^H_0 has risen (``until risen``), or ``never``. ``loss``: L_t on the measurement set where the
    config asks (``every step``), while c_loss is undecided and at the last step (``until c_loss``), at the last
    step only, or ``never`` (divergence is read from the minibatch loss at every step in any case).
    ``interpolation``: L along θ₀ → θ_end after the run, if the config asks for it."""

    sharpness: str = "every step"
    loss: str = "every step"
    interpolation: bool = True

    def __post_init__(self) -> None:
        for name, allowed in MEASURES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


@dataclass
class RunState:
    """A chunk of runs during training: their c, η, parameters, which are alive, whose loss and sharpness have
    risen, the Lanczos warm start, the records so far, and (where recorded) how far each has moved from θ₀."""

    c: list[float]
    lr: torch.Tensor
    params: list[torch.Tensor]
    alive: torch.Tensor
    loss_risen: list[bool]
    sharp_risen: list[bool]
    v0: torch.Tensor
    records: list[dict]
    moved: torch.Tensor | None = None

    @classmethod
    def start(cls, c_values: list[float], problem: Problem, init: Initialization) -> RunState:
        m, loss0, sharpness0 = len(c_values), init.origin.loss0, init.sharpness0
        records = [dict(c=c, step=0, loss=loss0, batch_loss=math.nan, sharpness=sharpness0, diverged=False,
                        products=init.start.n_products, converged=bool(init.start.converged[0]),
                        **({"movement": 0.0} if init.config.record_movement else {})) for c in c_values]
        lr = torch.tensor(c_values, device=problem.params0[0].device) / sharpness0
        return cls(list(c_values), lr, [p.clone() for p in problem.params0], torch.ones(m, dtype=torch.bool,
                   device=lr.device), [False] * m, [False] * m, init.start.eigenvector.expand(m, -1), records)

    def c_loss_undecided(self) -> bool:
        """Whether some live run has no run at smaller or equal c whose loss has risen."""
        return any(bool(self.alive[i]) and not any(self.loss_risen[: i + 1]) for i in range(len(self.c)))

    def waiting(self) -> list[bool]:
        """The live runs whose sharpness has not risen yet."""
        return [bool(a) and not r for a, r in zip(self.alive.tolist(), self.sharp_risen)]


def _where_alive(alive: torch.Tensor, params: list[torch.Tensor], fallback: list[torch.Tensor]) -> list:
    return [torch.where(alive.view(-1, *[1] * (p.dim() - 1)), p, q) for p, q in zip(params, fallback)]


def sgd_step(state: RunState, problem: Problem, init: Initialization, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """θ ← θ − η ∇L_batch for every run; return the minibatch losses at the old θ and which runs they diverge."""
    m = len(state.c)
    if step == 1:  # from θ₀ on the first batch: the same for every run
        batch_losses = init.origin.batch_loss.expand(m)
        grads = [g.expand(m, *g.shape[1:]) for g in init.origin.gradient]
    else:
        batch_losses, grads = problem.batch_gradient(state.params, init.batches[step - 1])
    with torch.no_grad():
        state.params = [p - state.lr.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(state.params, grads)]
    return batch_losses, diverged(batch_losses, init.config.diverge_loss)


def loss_wanted(policy: Policy, config: Training, state: RunState, step: int) -> bool:
    """Whether L_t is computed on the measurement set at ``step`` (see :class:`Policy`)."""
    if policy.loss == "every step":
        return config.loss_every_step or step in sharpness_steps(config)
    if policy.loss == "never":
        return False
    return step == config.steps or (policy.loss == "until c_loss" and state.c_loss_undecided())


def sharpness_steps(config: Training) -> set[int]:
    """The steps at which ``every step`` measures λ^H_t."""
    return set(range(config.steps + 1)) if config.measure_at is None else set(config.measure_at)


def sharpness_rose(values: torch.Tensor, sharpness0: float, epsilon: float) -> list[bool]:
    """Whether each λ^H_t/λ^H_0 rose (the two-decimal rule, 1 + ε)."""
    return [rises([float(v) / sharpness0], epsilon) for v in values.float()]


def measure_step(state: RunState, problem: Problem, init: Initialization, policy: Policy, step: int) -> Eigen | None:
    """λ^H_t of the stack where the policy asks for it at ``step`` (None where it does not)."""
    config, sharpness0 = init.config, init.sharpness0
    if policy.sharpness == "never" or not bool(state.alive.any()):
        return None
    if policy.sharpness == "every step" and step not in sharpness_steps(config):
        return None
    settled = None
    if policy.sharpness == "until risen":
        waiting = state.waiting()
        if not any(waiting):
            return None
        # only "has it risen?" is asked: a Ritz value (a lower bound on λ) that has risen answers it
        done = torch.tensor([not w for w in waiting], device=state.lr.device)
        settled = lambda top: done | torch.tensor(sharpness_rose(top, sharpness0, config.rise_epsilon),
                                                  device=top.device)
    eig = measure_sharpness(problem.hessian(state.params), config, state.v0, init.seed + step, settled)
    state.v0 = eig.eigenvector
    rose = sharpness_rose(eig.eigenvalue, sharpness0, config.rise_epsilon)
    state.sharp_risen = [r or (a and up) for r, a, up in zip(state.sharp_risen, state.alive.tolist(), rose)]
    return eig


def movement(params: list[torch.Tensor], params0: list[torch.Tensor]) -> torch.Tensor:
    """‖θ_t − θ₀‖/‖θ₀‖ of every run of a stack (parameters [M, ...])."""
    moved = sum(((p - q) ** 2).flatten(1).sum(1) for p, q in zip(params, params0))
    return torch.sqrt(moved / sum((q**2).flatten(1).sum(1) for q in params0))


def record_step(state: RunState, step: int, losses, batch_losses, dead, was_alive, eig: Eigen | None,
                measured: list[bool]) -> None:
    """Append one record per run that was alive before ``step`` (with its ``movement`` where ``state.moved`` holds
    it)."""
    for i, c in enumerate(state.c):
        if not was_alive[i]:
            continue
        ok = bool(state.alive[i]) and eig is not None and measured[i]
        state.records.append(dict(c=c, step=step, loss=float(losses[i]), batch_loss=float(batch_losses[i]),
                                  sharpness=float(eig.eigenvalue[i]) if ok else math.nan, diverged=bool(dead[i]),
                                  products=eig.n_products if eig is not None else 0,
                                  converged=bool(eig.converged[i]) if ok else False))
        if state.moved is not None:
            state.records[-1]["movement"] = float(state.moved[i]) if bool(state.alive[i]) else math.nan


def train_chunk(init: Initialization, c_values: list[float], policy: Policy = Policy()) -> tuple[list[dict],
                                                                                              list[dict]]:
    """Train one stack of runs (at increasing c) from θ₀ at η_m = c_m/λ^H_0 for T steps, measuring what ``policy``
    asks; return one record per run and step, and one per non-divergent run and interpolation point τ."""
    config = init.config
    problem = Problem.of(init.model, len(c_values), init.loss, init.data, config.n_sharpness, init.slices)
    state = RunState.start(c_values, problem, init)
    for step in range(1, config.steps + 1):
        batch_losses, dead = sgd_step(state, problem, init, step)
        if loss_wanted(policy, config, state, step):
            losses = problem.losses(state.params)
            if config.divergence == "minibatch or measurement":
                dead = dead | diverged(losses, config.diverge_loss)
        else:
            losses = torch.full_like(batch_losses, math.nan)
        dead = state.alive & dead
        was_alive, state.alive = state.alive.tolist(), state.alive & ~dead
        state.loss_risen = [r or (a and rises([float(v) / init.origin.loss0])) for r, a, v in
                            zip(state.loss_risen, state.alive.tolist(), losses)]
        state.params = _where_alive(state.alive, state.params, problem.params0)
        measured = state.waiting() if policy.sharpness == "until risen" else [True] * len(c_values)
        eig = measure_step(state, problem, init, policy, step)
        state.moved = movement(state.params, problem.params0) if config.record_movement else None
        record_step(state, step, losses, batch_losses, dead, was_alive, eig, measured)
        if not bool(state.alive.any()):
            break
    for r in state.records:
        r.update(seed=init.seed, lr=r["c"] / init.sharpness0, sharpness0=init.sharpness0, loss0=init.origin.loss0)
    segment = []
    if policy.interpolation and config.interpolation_points and bool(state.alive.any()):
        segment = interpolation_records(state, problem, init)
    return state.records, segment


def transient_endpoint(state: RunState, problem: Problem, init: Initialization) -> tuple[list, list[int]]:
    """θ_end and its step for each run: θ_T, or (``transient_cap``) θ_t at the first t ≥ T after which L_t stays
    below L(θ₀) up to the cap, training on past T to find it (θ_T where no such t exists)."""
    config, loss0 = init.config, init.origin.loss0
    theta_T = [p.clone() for p in state.params]
    if config.transient_cap is None:
        return theta_T, [config.steps] * len(state.c)
    below = state.alive & (problem.losses(state.params) < loss0)
    ends = [config.steps if b else None for b in below.tolist()]
    end = [p.clone() for p in theta_T]
    for step in range(config.steps + 1, config.transient_cap + 1):
        _, dead = sgd_step(state, problem, init, step)
        state.alive = state.alive & ~dead
        below = state.alive & (problem.losses(state.params) < loss0)
        ends = [None if not b else e if e is not None else step for b, e in zip(below.tolist(), ends)]
        end = _where_alive(torch.tensor([e == step for e in ends], device=below.device), state.params, end)
    reached = torch.tensor([e is not None for e in ends], device=below.device)
    return _where_alive(reached, end, theta_T), [config.steps if e is None else e for e in ends]


def interpolation_records(state: RunState, problem: Problem, init: Initialization) -> list[dict]:
    """L_int(τ) = L((1 − τ)θ₀ + τθ_end) on the measurement set for every live run, and θ_end's step."""
    alive = state.alive.tolist()
    end, end_steps = transient_endpoint(state, problem, init)
    taus = torch.linspace(0.0, 1.0, init.config.interpolation_points).tolist()
    with torch.no_grad():
        values = torch.stack([problem.losses([(1 - t) * p0 + t * p for p0, p in zip(problem.params0, end)])
                              for t in taus], dim=1)
    return [dict(seed=init.seed, c=c, tau=tau, loss=float(values[i, j]), end_step=end_steps[i])
            for i, c in enumerate(state.c) if alive[i] for j, tau in enumerate(taus)]
