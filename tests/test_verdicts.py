"""The sentences of 07 come from data: which suggestion trained better, the fitted rule against the range test and the
80 % mark, the reach of η_max — each decided by hand-made tables whose answer is known."""

import math

import pandas as pd
import pytest

from helpers.diagnosis.verdicts import (MARK, calibration_sentence, calibration_verdict, eta_max_sentence,
                                        grid_outcome, outcome_sentence, seed_spread)


def runs(diagnose_loss: float, range_loss: float) -> pd.DataFrame:
    rows = [dict(method="grid", lr=lr, seed=s, final_test_loss=loss + 0.01 * s, test_accuracy=acc)
            for lr, loss, acc in ((0.01, 0.9, 0.6), (0.1, 0.5, 0.8), (1.0, math.nan, math.nan)) for s in (0, 1)]
    rows += [dict(method="diagnose", lr=0.2, seed=s, final_test_loss=diagnose_loss, test_accuracy=0.75) for s in (0, 1)]
    rows += [dict(method="range-test", lr=0.03, seed=s, final_test_loss=range_loss, test_accuracy=0.7)
             for s in (0, 1)]
    return pd.DataFrame(rows).assign(model="m")


SUGGESTIONS = {"diagnose": 0.2, "range-test": 0.03}


def test_the_grid_outcome_names_the_suggestion_with_the_lower_loss_and_the_margin():
    outcome = grid_outcome(runs(0.55, 0.70), SUGGESTIONS)
    assert outcome["best_lr"] == 0.1 and outcome["best_loss"] == pytest.approx(0.505)
    assert outcome["winner"] == "diagnose" and outcome["margin"] == pytest.approx(0.15)
    assert grid_outcome(runs(0.80, 0.70), SUGGESTIONS)["winner"] == "range-test"


def test_a_diverged_suggestion_cannot_win_and_the_sentence_says_which_trained():
    outcome = grid_outcome(runs(math.nan, 0.70), SUGGESTIONS)
    assert outcome["winner"] is None and outcome["trained"] == ["range-test"] and math.isnan(outcome["margin"])
    text = outcome_sentence("m", outcome, {"the diagnosis": 3.0}, accuracy=True)
    assert "only the range-test suggestion trained" in text and "diagnose suggests η = 0.2 (it diverged)" in text
    both = grid_outcome(runs(math.nan, math.nan), SUGGESTIONS)
    assert "both suggestions diverged" in outcome_sentence("m", both, {}, accuracy=False)


def test_a_tie_names_no_winner():
    outcome = grid_outcome(runs(0.70, 0.70), SUGGESTIONS)
    assert outcome["winner"] is None and len(outcome["trained"]) == 2
    assert "trained to the same held-out loss" in outcome_sentence("m", outcome, {}, accuracy=False)


def scores(hits: int, range_hits: int, pairs: int = 12) -> pd.DataFrame:
    return pd.DataFrame([
        dict(optimizer="sgd", held_out=True, method="diagnose", hits=hits, pairs=pairs, share=hits / pairs,
             median_factor=1.5),
        dict(optimizer="sgd", held_out=True, method="range_test", hits=range_hits, pairs=pairs,
             share=range_hits / pairs, median_factor=3.0),
        dict(optimizer="sgd", held_out=True, method="default", hits=1, pairs=pairs, share=1 / pairs, median_factor=9.0),
        dict(optimizer="sgd", held_out=False, method="diagnose", hits=0, pairs=pairs, share=0.0, median_factor=99.0),
    ])


RULE = {"sgd": {"anchor": "lr_mid", "kappa": {"lr_mid": 0.5, "lr_loss": 1.0}, "median_factor": 1.2}}


@pytest.mark.parametrize(("hits", "range_hits", "short", "versus"), [
    (10, 3, 0, "more often than"), (9, 9, 1, "as often as"), (4, 7, 6, "less often than"), (12, 12, 0, "as often as")])
def test_the_calibration_verdict_counts_the_mark_and_compares_with_the_range_test(hits, range_hits, short, versus):
    v = calibration_verdict("sgd", RULE, scores(hits, range_hits))
    assert v["target"] == math.ceil(MARK * 12) == 10
    assert (v["short"], v["versus"], v["hits"], v["range_hits"]) == (short, versus, hits, range_hits)
    assert v["kappa"] == 0.5 and v["default_hits"] == 1  # the held-out rows only
    text = calibration_sentence(v)
    assert ("meets the 80% mark" in text) == (short == 0)
    assert f"by {short} pair(s)" in text or short == 0


def test_eta_max_sentence_names_an_optimizer_without_bounded_pairs():
    maxima = pd.DataFrame([dict(optimizer="sgd", pairs=5, above=2, median_ratio=1.3)])
    text = eta_max_sentence(maxima, ["sgd", "adam"])
    assert "in 2 of 5 pairs (median ratio 1.30)" in text and "adam: no pair" in text


def test_seed_spread_is_the_median_over_learning_rates_of_the_range_between_seeds():
    frame = runs(0.5, 0.5)
    spread = seed_spread(frame)
    assert spread["m"] == pytest.approx(0.01)  # 0.01 at two learning rates, NaN (diverged) at the third
