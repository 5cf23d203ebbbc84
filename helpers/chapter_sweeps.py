"""The sweeps each chapter runs, as one function of its parameters: the chapter, the command line and the tests
all call it, so a preset computed ahead (``python -m helpers sweep <chapter> <preset>``) is what the chapter loads.

Each function returns named groups of sweep configurations, e.g. ``{"by_width": [...], "by_depth": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.build import ModelSpec
from helpers.chapter_params import ChapterParameters
from helpers.config import SweepConfig, c_grid, refined_grid
from helpers.outputs import ZERO_OUTPUTS
from helpers.saturation import saturation_step, saturation_window

Sweeps = dict[str, list[SweepConfig]]


def fcn_base(p: ChapterParameters, depth: int, width: int, seeds: list[int], **changes) -> SweepConfig:
    """The chapters' common FCN sweep: the data, loss and batch size of ``p``, then ``changes``."""
    return SweepConfig(model=ModelSpec("fcn", depth, width), dataset=p.dataset, loss=p.loss, n_train=p.n_train,
                       n_sharpness=p.n_sharpness, batch_size=p.batch_size, sharpness=p.sharpness,
                       seeds=tuple(seeds)).updated(**changes)


def early_grid(p: ChapterParameters) -> dict:
    """The early-transient settings of ``p``: T steps and the grid c = 2^x, x = 0, …, c_x_max."""
    return dict(steps=p.steps, c_values=c_grid(p.c_x_max, p.c_x_step))


def catapult_sweeps(p: ChapterParameters) -> Sweeps:
    """``02_catapult_dynamics``: a wide-shallow and a deep-narrow network over the c grid, the sharpness measured in
    every run (the chapter draws them all); one long run (Fig. 1)."""
    base = fcn_base(p, p.wide[0], p.wide[1], [p.seed], search="scan", **early_grid(p))
    measure = (0, *np.unique(np.geomspace(1, p.long_steps, p.long_points).astype(int)).tolist())
    long = base.updated(depth=p.long_depth, width=p.long_width, c_values=[p.long_c], steps=p.long_steps,
                        measure_at=measure)
    return {"wide": [base], "deep": [base.with_model(depth=p.deep[0], width=p.deep[1])], "long": [long]}


def phase_diagram_sweeps(p: ChapterParameters) -> Sweeps:
    """``03_phase_diagrams``: widths at one depth, depths at one width, wide networks at a small depth (the small-d/w
    end), the convolutional panel (its own initializations, training subset and c grid: ``conv_*``), and one network
    under both sharpness estimators (Lanczos and the study's 20-step power iteration) and with λ^H measured on
    ``estimator_n_sharpness`` examples (the study's 2,048)."""
    base = SweepConfig(model=ModelSpec(p.arch, p.depth, p.width, p.parameterization, p.bias), dataset=p.dataset,
                       loss=p.loss, n_train=p.n_train, n_sharpness=p.n_sharpness, batch_size=p.batch_size,
                       steps=p.steps, c_values=c_grid(p.c_x_max, p.c_x_step), seeds=tuple(p.seeds),
                       sharpness=p.sharpness)
    pair = base.updated(depth=p.estimator_depth, width=p.estimator_width, seeds=p.estimator_seeds)
    conv = [base.updated(arch=p.conv_arch, depth=p.conv_depth, width=w, parameterization="sp", bias=False,
                         dataset=p.conv_dataset, init=p.conv_init, seeds=p.conv_seeds, n_train=p.conv_n_train,
                         c_values=c_grid(p.conv_c_x_max, p.conv_c_x_step)) for w in p.conv_widths]
    return {"by_width": [base.with_model(width=w) for w in p.widths],
            "by_depth": [base.with_model(depth=d) for d in p.depths],
            "shallow": [base.with_model(depth=p.shallow_depth, width=w) for w in p.shallow_widths], "conv": conv,
            "estimators": [pair.updated(sharpness=method) for method in ("lanczos", "power")],
            "subset": [pair.updated(n_sharpness=p.estimator_n_sharpness)]}


def connectivity_sweeps(p: ChapterParameters) -> Sweeps:
    """``04_loss_connectivity``: widths at one depth, with the loss interpolated from θ₀ to θ_T."""
    base = fcn_base(p, p.depth, p.widths[0], p.seeds, interpolation_points=p.interpolation_points, **early_grid(p))
    return {"by_width": [base.with_model(width=w) for w in p.widths]}


def saturation_c_values(p: ChapterParameters) -> list[float]:
    """The grid of ``05_intermediate_saturation``: c = 2^x, x = c_x_min, …, c_x_max in steps of c_x_step."""
    return list(c_grid(p.c_x_max, p.c_x_step, p.c_x_min))


