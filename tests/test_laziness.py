"""The movement table and the lazy verdict on hand-made runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis.laziness import STUDY_C_CRIT, lazy_verdict, movement_at_tau


def runs(depth, width, movements):
    """One run per c, 60 steps, its movement growing linearly to ``movements[c]`` at step 60."""
    rows = [dict(depth=depth, width=width, c=c, step=t, movement=m * t / 60)
            for c, m in movements.items() for t in range(61)]
    return pd.DataFrame(rows)


def test_movement_is_read_at_tau_and_split_at_the_network_s_c_crit_or_the_study_s():
    table = pd.concat([runs(4, 128, {1.0: 0.6, 4.0: 0.6}), runs(2, 1024, {1.0: 0.6, 4.0: 0.6})])
    c_crit = pd.DataFrame(dict(depth=[4, 2], width=[128, 1024], c_crit=[np.nan, 3.0]))
    out = movement_at_tau(table, k=56.0, c_crit=c_crit).set_index(["depth", "width", "c"])
    assert out.loc[(4, 128, 1.0), "step"] == 56 and out.loc[(4, 128, 4.0), "step"] == 14  # τ = K/c
    assert out.loc[(4, 128, 4.0), "movement"] == 0.6 * 14 / 60
    assert out.loc[(4, 128, 1.0), "split"] == STUDY_C_CRIT and out.loc[(2, 1024, 1.0), "split"] == 3.0
    assert out.loc[(2, 1024, 1.0), "below"] and not out.loc[(2, 1024, 4.0), "below"]


def test_the_lazy_verdict_compares_every_c_below_with_every_c_above():
    def table(m_below, m_above):
        return pd.DataFrame(dict(depth=[4] * 4, width=[128] * 4, c=[0.5, 1.0, 3.0, 4.0], movement=m_below + m_above,
                                 below=[True, True, False, False]))
    assert lazy_verdict(table([0.01, 0.02], [0.05, 0.2]))["verdict"] == "reproduced"
    assert lazy_verdict(table([0.01, 0.06], [0.05, 0.2]))["verdict"] == "not reproduced"  # the ranges overlap
    assert lazy_verdict(table([0.01, 0.05], [0.05, 0.2]))["verdict"] == "not reproduced"  # a tie is not "less"
    two = pd.concat([table([0.01, 0.02], [0.05, 0.2]), table([0.01, 0.06], [0.05, 0.2]).assign(width=256)])
    assert lazy_verdict(two)["verdict"] == "mixed"
    assert lazy_verdict(table([0.01, 0.02], [0.05, 0.2]).iloc[:2])["evidence"].startswith("no network")
