"""The book's figures: trajectories coloured by c, phase diagrams with their four shaded phases, orderings."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm

from helpers.analysis.phases import polynomial_fit
from helpers.rules import CONSTANTS, PHASES, SHARPNESS_ONLY

BOOK_FIGURE_WIDTH = 12.0
"""The widest figure a chapter draws (inches): the book shows it across its text column, about 670 px, so that a
12-point label is about 9 px tall on the page."""
BOOK_STYLE = {"font.size": 12, "axes.titlesize": 12, "axes.labelsize": 12, "xtick.labelsize": 11,
              "ytick.labelsize": 11, "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 13}
"""Matplotlib settings of every chapter's figures (sizes readable at :data:`BOOK_FIGURE_WIDTH`)."""


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to every figure drawn from now on."""
    import matplotlib

    matplotlib.rcParams.update(BOOK_STYLE)


PHASE_COLOURS = {PHASES[0]: "#cfe3f3", SHARPNESS_ONLY: "#e3d5f7", PHASES[1]: "#fde3c4", PHASES[2]: "#f7c6c6",
                 PHASES[3]: "#dddddd"}
"""One colour per phase, ordered from the most stable to divergence (the book's one palette)."""
CONSTANT_STYLE = {"c_loss": ("tab:blue", "o", r"$\langle c_{loss}\rangle$"),
                  "c_sharp": ("tab:red", "s", r"$\langle c_{sharp}\rangle$"),
                  "c_max": ("black", "^", r"$\langle c_{max}\rangle$"),
                  "c_barrier": ("tab:green", "D", r"$\langle c_{barrier}\rangle$"),
                  "c_barrier_interior": ("tab:olive", "d", r"$\langle c_{barrier}^{int}\rangle$")}


def plot_trajectories(runs: pd.DataFrame, axes: tuple[Axes, Axes], cmap: str = "viridis") -> None:
    """Normalized loss L_t/L_0 and sharpness λ^H_t/λ^H_0 against step, one line per c, coloured by c (log)."""
    import matplotlib.pyplot as plt  # here: importing pyplot picks a backend, which a plain import of helpers must not

    norm = LogNorm(runs["c"].min(), max(runs["c"].max(), runs["c"].min() * 1.01))
    colours = plt.get_cmap(cmap)
    for c, run in runs.groupby("c"):
        run = run[~run["diverged"]].sort_values("step")
        sharp = run.dropna(subset=["sharpness"])
        axes[0].plot(run["step"], run["loss"] / run["loss0"], color=colours(norm(c)), marker=".")
        axes[1].plot(sharp["step"], sharp["sharpness"] / sharp["sharpness0"], color=colours(norm(c)), marker=".")
    axes[0].set(xlabel="step $t$", ylabel="$L_t / L_0$", yscale="log")
    axes[1].set(xlabel="step $t$", ylabel=r"$\lambda^H_t / \lambda^H_0$", yscale="log")
    for ax in axes:
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    plt.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colours), ax=axes[1], label="$c$")


def plot_phase_diagram(averages: pd.DataFrame, ax: Axes, x: str = "d_over_w", names: tuple[str, ...] = CONSTANTS,
                       degree: int = 2, shade: bool = True, observed: bool = True) -> None:
    """⟨c_loss⟩, ⟨c_sharp⟩, ⟨c_max⟩ (and any other named constant) against ``x`` with quantile bands and fits.

    With ``observed`` (and :func:`~helpers.analysis.phases.average_constants`'s ``<name>_observed`` columns), the points
    and fits are the means over observed values, and the means that count values filled with c_max (lower bounds) are
    drawn hollow where they differ. The plane is shaded by phase, as in the study: below ⟨c_loss⟩ sharpness
    reduction, then loss catapult, then loss and sharpness catapult up to ⟨c_max⟩, divergence above.
    """
    data = averages.sort_values(x)
    xs = data[x].to_numpy(dtype=float)
    dense = np.linspace(xs.min(), xs.max(), 200) if len(xs) > 1 else xs
    column = {name: f"{name}_observed" if observed and f"{name}_observed" in data else name for name in names}
    fits = {name: polynomial_fit(xs, data[column[name]], degree) for name in names}
    if shade and all(n in fits for n in CONSTANTS):
        top = max(float(data["c_max_high"].max()) * 1.5, 8.0)
        bounds = [np.full_like(dense, 1.0), fits["c_loss"](dense), fits["c_sharp"](dense), fits["c_max"](dense),
                  np.full_like(dense, top)]
        for phase, lower, upper in zip((PHASES[0], PHASES[1], PHASES[2], PHASES[3]), bounds[:-1], bounds[1:]):
            ax.fill_between(dense, lower, np.maximum(lower, upper), color=PHASE_COLOURS[phase], label=phase, lw=0)
        ax.set_ylim(1.0, max(top, ax.get_ylim()[1]))  # axes that share y keep the largest of their ranges
    for name in names:
        colour, marker, label = CONSTANT_STYLE.get(name, ("tab:purple", "x", name))
        ax.fill_between(xs, data[f"{name}_low"], data[f"{name}_high"], color=colour, alpha=0.15, lw=0)
        ax.plot(xs, data[column[name]], marker=marker, ls="none", color=colour, label=label)
        if column[name] != name:
            differs = ~np.isclose(data[name], data[column[name]], equal_nan=True)
            ax.plot(xs[differs], data[name][differs], marker=marker, ls="none", mfc="none", color=colour)
        ax.plot(dense, fits[name](dense), color=colour, lw=1)
    ax.axhline(2.0, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="$d/w$" if x == "d_over_w" else x, ylabel="$c$", yscale="log")
    ticks = [2**k for k in range(11) if 2**k <= max(32, ax.get_ylim()[1])]
    ax.set_yticks(ticks, labels=[str(t) for t in ticks])


def plot_ordering(constants: pd.DataFrame, ax: Axes) -> None:
    """Per-initialization c_loss, c_sharp, c_max, one column per initialization; values filled with c_max drawn
    hollow, violations of the ordering (among observed values) marked."""
    data = constants.sort_values(["depth", "width", "seed"]).reset_index(drop=True)
    for name in CONSTANTS:
        colour, marker, label = CONSTANT_STYLE[name]
        filled = data[f"{name}_filled"] if f"{name}_filled" in data else pd.Series(False, index=data.index)
        label = label.replace(r"\langle ", "").replace(r"\rangle", "")
        ax.scatter(data.index[~filled], data[name][~filled], color=colour, marker=marker, s=14, label=label)
        if filled.any():
            ax.scatter(data.index[filled], data[name][filled], facecolors="none", edgecolors=colour, marker=marker,
                       s=14, label=f"{label} (filled with $c_{{max}}$)")
    observed = data["order_observed"] if "order_observed" in data else pd.Series(True, index=data.index)
    bad = data[~data["ordered"] & observed]
    ax.scatter(bad.index, bad["c_max"] * 1.15, marker="v", color="magenta", s=20, label="order violated")
    ax.set(xlabel="initialization (sorted by depth, width, seed)", ylabel="$c$", yscale="log")
