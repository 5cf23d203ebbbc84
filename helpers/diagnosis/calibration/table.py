"""What the calibration's jobs say: per row the grid's best and largest stable learning rates, the suggestion rule fit
on the fit architectures, how often each method lands near the best, and the fitted rule for a new diagnosis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.diagnosis.calibration.protocol import SHIPPED
from helpers.diagnosis.calibration.store import load
from helpers.diagnosis.result import Diagnosis
from helpers.rules import not_recovered


def mean_losses(runs: list[dict]) -> pd.Series:
    """Held-out loss per learning rate, averaged over seeds (infinite where any seed diverged)."""
    table = pd.DataFrame(runs)
    table["score"] = np.where(table.diverged | table.loss.isna(), np.inf, table.loss)
    return table.groupby("lr").score.mean()


def unstable(runs: pd.DataFrame | dict) -> pd.Series | bool:
    """Whether runs were unstable over the budget, by the diagnosis's rule: diverged (:func:`helpers.rules.diverged`)
    or a training loss not recovered (:func:`helpers.rules.not_recovered`) after the last step. A table gives a
    boolean series, one run (a dict) a bool."""
    return runs["diverged"] | not_recovered(runs["train_loss"], runs["train_loss0"])


def observed_boundaries(report: Diagnosis) -> pd.DataFrame:
    """``report.boundaries()`` with lr_max NaN where the grid found no divergence (a bound, not a boundary)."""
    bounds = report.boundaries()
    bounds.loc[report.censored, "lr_max"] = math.nan
    return bounds


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


def shipped_rule(folder: Path = SHIPPED) -> dict[str, dict]:
    """The suggestion rule fit on the stored calibration (per optimizer: anchor, κ per anchor, fit quality)."""
    return calibration_table(folder)[1]


def calibrated_lr(report: Diagnosis, rule: dict[str, dict] | None = None) -> float:
    """The fitted rule's learning rate for a diagnosis of plain SGD or Adam (``optimizer=None`` or a plain
    ``torch.optim.SGD``; ``torch.optim.Adam``): κ·anchor per initialization, their geometric mean. It was fit for the
    calibration's protocol — a quick diagnosis of 10 steps on 512 examples, training for 500 steps of batch 128 —
    and carries no promise beyond it. ``rule`` defaults to the shipped one."""
    if report.optimizer.plain_sgd:
        kind = "sgd"
    elif report.optimizer.name == "Adam":
        kind = "adam"
    else:
        raise ValueError(f"the suggestion rule is calibrated for plain SGD and Adam, not {report.optimizer}")
    rule = rule or shipped_rule()
    table = with_anchors(observed_boundaries(report).assign(optimizer=kind))
    return float(np.exp(np.log(suggest(table, rule)).mean()))