def saturation_sweeps(p: ChapterParameters) -> Sweeps:
    """``05_intermediate_saturation``: long runs at a few c (sharpness at log-spaced steps), and for χ(c) one run
    per (depth, width, c) trained to the end of its window τ, …, τ + n − 1 with the sharpness measured at step 0
    and in the window (the minibatch loss, which locates the end of the transient, comes with every step); the
    networks are a width arm at ``depth``, a depth arm at the widest width, and one wide, shallow network
    (``wide_depth``, ``wide_width``, over ``wide_seeds``) unless the arms hold it already."""
    base = fcn_base(p, p.depth, max(p.widths), p.seeds, search="scan")
    trajectories = []
    for c in p.trajectory_c:
        last = 6 * saturation_step(c, p.K)
        measure = sorted({0, *np.unique(np.geomspace(1, last, 30).astype(int)).tolist()})
        trajectories.append(base.updated(seeds=[p.seeds[0]], c_values=[c], steps=last, measure_at=measure,
                                         loss_every_step=False))
    combos = sorted({(p.depth, w) for w in p.widths} | {(d, max(p.widths)) for d in p.depths})
    networks = [(d, w, p.seeds) for d, w in combos]
    if (p.wide_depth, p.wide_width) not in combos:
        networks.append((p.wide_depth, p.wide_width, p.wide_seeds))
    chi = []
    for depth, width, seeds in networks:
        for c in saturation_c_values(p):
            window = saturation_window(c, p.K, p.window_steps)
            chi.append(base.updated(depth=depth, width=width, seeds=seeds, c_values=[c], steps=window[-1],
                                    measure_at=(0, *window), loss_every_step=False))
    return {"trajectories": trajectories, "chi": chi}


def output_scale_sweeps(p: ChapterParameters) -> Sweeps:
    """``06_output_scale``: vanilla, centered and zero-last-layer networks at ``widths`` on the grid c = 2^x in steps
    of ``c_x_fine_step`` up to ``c_x_fine_max`` and of ``c_x_step`` above (the zero-output ones with the sharpness
    threshold 1 + ε); fixed output scales α and width-scaled outputs f/w^s at ``scale_widths``. Groups
    are named by the output variant; beside each, ``first step <variant>`` (one step at the smallest c, its
    sharpness measured) and, for the first three, ``trajectories <variant>`` (``trajectory_c`` at
    ``trajectory_width``, the sharpness in every run)."""
    grid = refined_grid(p.c_x_max, p.c_x_step, p.c_x_fine_max, p.c_x_fine_step)
    base = fcn_base(p, p.depth, p.widths[0], p.seeds, steps=p.steps, c_values=grid)
    out = {name: [base.updated(output=name, width=w, rise_epsilon=p.epsilon if name in ZERO_OUTPUTS else 0.0)
                  for w in p.widths] for name in ("standard", *ZERO_OUTPUTS)}
    for name in ("standard", *ZERO_OUTPUTS):
        out[f"trajectories {name}"] = [base.updated(output=name, width=p.trajectory_width,
                                                    c_values=sorted(p.trajectory_c), search="scan")]
    for output, values in (("alpha", p.alphas), ("width-scaled", p.width_exponents)):
        for value in values:
            scaled = base.updated(output=output, output_value=float(value), seeds=p.scale_seeds)
            out[scaled.model.variant] = [scaled.with_model(width=w) for w in p.scale_widths]
    for name in [n for n in out if not n.startswith("trajectories")]:
        out[f"first step {name}"] = [c.updated(c_values=c.c_values[:1], steps=1, search="scan") for c in out[name]]
    return out


SWEEPS: dict[str, Callable[[ChapterParameters], Sweeps]] = {
    "02_catapult_dynamics": catapult_sweeps,
    "03_phase_diagrams": phase_diagram_sweeps,
    "04_loss_connectivity": connectivity_sweeps,
    "05_intermediate_saturation": saturation_sweeps,
    "06_output_scale": output_scale_sweeps,
}


def chapter_sweeps(p: ChapterParameters) -> Sweeps:
    """The sweeps of ``p``'s chapter."""
    if p.chapter not in SWEEPS:
        raise ValueError(f"{p.chapter} runs no sweeps; the chapters that do are {sorted(SWEEPS)}")
    return SWEEPS[p.chapter](p)


def unique_configs(sweeps: Sweeps) -> list[SweepConfig]:
    """Every configuration of ``sweeps`` once (groups may share one)."""
    unique: dict = {}
    for configs in sweeps.values():
        for config in configs:
            unique.setdefault((repr(config.key_dict()), config.seeds), config)
    return list(unique.values())
