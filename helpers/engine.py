"""Early-training runs: plain SGD at η = c/λ^H_0 over a grid of c, the loss recorded after every step and the
sharpness where a decision needs it.

One *unit* is one initialization: λ^H_0 is measured once at θ₀, then the grid of c is scanned upward until the
first divergent run. Runs of one unit share θ₀ and the SGD batch order; ``stack`` of them train together as one
stack of models (one Hessian-vector product serves the whole stack).

Two searches (``SweepConfig.search``):

- ``scan``: every run of the grid measures λ^H_t at every step (or at ``measure_at``).
- ``bisect``: the scan trains loss-only runs (no Hessian products), which fixes c_loss and c_max exactly as the
  full scan would (the training arithmetic is the same). L_t on the measurement set is computed only while c_loss
  is undecided: in the runs up to the first whose loss rises, that one until it rises; every later run measures it
  at its last step only (whether θ_T diverged), its divergence at earlier steps seen in the minibatch loss. Then
  c_sharp is bracketed on the same grid below the first divergence, starting at c_loss: runs inside the bracket are
  trained again measuring λ^H_t (not L_t, known already), each until its ratio λ^H_t/λ^H_0 has risen, and the
  bracket shrinks to the smallest rising c. It finds the full scan's c_sharp whenever "the sharpness rises" is
  monotone in c along the runs the bracket visits.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
import torch

from helpers import __version__
from helpers.build import build_model
from helpers.config import SweepConfig
from helpers.curvature import Eigen, HessianOperator, lanczos, power_iteration, stack_models
from helpers.data import Data, data_root, load_dataset
from helpers.device import generator, resolve_device
from helpers.losses import Loss, get_loss
from helpers.phases import rises
from helpers.slicing import loss_pieces, losses_and_gradient, slice_size, sliced_losses

GPU_STACK = 16


def load_sweep_data(config: SweepConfig, device: str | torch.device | None = None) -> Data:
    """The training (and measurement) subset of a sweep, on ``device`` (kept in memory for the next sweep)."""
    return _subset(config.dataset, config.n_train, config.data_seed, str(resolve_device(device)),
                   str(data_root()))


@functools.lru_cache(maxsize=4)
def _subset(dataset: str, size: int, seed: int, device: str, root: str) -> Data:
    return load_dataset(dataset, size=size, seed=seed, device=device, root=root)


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for ``steps`` SGD steps: consecutive batches of seeded permutations, one per epoch."""
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the training subset ({n} examples)")
    gen, batches = generator(seed), []
    while len(batches) < steps:
        perm = torch.randperm(n, generator=gen)
        batches += [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches[:steps]


def measure_sharpness(op: HessianOperator, config: SweepConfig, v0: torch.Tensor | None, seed: int,
                      settled=None) -> Eigen:
    """λ^H by Lanczos (warm-started from ``v0``; ``settled`` as in :func:`~helpers.curvature.lanczos`) or by the
    paper's 20-step power iteration."""
    if config.sharpness == "power":
        return power_iteration(op, n_iter=20, seed=seed)
    return lanczos(op, v0=v0, tol=config.lanczos_tol, seed=seed, settled=settled)


def _diverged(losses: torch.Tensor, threshold: float) -> torch.Tensor:
    return ~torch.isfinite(losses) | (losses > threshold)


@dataclass
class Unit:
    """One unit's results: a row per (c, step) in ``runs``; a row per (c, τ) in ``interpolation``."""

    runs: pd.DataFrame
    interpolation: pd.DataFrame


def interpolate(loss: Loss, forward, params0: list[torch.Tensor], params: list[torch.Tensor], data: Data,
                points: int, size: int | None = None) -> tuple[list[float], torch.Tensor]:
    """L_int(τ) = L((1 − τ)θ₀ + τθ_T) on the measurement set for τ on a uniform grid: τs and losses [M, points]
    (computed ``size`` examples at a time)."""
    taus = torch.linspace(0.0, 1.0, points).tolist()
    with torch.no_grad():
        values = [sliced_losses(loss, forward, [(1 - t) * p0 + t * p for p0, p in zip(params0, params)], data.x,
                                data.y, size) for t in taus]
    return taus, torch.stack(values, dim=1)


LOSS_TRACKING = ("all", "until_rise", "final", "none")


@dataclass
class Origin:
    """What every run of a unit shares at θ₀: L_0 on the measurement set, and the first step's minibatch loss and
    gradient (every run takes its first step from θ₀ on the same batch; only η differs)."""

    loss0: float
    batch_loss: torch.Tensor
    gradient: list[torch.Tensor]


def origin(model: torch.nn.Module, data: Data, batches: list[torch.Tensor], loss: Loss,
           slices: int | None) -> Origin:
    """The :class:`Origin` of ``model``'s θ₀ (computed once per unit, not once per run)."""
    params, forward = stack_models([model])
    loss0 = float(sliced_losses(loss, forward, params, data.x, data.y, slices)[0])
    batch_loss, gradient = losses_and_gradient(loss, forward, params, data.x[batches[0]], data.y[batches[0]], slices)
    return Origin(loss0, batch_loss, gradient)


def train_chunk(config: SweepConfig, model: torch.nn.Module, data: Data, c_values: list[float], seed: int,
                start: Eigen, batches: list[torch.Tensor], *, measure: bool = True, until_rise: bool = False,
                interpolation: bool = True, loss: Loss | None = None, track_loss: str = "all",
                slices: int | None = None, at_origin: Origin | None = None) -> tuple[list[dict], list[dict]]:
    """Train one stack of runs (at increasing c) from the same θ₀ at η_m = c_m/λ^H_0.

    ``measure=False`` trains loss-only runs (no Hessian products); ``until_rise`` trains only until every run's
    λ^H_t/λ^H_0 has risen (two-decimal rule, 1 + ``config.rise_epsilon``), and Lanczos stops as soon as its top Ritz
    value (a lower bound on λ^H_t) has risen: that step's sharpness is then a lower bound, marked unconverged.
    ``track_loss`` says where L_t is computed
    on the measurement set: ``all`` where the config asks; ``until_rise`` while some run has no run at smaller or
    equal c whose L_t/L_0 has risen (c_loss undecided), and at the last step; ``final`` at the last step only;
    ``none`` never. Divergence is read from the minibatch loss at every step and from L_t where it is computed.
    ``loss`` replaces the loss named by the config; ``slices`` is how many examples a loss or gradient computes at a
    time (:mod:`helpers.slicing`; None: all). ``at_origin`` gives L_0 and the first step's gradient (computed here
    when None). Returns one record per run and step, and (if asked for) one per
    non-divergent run and interpolation point τ.
    """
    if track_loss not in LOSS_TRACKING:
        raise ValueError(f"track_loss must be one of {LOSS_TRACKING}, got {track_loss!r}")
    loss = loss or get_loss(config.loss)
    m = len(c_values)
    params0, forward = stack_models([model] * m)
    sharpness0 = float(start.eigenvalue[0])
    lr = torch.tensor(c_values, device=params0[0].device) / sharpness0
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]
    sharp_loss = loss_pieces(loss, forward, xs, ys, slices)

    measured = set(range(config.steps + 1)) if config.measure_at is None else set(config.measure_at)
    if not measure:
        measured = set()
    params = [p.clone() for p in params0]
    at_origin = at_origin or origin(model, data, batches, loss, slices)
    loss0 = at_origin.loss0
    records = [dict(c=c, step=0, loss=loss0, batch_loss=math.nan, sharpness=sharpness0, diverged=False,
                    products=start.n_products, converged=bool(start.converged[0])) for c in c_values]
    alive = torch.ones(m, dtype=torch.bool, device=lr.device)
    risen = [False] * m
    loss_risen = [False] * m

    def loss_wanted(step: int) -> bool:
        if track_loss == "all":
            return config.loss_every_step or step in measured
        if track_loss == "none":
            return False
        if step == config.steps:
            return True
        return track_loss == "until_rise" and any(bool(alive[i]) and not any(loss_risen[: i + 1]) for i in range(m))
    def sharpness_risen(values: torch.Tensor) -> list[bool]:
        return [rises([float(v) / sharpness0], config.rise_epsilon) for v in values.float()]

    # until_rise asks only whether λ^H_t/λ^H_0 rose: a Ritz value (a lower bound) that has risen answers it
    settled = (lambda top: torch.tensor(sharpness_risen(top), device=top.device)) if until_rise else None
    v0 = start.eigenvector.expand(m, -1)
    for step in range(1, config.steps + 1):
        index = batches[step - 1]
        if step == 1:  # from θ₀ on the first batch: the same for every run
            batch_losses = at_origin.batch_loss.expand(m)
            grads = [g.expand(m, *g.shape[1:]) for g in at_origin.gradient]
        else:
            batch_losses, grads = losses_and_gradient(loss, forward, params, data.x[index], data.y[index], slices)
        dead = _diverged(batch_losses, config.diverge_loss)
        with torch.no_grad():
            params = [p - lr.view(-1, *[1] * (p.dim() - 1)) * g for p, g in zip(params, grads)]
            if loss_wanted(step):
                losses = sliced_losses(loss, forward, params, data.x, data.y, slices)
                dead = dead | _diverged(losses, config.diverge_loss)
            else:
                losses = torch.full_like(batch_losses, math.nan)
        dead = alive & dead
        was_alive, alive = alive, alive & ~dead
        loss_risen = [r or (a and rises([float(losses[i]) / loss0])) for i, (r, a) in
                      enumerate(zip(loss_risen, alive.tolist()))]
        params = [torch.where(alive.view(-1, *[1] * (p.dim() - 1)), p, p0) for p, p0 in zip(params, params0)]
        eig = None
        waiting = [bool(alive[i]) and not risen[i] for i in range(m)]
        if step in measured and (any(waiting) if until_rise else bool(alive.any())):
            eig = measure_sharpness(HessianOperator(sharp_loss, params, stacked=True), config, v0, seed + step,
                                    settled)
            v0 = eig.eigenvector
            risen = [r or (a and up) for r, a, up in zip(risen, alive.tolist(), sharpness_risen(eig.eigenvalue))]
        for i in range(m):
            if not was_alive[i]:
                continue
            ok = bool(alive[i]) and eig is not None
            records.append(dict(c=c_values[i], step=step, loss=float(losses[i]), batch_loss=float(batch_losses[i]),
                                sharpness=float(eig.eigenvalue[i]) if ok else math.nan, diverged=bool(dead[i]),
                                products=eig.n_products if eig is not None else 0,
                                converged=bool(eig.converged[i]) if ok else False))
        if not bool(alive.any()) or (until_rise and not any(bool(alive[i]) and not risen[i] for i in range(m))):
            break
    for r in records:
        r.update(seed=seed, lr=r["c"] / sharpness0, sharpness0=sharpness0, loss0=loss0)
    segment = []
    if interpolation and config.interpolation_points and bool(alive.any()):
        taus, values = interpolate(loss, forward, params0, params, data, config.interpolation_points, slices)
        segment = [dict(seed=seed, c=c_values[i], tau=tau, loss=float(values[i, j]))
                   for i in range(m) if alive[i] for j, tau in enumerate(taus)]
    return records, segment


