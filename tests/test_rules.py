"""The study's rules in :mod:`helpers.rules`: one divergence test for numbers, arrays, series and tensors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from helpers.rules import DIVERGE_LOSS, HELD, diverged, not_recovered

VALUES = [0.5, DIVERGE_LOSS, DIVERGE_LOSS * 1.0001, math.inf, -math.inf, math.nan, -3.0]
EXPECTED = [False, False, True, True, True, True, False]   # not finite, or above the threshold (not at it)


def test_divergence_is_not_finite_or_above_the_threshold_in_every_container():
    assert [diverged(v) for v in VALUES] == EXPECTED
    assert all(isinstance(diverged(v), bool) for v in VALUES)
    assert diverged(np.array(VALUES)).tolist() == EXPECTED
    assert diverged(pd.Series(VALUES)).tolist() == EXPECTED
    assert diverged(torch.tensor(VALUES)).tolist() == EXPECTED
    assert diverged(torch.tensor(VALUES), threshold=0.1).tolist() == [True, True, True, True, True, True, False]
    # the same as torch's own test, element by element
    t = torch.tensor(VALUES)
    assert torch.equal(diverged(t), ~torch.isfinite(t) | (t > DIVERGE_LOSS))


def test_a_run_has_not_recovered_while_its_loss_stays_at_held_times_its_start():
    assert not_recovered(2.0, 1.0) and not not_recovered(1.99, 1.0) and HELD == 2.0
    assert not not_recovered(10.0, 1.0, None)   # the rule turned off
    table = pd.DataFrame(dict(loss=[1.0, 2.0, 3.0], loss0=[1.0, 1.0, 2.0]))
    assert not_recovered(table.loss, table.loss0).tolist() == [False, True, False]
    assert (pd.Series([True, False, False]) | not_recovered(table.loss, table.loss0, None)).tolist() == \
        [True, False, False]
