"""Does the diagnosis's suggestion train well? The evidence of ``07_choosing_a_learning_rate``, computed once and
shipped (``store/calibration-<key>/``, keyed by the :class:`Protocol`).

For each architecture of :mod:`helpers.diagnosis.zoo`, optimizer (plain SGD, Adam) and seed, one *row*:

1. the quick diagnosis (:func:`helpers.diagnosis.diagnose.diagnose`, ``quick=True``) on the first ``n_diagnose``
   training examples: the edge sharpness, c_loss and c_max and their learning rates, and its built-in suggestion;
2. the range test (``torch-lr-finder``) with the same optimizer;
3. a grid of real training runs, ``steps`` minibatches each, held-out loss at the end: a factor-4 ladder, extended
   while its best or its top is at an end, then the factor-2 neighbours of the best (mean over seeds), and per seed
   the midpoint between its largest stable and first divergent learning rate;
4. training at each suggestion (the range test's, the built-in rule's, and the fitted rule's once it is fit).

A suggestion rule η = κ·anchor (anchor: lr_loss, lr_max or their geometric middle; κ and the anchor chosen per
optimizer on the :data:`~helpers.diagnosis.zoo.FIT` architectures only) is scored on the held-out ones. Run as
``python -m helpers.diagnosis.calibration`` in one or more processes (each takes the jobs no other has claimed;
resumable: jobs already stored under the same protocol are kept), then
``python -m helpers.diagnosis.calibration --fitted sgd`` and ``--fitted adam``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.sweeps.config import c_grid
from helpers.data.images import load_dataset
from helpers.diagnosis.diagnose import Diagnosis, diagnose
from helpers.rules import not_recovered
from helpers.diagnosis.tasks import adam, label_loss, next_token_loss, plain_sgd, range_test, train_run
from helpers.core.paths import REPOSITORY, configured_folder
from helpers.data.text import char_sequences, load_corpus
from helpers.diagnosis.zoo import FIT, IMAGE_MODELS, TEXT_MODELS, ZOO

FOLDER_ENV_VAR = "EARLY_DYNAMICS_CALIBRATION"


OPTIMIZERS: dict[str, Callable] = {"sgd": plain_sgd, "adam": adam}


@dataclass(frozen=True)
class Protocol:
    """What every row shares: data sizes, batch, budget, the diagnosis's grid of c = 2^x, the range test's span,
    and the first ladder of learning rates 2^k per optimizer."""

    n_train: int = 4096
    n_test: int = 2048
    text_length: int = 16
    batch_size: int = 128
    steps: int = 500
    n_diagnose: int = 512
    diagnose_steps: int = 10
    c_x: tuple[float, float, float] = (-2.0, 12.0, 0.25)
    range_span: tuple[tuple[str, float, float], ...] = (("sgd", 1e-4, 10.0), ("adam", 1e-6, 1.0))
    range_iters: int = 100
    ladder: tuple[tuple[str, int, int], ...] = (("sgd", -9, 3), ("adam", -14, -2))

    def span(self, optimizer: str) -> tuple[float, float]:
        return next((lo, hi) for name, lo, hi in self.range_span if name == optimizer)

    def first_ladder(self, optimizer: str) -> list[float]:
        low, high = next((lo, hi) for name, lo, hi in self.ladder if name == optimizer)
        return [2.0 ** k for k in range(low, high + 1, 2)]


@dataclass
class Task:
    """One architecture's training and held-out data, builder and loss."""

    build: Callable
    x: torch.Tensor
    y: torch.Tensor
    test: tuple[torch.Tensor, torch.Tensor]
    loss: Callable


def protocol_key(p: Protocol | dict) -> str:
    """A hash of every field of the protocol (as :func:`helpers.sweeps.schema.sweep_key` keys a sweep)."""
    values = asdict(p) if isinstance(p, Protocol) else p
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def calibration_folder(p: Protocol = Protocol(), root: str | os.PathLike | None = None) -> Path:
    """The folder of the jobs made under protocol ``p``: ``calibration-<key>`` in ``root``, else in
    ``$EARLY_DYNAMICS_CALIBRATION``, else in the repository's ``store/`` (where the default protocol's ship)."""
    return configured_folder(root, FOLDER_ENV_VAR, "store") / f"calibration-{protocol_key(p)}"