def _rose(records: list[dict], name: str, epsilon: float = 0.0) -> bool:
    """Whether a run's ``name``_t/``name``_0 (1 ≤ t ≤ T, before any divergence) rose, by the two-decimal rule."""
    return rises([r[name] / r[f"{name}0"] for r in records if r["step"] >= 1 and not r["diverged"]], epsilon)


def sharpness_rose(records: list[dict], epsilon: float) -> bool:
    """Whether a run's λ^H_t/λ^H_0 rose (1 + ``epsilon``); see :func:`_rose`."""
    return _rose(records, "sharpness", epsilon)


def loss_rose(records: list[dict]) -> bool:
    """Whether a run's L_t/L_0 rose; see :func:`_rose`."""
    return _rose(records, "loss")


def with_sharpness(loss_only: list[dict], measured: list[dict]) -> list[dict]:
    """One run's loss-only records with the sharpness of its measured re-run filled in, step by step (NaN after the
    re-run stopped at its rise)."""
    by_step = {r["step"]: r for r in measured}
    missing = dict(sharpness=math.nan, products=0, converged=False)
    return [{**r, **({k: by_step[r["step"]][k] for k in missing} if r["step"] in by_step else missing)}
            for r in loss_only]


def bracket_sharpness(config: SweepConfig, records: list[dict], train, size: int) -> list[dict]:
    """Fill in the sharpness of the runs a bracket on c_sharp visits (the loss-only ``records`` of one unit).

    Among the runs below the first divergence, [lo, hi) brackets the smallest rising index (hi = their count when
    none rises: then c_sharp is filled like the full scan fills it). Each round trains up to ``size`` runs inside the
    bracket, measuring λ^H_t until it has risen, and shrinks the bracket to them. The first round starts where the
    study's ordering c_loss ≤ c_sharp puts c_sharp: the run at c_loss (the rest of the round spread above it). If its
    sharpness rose, the next rounds gallop down from it (the runs 1, 2, 4, … below the lowest rising one) until one
    does not rise; otherwise, and from then on, the picks are spread evenly inside the bracket. Like any bisection it
    finds the full scan's c_sharp whenever "the sharpness rises" is monotone in c along the runs it visits; it
    visits few runs where the sharpness falls over all T steps (the runs at small c: a visit's most expensive kind).
    """
    divergent = [r["c"] for r in records if r["diverged"]]
    below = sorted({r["c"] for r in records if not divergent or r["c"] < min(divergent)})
    runs = {c: [r for r in records if r["c"] == c] for c in below}
    measured: dict[float, list[dict]] = {}

    def visit(picks: list[int]) -> list[int]:
        new, _ = train([below[i] for i in picks], measure=True, until_rise=True, interpolation=False,
                       track_loss="none")
        for i in picks:
            measured[below[i]] = with_sharpness(runs[below[i]], [r for r in new if r["c"] == below[i]])
        return [i for i in picks if sharpness_rose(measured[below[i]], config.rise_epsilon)]

    def spread(a: int, b: int, count: int) -> set[int]:
        count = min(count, b - a - 1)
        return {a + round((k + 1) * (b - a) / (count + 1)) for k in range(count)}

    lo, hi = -1, len(below)
    first = next((i for i, c in enumerate(below) if loss_rose(runs[c])), None)  # c_loss: the first rising loss
    distance = 0  # > 0 while galloping down from a rising run
    while hi - lo > 1:
        if first is not None:
            picks, first = {first} | spread(first, hi, size - 1), None
        elif distance:
            picks = {max(lo + 1, hi - distance * 2**k) for k in range(size)}
        else:
            picks = spread(lo, hi, size)
        rose = visit(sorted(picks))
        hi = min(rose, default=hi)
        lo = max([i for i in picks if i < hi and i not in rose], default=lo)
        distance = (distance * 2**size if distance else 1) if len(rose) == len(picks) else 0
    return [r for r in records if r["c"] not in measured] + [r for rows in measured.values() for r in rows]


