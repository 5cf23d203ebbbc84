"""What ``07_choosing_a_learning_rate``'s comparisons say, as data, and the sentences the chapter prints from it:
which suggestion trained better on each model, the fitted rule's score against the range test, and how far the
diagnosis's ten steps see (its η_max against a whole training budget)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ANCHOR_NAMES = {"lr_loss": "c_loss/s", "lr_max": "c_max/s", "lr_mid": "√(c_loss·c_max)/s"}
MARK = 0.8
"""The share of held-out pairs a fitted rule should hit."""


def grid_outcome(runs: pd.DataFrame, suggestions: dict[str, float]) -> dict:
    """One model's training runs (``method`` "grid" or a suggestion's name, ``lr``, ``final_test_loss``,
    ``test_accuracy``): the grid's best learning rate and its mean held-out loss, each suggestion's learning rate,
    mean held-out loss (NaN: diverged) and accuracy, the suggestion that trained better and by how much (None
    where fewer than two trained or they tie)."""
    grid = runs[runs.method == "grid"]
    by_lr = grid.groupby("lr").final_test_loss.mean()
    best_lr = float(by_lr.idxmin())
    methods = {m: dict(lr=float(lr), loss=float(runs[runs.method == m].final_test_loss.mean()),
                       accuracy=float(runs[runs.method == m].test_accuracy.mean())) for m, lr in suggestions.items()}
    trained = sorted((v["loss"], m) for m, v in methods.items() if math.isfinite(v["loss"]))
    winner = trained[0][1] if len(trained) == 2 and trained[1][0] > trained[0][0] else None
    return dict(best_lr=best_lr, best_loss=float(by_lr.min()),
                best_accuracy=float(grid[grid.lr == best_lr].test_accuracy.mean()), methods=methods,
                winner=winner, margin=float(trained[1][0] - trained[0][0]) if winner else math.nan,
                trained=[m for _, m in trained])


def _held_out(value: float) -> str:
    return f"held-out loss {value:.3f}" if math.isfinite(value) else "it diverged"


def _accuracy(value: float) -> str:
    return f"{100 * value:.1f} %" if math.isfinite(value) else "none (diverged)"


def outcome_sentence(name: str, outcome: dict, costs: dict[str, float], accuracy: bool) -> str:
    """One model's comparison (:func:`grid_outcome`) as a sentence, with the wall time of each tool (``costs``:
    method → seconds) and, for a classifier (``accuracy``), the held-out accuracies."""
    methods = outcome["methods"]
    if outcome["winner"]:
        result = f"the {outcome['winner']} suggestion trained better, by {outcome['margin']:.3f} in held-out loss"
    elif len(outcome["trained"]) == 2:
        result = "the two suggestions trained to the same held-out loss"
    elif outcome["trained"]:
        result = f"only the {outcome['trained'][0]} suggestion trained"
    else:
        result = "both suggestions diverged"
    text = (f"**{name}**: the best learning rate of the grid is η = {outcome['best_lr']:.3g} "
            f"({_held_out(outcome['best_loss'])}); "
            + "; ".join(f"{m} suggests η = {v['lr']:.3g} ({_held_out(v['loss'])})" for m, v in methods.items())
            + f": {result}. " + ", ".join(f"{m} took {s:.1f} s" for m, s in costs.items()) + ".")
    if accuracy:
        parts = [f"{_accuracy(outcome['best_accuracy'])} at the best grid learning rate"]
        parts += [f"{_accuracy(v['accuracy'])} at the {m} suggestion" for m, v in methods.items()]
        text += " Held-out accuracy: " + ", ".join(parts) + "."
    return text


def calibration_verdict(optimizer: str, rule: dict, scores: pd.DataFrame) -> dict:
    """The fitted rule of ``optimizer`` and its held-out score (rows of
    :func:`~helpers.diagnosis.calibration.table.scores`) against the range test's and the built-in rule's: whether
    it reaches :data:`MARK` of the pairs, and whether it hits more often, as often or less often than the range
    test."""
    part = scores[(scores.optimizer == optimizer) & scores.held_out].set_index("method")
    mine, theirs, default = part.loc["diagnose"], part.loc["range_test"], part.loc["default"]
    target = int(np.ceil(MARK * mine.pairs))
    versus = "more often than" if mine.hits > theirs.hits else "as often as" if mine.hits == theirs.hits \
        else "less often than"
    r = rule[optimizer]
    return dict(optimizer=optimizer, anchor=r["anchor"], kappa=float(r["kappa"][r["anchor"]]),
                fit_factor=float(r["median_factor"]), hits=int(mine.hits), pairs=int(mine.pairs),
                share=float(mine.share), factor=float(mine.median_factor), target=target,
                short=max(target - int(mine.hits), 0), versus=versus, range_hits=int(theirs.hits),
                range_pairs=int(theirs.pairs), range_factor=float(theirs.median_factor),
                default_hits=int(default.hits), default_pairs=int(default.pairs))


def calibration_sentence(v: dict) -> str:
    """:func:`calibration_verdict` as the chapter's paragraph."""
    reach = f"meets the {MARK:.0%} mark" if not v["short"] else f"misses the {MARK:.0%} mark by {v['short']} pair(s)"
    return (f"**{v['optimizer']}**: the fitted rule is η = {v['kappa']:.3g} · {ANCHOR_NAMES[v['anchor']]} (median "
            f"miss on the fit architectures a factor {v['fit_factor']:.2f}). On the held-out architectures it hits "
            f"for {v['hits']} of {v['pairs']} model × seed pairs ({100 * v['share']:.0f} %; median factor "
            f"{v['factor']:.2f} from the best η), which {reach}, and {v['versus']} the range test "
            f"({v['range_hits']} of {v['range_pairs']}, median factor {v['range_factor']:.2f}); the built-in rule "
            f"(the geometric middle of the suggested range, unfitted) hits {v['default_hits']} of "
            f"{v['default_pairs']}.")


def eta_max_sentence(maxima: pd.DataFrame, optimizers: list[str]) -> str:
    """Per optimizer, how often the predicted η_max lay above the largest learning rate stable for the whole budget
    (rows of :func:`~helpers.diagnosis.calibration.table.eta_max_comparison`), or that no pair bounded both."""
    parts = [f"{r.optimizer}: the predicted η_max lies above the largest learning rate stable for the whole budget "
             f"in {r.above} of {r.pairs} pairs (median ratio {r.median_ratio:.2f})" for r in maxima.itertuples()]
    parts += [f"{o}: no pair where both the diagnosis and the grid found an unstable learning rate"
              for o in optimizers if o not in set(maxima.optimizer)]
    return "; ".join(parts) + "."


def seed_spread(runs: pd.DataFrame) -> pd.Series:
    """Per model, the median over the grid's learning rates of the spread (max − min) of the held-out loss between
    initializations trained at the same learning rate."""
    grid = runs[runs.method == "grid"]
    spread = grid.groupby(["model", "lr"]).final_test_loss.agg(lambda v: v.max() - v.min())
    return spread.groupby(level="model", sort=False).median()
