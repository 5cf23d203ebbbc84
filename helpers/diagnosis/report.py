"""A diagnosis as text and as a figure: :func:`summary` is what ``print(report)`` shows, :func:`plot_phases` what
``report.plot()`` draws. Both read a :class:`~helpers.diagnosis.result.Diagnosis` through its fields and reading
rules only."""

from __future__ import annotations

import math

import numpy as np

from helpers.analysis.plots import PHASE_COLOURS
from helpers.diagnosis.edges import EDGES
from helpers.rules import DIVERGE_LOSS, phase_of


def plot_phases(report, ax=None, title: str | None = None):
    """A :class:`~helpers.diagnosis.result.Diagnosis` ``report``'s phases on a learning-rate axis (log), one band per
    initialization; the suggested range hatched."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    ax = ax or plt.gca()
    b = report.boundaries()
    values = b[["lr_loss", "lr_sharp", "lr_max"]].to_numpy(float)
    left, right = np.nanmin(values) / 4, np.nanmax(values) * 4
    drawn = set()
    for i, (row, lrs) in enumerate(zip(report.per_seed.itertuples(), values)):
        edges = sorted({left, right, *[v for v in lrs if left < v < right]})
        for lo, hi in zip(edges[:-1], edges[1:]):
            c = math.sqrt(lo * hi) * row.sharpness0
            if c > row.c_max and getattr(row, "censored", False):
                continue  # beyond a grid that found no divergence: untested, left blank
            phase = phase_of(c, row.c_loss, row.c_sharp, row.c_max)
            ax.barh(i, hi - lo, left=lo, color=PHASE_COLOURS[phase], height=0.7,
                    label=None if phase in drawn else phase)
            drawn.add(phase)
    low, high = report.suggested_range()
    ax.axvspan(low, high if math.isfinite(high) else right, fill=False, hatch="//", ec="k", lw=0.8,
               label="suggested range")
    ax.set(xscale="log", xlim=(left, right), xlabel="learning rate η", yticks=range(len(b)),
           yticklabels=[f"seed {s}" for s in b.seed], title=title)
    ax.xaxis.set_minor_formatter(NullFormatter())
    return ax

def edge_line(report) -> str:
    """What the unit of c is, its mean and per-seed values, and the other edges measured beside it."""
    names = {"hessian": "λ^H_0" if report.optimizer.plain_sgd else "λ^H_0 scaled by the momentum (the "
             "Hessian edge)", "preconditioned": "Adam's preconditioned sharpness ×(1 − β₁)/(1 + β₁)",
             "critical": "the critical sharpness 2/η_c along the optimizer's first update"}
    line = (f"  unit of c: {names[report.edge]} = {report.mean()['sharpness0']:.4g} (mean; η = c/it); per seed: "
            + ", ".join(f"{v:.4g}" for v in report.sharpness0))
    others = [f"{edge} {report.per_seed[edge].mean():.4g}" for edge in EDGES
              if edge != report.edge and edge in report.per_seed and report.per_seed[edge].notna().any()]
    return line + (f"\n  other edges measured (mean): {', '.join(others)}" if others else "")

def constant_lines(report) -> list[str]:
    """c_loss, c_sharp (where measured) and c_max as constants and learning rates, with what bounds them."""
    lines, m, floor = [], report.mean(), report.c_values[0]
    censored = report.censored
    for name, label in (("c_loss", "the loss rises from"), ("c_sharp", "the sharpness rises from"),
                        ("c_max", "diverges above")):
        if report.per_seed[name].isna().all():
            continue
        fills = (report.per_seed[f"{name}_filled"].to_numpy(bool) if f"{name}_filled" in report.per_seed
                 else np.zeros(len(report.per_seed), bool))
        filled = int(fills.sum())
        if name != "c_max" and fills.all():   # it never rose: a fill with c_max is no onset to report
            where = "on the grid" if censored.all() else "below the divergence"
            lines.append(f"  {label.replace(' from', ''):<26} for no seed {where} ({name} filled with c_max)")
            continue
        note = f" ({filled} seed(s) where it never rose left out)" if filled else ""
        at_floor = int((report.per_seed[name] == floor).sum())
        if name == "c_sharp" and at_floor:  # early sharpening: the sharpness rises even at the smallest c
            note += (f"; for {at_floor} seed(s) it rises already at the grid's first c = {floor:.3g} (early "
                     "sharpening, not a catapult threshold: start the grid lower to find where it begins)")
        value = float(report.per_seed[name][~fills].mean()) if name != "c_max" else m[name]
        if name == "c_max":
            top = report.c_values[-1]
            if censored.any():
                lines.append(f"  {int(censored.sum())} seed(s): no divergence up to η = {report.lr(top):.3g} "
                             f"(c = {top:.3g}); extend the grid")
            if censored.all():
                continue
            value = float(report.per_seed[name][~censored].mean())
            note += f" ({int((~censored).sum())} seed(s) that diverged)" if censored.any() else ""
        lines.append(f"  {label:<26} c = {value:.3g}, η = {report.lr(value):.3g}{note}")
    return lines

def summary(report) -> str:
    """A diagnosis as text: the optimizer, grid and divergence rule, the edge, the constants as learning rates, and
    the suggestion (what ``print(report)`` shows)."""
    low, high = report.suggested_range()
    rule = f"not finite, above {DIVERGE_LOSS:g}, or ≥ {report.held:g}·L_0 after the last step" if report.held else \
        f"not finite or above {DIVERGE_LOSS:g}"
    lines = [f"Early phase diagram of {report.optimizer} ({len(report.per_seed)} initializations, {report.steps} "
             f"steps, grid c = {report.c_values[0]:.3g} … {report.c_values[-1]:.3g}; divergent: loss {rule}):",
             *([f"  loss: {report.loss}"] if report.loss else []), edge_line(report), *constant_lines(report)]
    floor = report.c_values[0]
    if report.quick:
        lines.append("  quick diagnosis: c_sharp not measured")
    elif report.per_seed["c_sharp"].isna().all():
        lines.append(f"  c_sharp not measured: it is the study's constant of plain SGD (λ^H_t), not of "
                     f"{report.optimizer}")
    if report.frozen:
        lines.append(f"  {report.frozen} frozen parameter tensor(s) kept fixed and left out of λ^H")
    if math.isfinite(high):
        lines.append(f"  suggested learning rates: {low:.3g} … {high:.3g} (middle {report.suggested_lr():.3g})")
    elif not math.isfinite(low):
        lines.append(f"  no suggested learning rate: the loss never rose and no run diverged up to "
                     f"η = {report.lr(report.c_values[-1]):.3g}: extend the grid upward (c_values)")
    else:
        lines.append(f"  suggested learning rate: {low:.3g} (where the loss starts to rise); no divergence up to "
                     f"η = {report.lr(report.c_values[-1]):.3g}: extend the grid to find the upper boundary")
    low_loss = int((report.per_seed["c_loss"] == floor).sum())
    if low_loss:
        lines.append(f"  c_loss of {low_loss} seed(s) at the grid's first c = {floor:.3g}: it may lie lower; "
                     "start the grid lower to see")
    return "\n".join(lines)