def start_key(config: SweepConfig, seed: int, device: torch.device) -> tuple:
    """What λ^H_0 of a unit depends on: the network and its seed, the data, the loss and the estimator (not the
    grid of c, T or the search: sweeps that differ only in those share θ₀ and its λ^H_0)."""
    return (config.model, config.dataset, str(data_root()), config.n_train, config.n_sharpness, config.data_seed,
            config.loss, config.sharpness, config.lanczos_tol, seed, str(device))


STARTS: dict[tuple, Eigen] = {}  # λ^H_0 of the last few units computed on the sweep data (see compute_unit)
STARTS_KEPT = 4


def run_unit(config: SweepConfig, seed: int, data: Data, device: str | torch.device | None = None,
             starts: dict[tuple, Eigen] | None = None) -> Unit:
    """One initialization of the config's model: see :func:`run_model`. ``starts`` (keyed by :func:`start_key`)
    holds λ^H_0 already measured at this θ₀ on this data, and receives the one measured here."""
    target = resolve_device(device)
    data = data.to(target)
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=seed, device=target,
                        reference_x=data.x[: config.n_sharpness])
    if starts is None:
        return run_model(config, model, data, seed, target)
    key = start_key(config, seed, target)
    if key not in starts:
        starts[key] = initial_sharpness(config, model, data, seed)
        while len(starts) > STARTS_KEPT:
            starts.pop(next(iter(starts)))
    return run_model(config, model, data, seed, target, start=starts[key])