SHIPPED = REPOSITORY / "store" / f"calibration-{protocol_key(Protocol())}"
"""The shipped jobs of the default protocol."""


def task(model: str, p: Protocol) -> Task:
    """Fashion-MNIST for the image models, the fortunes text for the sequence models."""
    if model in IMAGE_MODELS:
        train = load_dataset("fashion-mnist", size=p.n_train, seed=0)
        test = load_dataset("fashion-mnist", train=False, size=p.n_test, seed=0)
        return Task(IMAGE_MODELS[model], train.x, train.labels, (test.x, test.labels), label_loss)
    corpus = load_corpus()
    train = char_sequences(corpus, p.text_length, p.n_train, seed=0)
    test = char_sequences(corpus, p.text_length, p.n_test // 2, seed=1, held_out=True, vocab=train.vocab)
    builder = TEXT_MODELS[model]
    return Task(lambda: builder(len(train.vocab), p.text_length), train.x, train.y, (test.x, test.y),
                next_token_loss)


def trained(t: Task, p: Protocol, optimizer: str, lr: float, seed: int) -> dict:
    """One training run's outcome: lr, held-out loss and accuracy (NaN when diverged), diverged (the study's rule: a
    minibatch loss not finite or above 1e5, :func:`helpers.rules.diverged`), the training loss before and after,
    seconds."""
    r = train_run(t.build, t.x, t.y, t.loss, lr, steps=p.steps, batch_size=p.batch_size, seed=seed, test=t.test,
                  optimizer=OPTIMIZERS[optimizer])
    return dict(lr=lr, loss=r["final_test_loss"], accuracy=r["test_accuracy"], diverged=bool(r["diverged"]),
                train_loss0=r["initial_train_loss"], train_loss=r["final_train_loss"], seconds=round(r["cost_s"], 2))


def observed_boundaries(report: Diagnosis) -> pd.DataFrame:
    """``report.boundaries()`` with lr_max NaN where the grid found no divergence (a bound, not a boundary)."""
    bounds = report.boundaries()
    bounds.loc[report.censored, "lr_max"] = math.nan
    return bounds


def diagnosed(t: Task, p: Protocol, optimizer: str, seed: int) -> dict:
    """The quick diagnosis of one seed: edges, constants, their learning rates, the built-in suggestion, seconds."""
    start = time.perf_counter()
    report = diagnose(t.build, t.x[: p.n_diagnose], t.y[: p.n_diagnose], t.loss, batch_size=p.batch_size,
                      steps=p.diagnose_steps, seeds=(seed,), c_values=c_grid(p.c_x[1], p.c_x[2], p.c_x[0]),
                      quick=True, optimizer=None if optimizer == "sgd" else OPTIMIZERS[optimizer], progress=False)
    row, bounds = report.per_seed.iloc[0], observed_boundaries(report).iloc[0]
    return dict(edge=report.edge, sharpness=float(row.sharpness0), lambda_H0=float(row.lambda_H0),
                critical=float(row.critical), preconditioned=float(row.preconditioned), c_loss=float(row.c_loss),
                c_max=float(row.c_max), censored=bool(row.censored), c_loss_filled=bool(row.c_loss_filled),
                lr_loss=float(bounds.lr_loss), lr_max=float(bounds.lr_max),
                eta_default=report.suggested_lr(), diagnose_s=round(time.perf_counter() - start, 2))


def ranged(t: Task, p: Protocol, optimizer: str, seed: int) -> dict:
    """The range test's suggestion and seconds."""
    low, high = p.span(optimizer)
    r = range_test(t.build, t.x, t.y, t.loss, batch_size=p.batch_size, seed=seed, start_lr=low, end_lr=high,
                   num_iter=p.range_iters, optimizer=OPTIMIZERS[optimizer])
    return dict(eta_range_test=r["lr"], range_test_s=round(r["cost_s"], 2))


def mean_losses(runs: list[dict]) -> pd.Series:
    """Held-out loss per learning rate, averaged over seeds (infinite where any seed diverged)."""
    table = pd.DataFrame(runs)
    table["score"] = np.where(table.diverged | table.loss.isna(), np.inf, table.loss)
    return table.groupby("lr").score.mean()


def extend(ladder: list[float], runs: list[dict], first: list[float], steps: int = 3) -> list[float]:
    """Learning rates to add to a factor-4 ladder: below it when its best is the lowest, else above it while some
    seed is stable (not :func:`unstable`) at its top; at most ``steps`` factors of 4 beyond the ``first`` ladder."""
    means = mean_losses(runs)
    if means.idxmin() == min(ladder) and min(ladder) > min(first) / 4.0 ** steps:
        return [min(ladder) / 4]
    top = [r for r in runs if r["lr"] == max(ladder)]
    if any(not unstable(r) for r in top) and max(ladder) < max(first) * 4.0 ** steps:
        return [max(ladder) * 4]
    return []


def refinements(runs: list[dict], seeds: tuple[int, ...]) -> list[tuple[float, int]]:
    """(lr, seed) runs that refine the grid: the factor-2 neighbours of the best mean learning rate for every seed,
    and for each seed the geometric midpoint of its largest stable and first unstable learning rate."""
    done = {(r["lr"], r["seed"]) for r in runs}
    best = mean_losses(runs).idxmin()
    wanted = [(lr, s) for lr in (best / 2, best * 2) for s in seeds]
    for s in seeds:
        mine = sorted((r for r in runs if r["seed"] == s), key=lambda r: r["lr"])
        bad = [r["lr"] for r in mine if unstable(r)]
        if bad:
            stable = [r["lr"] for r in mine if r["lr"] < bad[0] and not unstable(r)]
            if stable and bad[0] / stable[-1] > 2.5:
                wanted.append((math.sqrt(bad[0] * stable[-1]), s))
    return [w for w in dict.fromkeys(wanted) if w not in done]


def grid_runs(t: Task, p: Protocol, optimizer: str, seeds: tuple[int, ...]) -> list[dict]:
    """The grid of training runs (module docstring, step 3). Above two unstable learning rates in a row a seed's
    ladder is not run further (recorded ``skipped``, with ``diverged`` set so that it counts as unusable; never as a
    loss, never as the first unstable learning rate)."""
    runs: list[dict] = []

    def run(lr: float, seed: int) -> None:
        mine = sorted((r for r in runs if r["seed"] == seed and r["lr"] < lr), key=lambda r: r["lr"])
        if len(mine) >= 2 and all(unstable(r) for r in mine[-2:]):
            runs.append(dict(lr=lr, seed=seed, loss=math.nan, accuracy=math.nan, diverged=True, skipped=True,
                             train_loss0=math.nan, train_loss=math.nan, seconds=0.0))
        else:
            runs.append(dict(trained(t, p, optimizer, lr, seed), seed=seed, skipped=False))

    first = p.first_ladder(optimizer)
    ladder = list(first)
    for lr in ladder:
        for seed in seeds:
            run(lr, seed)
    while extra := extend(ladder, runs, first):
        ladder += extra
        for lr in sorted(extra):
            for seed in seeds:
                run(lr, seed)
    for lr, seed in sorted(refinements(runs, seeds)):
        run(lr, seed)
    return runs


def calibrate(model: str, optimizer: str, p: Protocol = Protocol(), seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """One architecture × optimizer: a row per seed (diagnosis, range test, training at both suggestions) and the
    grid of runs."""
    start = time.perf_counter()
    t = task(model, p)
    rows = []
    for seed in seeds:
        row = dict(model=model, optimizer=optimizer, seed=seed, held_out=model not in FIT,
                   **diagnosed(t, p, optimizer, seed), **ranged(t, p, optimizer, seed))
        for name in ("default", "range_test"):
            outcome = trained(t, p, optimizer, row[f"eta_{name}"], seed)
            row[f"loss_{name}"] = outcome["loss"]
        rows.append(row)
    runs = grid_runs(t, p, optimizer, seeds)
    return dict(model=model, optimizer=optimizer, protocol=asdict(p), rows=rows, runs=runs,
                seconds=round(time.perf_counter() - start, 1), threads=torch.get_num_threads(),
                torch=torch.__version__)


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


def unstable(runs: pd.DataFrame | dict) -> pd.Series | bool:
    """Whether runs were unstable over the budget, by the diagnosis's rule: diverged (:func:`helpers.rules.diverged`)
    or a training loss not recovered (:func:`helpers.rules.not_recovered`) after the last step. A table gives a
    boolean series, one run (a dict) a bool."""
    return runs["diverged"] | not_recovered(runs["train_loss"], runs["train_loss0"])


def grid_outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per architecture × optimizer × seed: the grid's best learning rate and its held-out loss, the largest
    learning rate stable over the whole budget below the first unstable one (:func:`unstable`; ``eta_max_observed``;
    whether the grid reached an unstable run: ``max_censored``), and the seed spread of the held-out loss at the best
    mean learning rate."""
    out = []
    for (model, optimizer), group in runs.groupby(["model", "optimizer"], sort=False):
        means = mean_losses(group.to_dict("records"))
        at_best = group[(group.lr == means.idxmin()) & ~group.diverged].loss
        spread = float(at_best.max() - at_best.min()) if len(at_best) > 1 else math.nan
        for seed, mine in group.groupby("seed"):
            mine = mine.sort_values("lr")
            usable = mine[~mine.diverged & mine.loss.notna()]
            divergent = mine[unstable(mine)]
            first = divergent.lr.min() if len(divergent) else math.inf
            stable = usable[usable.lr < first]
            best = usable.loc[usable.loss.idxmin()] if len(usable) else None
            out.append(dict(model=model, optimizer=optimizer, seed=seed, spread=spread,
                            eta_best=float(best.lr) if best is not None else math.nan,
                            loss_best=float(best.loss) if best is not None else math.nan,
                            eta_max_observed=float(stable.lr.max()) if len(stable) else math.nan,
                            max_censored=not len(divergent)))
    return pd.DataFrame(out)


ANCHORS = ("lr_loss", "lr_mid", "lr_max")


def with_anchors(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``lr_mid`` = √(lr_loss·lr_max) (NaN where no divergence bounded lr_max)."""
    return rows.assign(lr_mid=np.sqrt(rows.lr_loss * rows.lr_max))


def rows_with_outcomes(rows: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The stored rows with their anchors and their grid's outcomes (:func:`grid_outcomes`)."""
    return with_anchors(rows).merge(grid_outcomes(runs), on=["model", "optimizer", "seed"])


def fit_rule(table: pd.DataFrame) -> dict[str, dict]:
    """Per optimizer, from the rows of the fit architectures: κ for every anchor (the median of eta_best/anchor in
    log) and the anchor whose rule η = κ·anchor misses eta_best by the smallest median factor."""
    rule = {}
    for optimizer, group in table[~table.held_out].groupby("optimizer"):
        kappa, error = {}, {}
        for anchor in ANCHORS:
            usable = group[group[anchor].notna() & group.eta_best.notna()]
            if not len(usable):
                continue
            logs = np.log(usable.eta_best / usable[anchor])
            kappa[anchor] = float(np.exp(np.median(logs)))
            # an anchor that exists for fewer rows pays for the rows that fall back to lr_loss
            error[anchor] = float(np.median(np.abs(logs - np.log(kappa[anchor])))) + (len(group) - len(usable))
        anchor = min(error, key=error.get)
        rule[optimizer] = dict(anchor=anchor, kappa=kappa, median_factor=float(np.exp(error[anchor])),
                               fit_rows=int(len(group)))
    return rule


def suggest(table: pd.DataFrame, rule: dict[str, dict]) -> pd.Series:
    """The fitted rule's learning rate per row: κ·anchor, or κ·lr_loss where the anchor is undefined (no
    divergence on the diagnosis's grid)."""
    def one(row) -> float:
        r = rule[row.optimizer]
        anchor = r["anchor"] if np.isfinite(row[r["anchor"]]) else "lr_loss"
        return r["kappa"][anchor] * row[anchor]
    return table.apply(one, axis=1)


def fitted_runs(optimizer: str, folder: Path = SHIPPED, p: Protocol = Protocol()) -> dict:
    """Fit the rule on the stored rows and train at its suggestion for every row of ``optimizer`` (module
    docstring, step 4)."""
    rows, runs, _ = load(folder)
    table = rows_with_outcomes(rows, runs)
    table = table[table.optimizer == optimizer]
    rule = {optimizer: fit_rule(table)[optimizer]}
    table["eta_fitted"] = suggest(table, rule)
    tasks: dict[str, Task] = {}
    out = []
    for row in table.itertuples():
        t = tasks.setdefault(row.model, task(row.model, p))
        out.append(dict(trained(t, p, row.optimizer, float(row.eta_fitted), row.seed), model=row.model,
                        optimizer=row.optimizer, seed=row.seed))
    return dict(rule=rule, runs=out)


def calibration_table(folder: Path = SHIPPED) -> tuple[pd.DataFrame, dict]:
    """One row per architecture × optimizer × seed: the fitted rule's suggestion (``eta_diagnose``), the range
    test's, the grid's best, the held-out losses at each, predicted and observed largest stable learning rates,
    whether the architecture was held out; with the built-in suggestion and the spread beside. And the rule."""
    rows, runs, fitted = load(folder)
    table = rows_with_outcomes(rows, runs)
    rule = fit_rule(table)
    if fitted and fitted["rule"] != json.loads(json.dumps({k: rule[k] for k in fitted["rule"]})):
        raise ValueError("the stored fitted runs were made with another rule than the stored rows give: run "
                         "`python -m helpers.diagnosis.calibration --fitted OPTIMIZER` again")
    table["eta_diagnose"] = suggest(table, rule)
    at = pd.DataFrame(fitted.get("runs", []), columns=["model", "optimizer", "seed", "lr", "loss"])
    table = table.merge(at.rename(columns={"lr": "eta_fitted_run", "loss": "loss_diagnose"}),
                        on=["model", "optimizer", "seed"], how="left")
    table["eta_max_predicted"] = table.lr_max
    return table, rule


def hits(table: pd.DataFrame, method: str) -> pd.Series:
    """Whether the suggestion of ``method`` (diagnose, range_test, default) lands within a factor 2 of the grid's
    best learning rate or within the seed spread of its held-out loss; a suggestion that diverged never does."""
    eta, loss = table[f"eta_{method}"], table[f"loss_{method}"]
    within = np.abs(np.log2(eta / table.eta_best)) <= 1.0
    near = (loss - table.loss_best) <= table.spread.fillna(0.0)
    return (within | near) & loss.notna()


METHODS = {"diagnose": "the diagnosis (fitted rule)", "range_test": "the range test",
           "default": "the diagnosis's built-in rule"}


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, method and half (fit or held out): the share of model × seed pairs that :func:`hits`, how many
    pairs, and the median factor between the suggestion and the grid's best learning rate."""
    out = []
    for (optimizer, held_out), group in table.groupby(["optimizer", "held_out"]):
        for method in METHODS:
            factor = np.exp(np.abs(np.log(group[f"eta_{method}"] / group.eta_best)))
            out.append(dict(optimizer=optimizer, held_out=bool(held_out), method=method,
                            hits=int(hits(group, method).sum()), pairs=len(group),
                            share=float(hits(group, method).mean()), median_factor=float(factor.median())))
    return pd.DataFrame(out)


def eta_max_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, over the pairs where both the diagnosis and the grid found an unstable learning rate: how many,
    how many predicted η_max (stable for the diagnosis's 10 steps) were above the largest learning rate stable for the
    whole budget, and the median factor predicted/observed."""
    both = table[table.eta_max_predicted.notna() & ~table.max_censored & table.eta_max_observed.notna()]
    out = []
    for optimizer, group in both.groupby("optimizer"):
        ratio = group.eta_max_predicted / group.eta_max_observed
        out.append(dict(optimizer=optimizer, pairs=len(group), above=int((ratio > 1).sum()),
                        median_ratio=float(ratio.median())))
    return pd.DataFrame(out, columns=["optimizer", "pairs", "above", "median_ratio"])


def plot_calibration(table: pd.DataFrame, axes) -> None:
    """Left of each pair of axes: log2 of each suggestion over the grid's best learning rate, per architecture (the
    held-out ones on the right, the band of a factor 2 shaded); right: predicted against observed η_max (open
    markers: a side that found no unstable learning rate — a lower bound, drawn on the diagonal when the diagnosis's
    is missing)."""
    order = [m for m in FIT] + [m for m in ZOO if m not in FIT]
    markers = {"diagnose": ("o", "C3"), "range_test": ("s", "k"), "default": ("^", "C0")}
    for row, (optimizer, group) in zip(axes, table.groupby("optimizer", sort=False)):
        left, right = row
        for k, (method, (marker, colour)) in enumerate(markers.items()):
            x = group.model.map(order.index) + (k - 1) * 0.2
            left.plot(x, np.log2(group[f"eta_{method}"] / group.eta_best), marker, color=colour, alpha=0.7,
                      label=METHODS[method])
        left.axhspan(-1, 1, color="0.9", zorder=0)
        left.axvline(len(FIT) - 0.5, color="0.5", lw=0.8)
        left.set(xticks=range(len(order)), ylabel="log₂(η / grid's best η)", title=f"{optimizer}: suggestions")
        left.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
        left.legend(fontsize=7)
        bounded = group.eta_max_predicted.notna() & ~group.max_censored
        right.loglog(group.eta_max_observed[bounded], group.eta_max_predicted[bounded], "o", color="C7",
                     label="both found an unstable η")
        right.loglog(group.eta_max_observed[~bounded], group.eta_max_predicted[~bounded].fillna(
            group.eta_max_observed[~bounded]), "o", mfc="none", color="C7", label="one side censored (a bound)")
        right.legend(fontsize=7)
        limits = [np.nanmin(group[["eta_max_observed", "eta_max_predicted"]].to_numpy()) / 2,
                  np.nanmax(group[["eta_max_observed", "eta_max_predicted"]].to_numpy()) * 2]
        right.plot(limits, limits, "k:", lw=0.8)
        right.set(xlabel=f"largest η stable for {int(group.steps.iloc[0])} steps", ylabel="predicted η_max",
                  title=f"{optimizer}: η_max")


def shipped_rule(folder: Path = SHIPPED) -> dict[str, dict]:
    """The suggestion rule fit on the stored calibration (per optimizer: anchor, κ per anchor, fit quality)."""
    return calibration_table(folder)[1]


def calibrated_lr(report: Diagnosis, rule: dict[str, dict] | None = None) -> float:
    """The fitted rule's learning rate for a diagnosis of plain SGD or Adam (``optimizer=None`` or a plain
    ``torch.optim.SGD``; ``torch.optim.Adam``): κ·anchor per initialization, their geometric mean. It was fit for the
    calibration's protocol — a quick diagnosis of 10 steps on 512 examples, training for 500 steps of batch 128 —
    and carries no promise beyond it. ``rule`` defaults to the shipped one."""
    if report.optimizer in ("plain SGD", "SGD (no momentum)"):
        kind = "sgd"
    elif report.optimizer.startswith("Adam ("):
        kind = "adam"
    else:
        raise ValueError(f"the suggestion rule is calibrated for plain SGD and Adam, not {report.optimizer}")
    rule = rule or shipped_rule()
    table = with_anchors(observed_boundaries(report).assign(optimizer=kind))
    return float(np.exp(np.log(suggest(table, rule)).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(ZOO))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    parser.add_argument("--root", type=Path, default=None,
                        help=f"where the protocol's folder goes (default: ${FOLDER_ENV_VAR}, else store/)")
    parser.add_argument("--fitted", choices=list(OPTIMIZERS),
                        help="train at the fitted rule's suggestions for this optimizer's rows (after all jobs)")
    args = parser.parse_args()
    from helpers.core.files import write_text

    folder = calibration_folder(Protocol(), args.root)
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.fitted:
        write_text(folder / f"fitted-{args.fitted}.json", json.dumps(fitted_runs(args.fitted, folder), indent=1))
        return
    for model in args.models:
        for optimizer in args.optimizers:
            path = job_path(folder, model, optimizer)
            claim = path.with_suffix(".claimed")
            try:  # several processes share the jobs: each takes the ones no other has claimed
                os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            try:
                if not path.exists():
                    result = calibrate(model, optimizer)
                    write_text(path, json.dumps(result, indent=1))
                    print(f"{model} {optimizer}: {result['seconds']} s", flush=True)
            finally:
                claim.unlink()


if __name__ == "__main__":
    main()