def initial_sharpness(config: SweepConfig, model: torch.nn.Module, data: Data, seed: int,
                      loss: Loss | None = None) -> Eigen:
    """λ^H_0 of ``model`` on the config's sharpness subset of ``data`` (an error unless it is positive)."""
    params, forward = stack_models([model])
    xs, ys = data.x[: config.n_sharpness], data.y[: config.n_sharpness]
    pieces = loss_pieces(loss or get_loss(config.loss), forward, xs, ys, slice_size(model, xs[:1]))
    start = measure_sharpness(HessianOperator(pieces, params, stacked=True), config, None, seed)
    if not float(start.eigenvalue[0]) > 0:
        raise ValueError(f"the sharpness at initialization is {float(start.eigenvalue[0]):.3g} ≤ 0 (seed {seed}); "
                         "η = c/λ^H_0 is undefined")
    return start


def run_model(config: SweepConfig, model: torch.nn.Module, data: Data, seed: int,
              device: str | torch.device | None = None, loss: Loss | None = None,
              batches: list[torch.Tensor] | None = None, start: Eigen | None = None) -> Unit:
    """One initialization θ₀ (``model``'s parameters): measure λ^H_0 (unless ``start`` gives it), scan the c grid
    upward until the first divergent run, and (``bisect``) bracket c_sharp among the runs below it. ``loss``
    replaces the config's named loss; ``batches`` (one index tensor per step) replaces the seeded SGD order."""
    target = resolve_device(device)
    data = data.to(target)
    loss = loss or get_loss(config.loss)
    start = start or initial_sharpness(config, model, data, seed, loss)
    if batches is None:
        batches = batch_order(len(data), config.batch_size, config.steps, seed)
    batches = [b.to(target) for b in batches]
    size = config.stack or (1 if target.type == "cpu" else GPU_STACK)
    slices = slice_size(model, data.x[:1], size)  # one slicing for every run of the unit, however many train at once
    train = functools.partial(train_chunk, config, model, data, seed=seed, start=start, batches=batches, loss=loss,
                              slices=slices, at_origin=origin(model, data, batches, loss, slices))
    records: list[dict] = []
    segments: list[dict] = []
    decided = False  # bisect: c_loss found (a run's L_t/L_0 rose), so later runs need L_t only at their last step
    for first in range(0, len(config.c_values), size):
        chunk = list(config.c_values[first : first + size])
        if config.search == "scan":
            new, segment = train(chunk)
        else:
            new, segment = train(chunk, measure=False, track_loss="final" if decided else "until_rise")
            decided = decided or any(loss_rose([r for r in new if r["c"] == c]) for c in chunk)
        stop = min((r["c"] for r in new if r["diverged"]), default=None)
        records += [r for r in new if stop is None or r["c"] <= stop]
        segments += [r for r in segment if stop is None or r["c"] <= stop]
        if stop is not None:
            break
    if config.search == "bisect":
        records = bracket_sharpness(config, records, train, size)
    columns = ["seed", "c", "lr", "step", "loss", "loss0", "batch_loss", "sharpness", "sharpness0", "diverged",
               "products", "converged"]
    runs = pd.DataFrame.from_records(records, columns=columns).sort_values(["c", "step"], ignore_index=True)
    segment_table = pd.DataFrame.from_records(segments, columns=["seed", "c", "tau", "loss"])
    return Unit(runs, segment_table.sort_values(["c", "tau"], ignore_index=True))


def compute_unit(config: SweepConfig, seed: int, data: Data | None = None,
                 device: str | torch.device | None = None) -> Unit:
    """One unit's tables, the runs marked with the device and package version that produced them.

    Without ``data`` (the sweep's own subset is loaded), λ^H_0 is taken from :data:`STARTS` when a unit with the
    same :func:`start_key` was computed just before (e.g. the one-c sweeps of χ(c), which share θ₀): the same
    numbers, measured once."""
    target = resolve_device(device)
    if data is None:
        unit = run_unit(config, seed, load_sweep_data(config, target), target, starts=STARTS)
    else:
        unit = run_unit(config, seed, data, target)
    return Unit(unit.runs.assign(device=target.type, version=__version__), unit.interpolation)


def loss_rounding_error(config: SweepConfig, seed: int, device: str | torch.device | None = None) -> float:
    """|L₃₂(θ₀) − L₆₄(θ₀)| / L₆₄(θ₀): the relative float32 rounding error of the loss on the measurement set at the
    initialization of ``seed`` (the noise floor of differences of L, e.g. of an interpolated barrier)."""
    target = resolve_device(device)
    data = load_sweep_data(config, target)
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=seed, device=target,
                        reference_x=data.x[: config.n_sharpness])
    loss = get_loss(config.loss)
    with torch.no_grad():
        single = float(loss(model(data.x), data.y))
        double = float(loss(model.double()(data.x.double()), data.y.double()))
    return abs(single - double) / abs(double)
