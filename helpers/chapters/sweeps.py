"""The sweeps each chapter runs, as one function of its parameters: the chapter, the command line and the tests
all call it, so a preset computed ahead (``python -m helpers sweep <chapter> <preset>``) is what the chapter loads.

Each function returns named groups of sweep configurations, e.g. ``{"by_width": [...], "by_depth": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from helpers.nets.build import ModelSpec
from helpers.chapters.parameters import ChapterParameters
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.nets.outputs import ZERO_OUTPUTS
from helpers.analysis.saturation import saturation_step, saturation_window

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
    """``02_catapult_dynamics``: a wide-shallow and a deep-narrow network over the c grid at 03's settings, the
    sharpness measured in every run of every initialization (the chapter draws ``seed``'s); one long run (Fig. 1);
    and full-batch gradient descent on a fixed subset at a few c, long enough to reach the edge of stability (λ^H on
    the whole subset: the Hessian of the loss it trains on; measured at each of the first T steps, then every
    ``edge_every``)."""
    base = fcn_base(p, p.wide[0], p.wide[1], p.seeds, search="scan", **early_grid(p))
    measure = (0, *np.unique(np.geomspace(1, p.long_steps, p.long_points).astype(int)).tolist())
    long = base.updated(depth=p.long_depth, width=p.long_width, c_values=[p.long_c], steps=p.long_steps,
                        measure_at=measure, seeds=[p.seed])
    edge = base.updated(depth=p.edge_depth, width=p.edge_width, n_train=p.edge_n_train, n_sharpness=p.edge_n_train,
                        batch_size=p.edge_n_train, c_values=p.edge_c, steps=p.edge_steps, seeds=[p.seed],
                        measure_at=sorted({*range(min(p.steps, p.edge_steps) + 1),
                                           *range(0, p.edge_steps + 1, p.edge_every), p.edge_steps}))
    return {"wide": [base], "deep": [base.with_model(depth=p.deep[0], width=p.deep[1])], "long": [long],
            "edge": [edge]}


def phase_diagram_sweeps(p: ChapterParameters) -> Sweeps:
    """``03_phase_diagrams``: widths at one depth; depths at each of ``depth_widths``; wide networks at a small depth
    (the small-d/w end); the NTK parameterization at ``ntp_widths`` (App. C); the convolutional panel (its own
    initializations, training subset and c grid: ``conv_*``); one network under the study's 20-step power
    iteration beside Lanczos, and with λ^H on ``subset_n_sharpness`` examples beside the study's subset; the FCNs
    under the divergence rule of earlier versions (the measurement set's loss too) beside the study's; and one network
    with its batch order fixed over the initializations, and its initialization fixed over the batch orders
    (App. A)."""
    base = SweepConfig(model=ModelSpec(p.arch, p.depth, p.widths[0], p.parameterization, p.bias), dataset=p.dataset,
                       loss=p.loss, n_train=p.n_train, n_sharpness=p.n_sharpness, batch_size=p.batch_size,
                       steps=p.steps, c_values=c_grid(p.c_x_max, p.c_x_step), seeds=tuple(p.seeds),
                       sharpness=p.sharpness)
    conv = [base.updated(arch=p.conv_arch, depth=p.conv_depth, width=w, parameterization="sp", bias=False,
                         dataset=p.conv_dataset, init=p.conv_init, seeds=p.conv_seeds, n_train=p.conv_n_train,
                         n_sharpness=p.conv_n_sharpness,
                         c_values=c_grid(p.conv_c_x_max, p.conv_c_x_step)) for w in p.conv_widths]
    pair = base.updated(depth=p.estimator_depth, width=p.estimator_width, seeds=p.estimator_seeds)
    fcns = {"by_width": [base.with_model(width=w) for w in p.widths],
            "by_depth": [base.with_model(depth=d, width=w) for w in p.depth_widths for d in p.depths],
            "shallow": [base.with_model(depth=p.shallow_depth, width=w) for w in p.shallow_widths]}
    earlier = [c.updated(divergence="minibatch or measurement") for c in unique_configs(fcns)]
    noise = base.with_model(depth=p.noise_depth, width=p.noise_width)
    return {**fcns, "earlier divergence rule": earlier, "fixed batch order": [noise.updated(batch_seed=p.seeds[0])],
            "fixed initialization": [noise.updated(init_seed=p.seeds[0])],
            "ntp": [base.with_model(width=w, parameterization="ntp") for w in p.ntp_widths], "conv": conv,
            "estimators": [pair.updated(sharpness=method) for method in ("lanczos", "power")],
            "subset": [pair.updated(n_sharpness=p.subset_n_sharpness)]}


def connectivity_sweeps(p: ChapterParameters) -> Sweeps:
    """``04_loss_connectivity``: widths at one depth and depths at one width, with the loss interpolated from θ₀ to
    the end of each run's early transient (found up to ``transient_cap`` steps)."""
    base = fcn_base(p, p.depth, p.widths[0], p.seeds, interpolation_points=p.interpolation_points,
                    transient_cap=p.transient_cap, **early_grid(p))
    return {"by_width": [base.with_model(width=w) for w in p.widths],
            "by_depth": [base.with_model(depth=d, width=p.depth_width) for d in p.depths]}


def saturation_c_values(p: ChapterParameters) -> list[float]:
    """The grid of ``05_intermediate_saturation``: c = 2^x, x = c_x_min, …, c_x_max in steps of c_x_step."""
    return list(c_grid(p.c_x_max, p.c_x_step, p.c_x_min))


def saturation_networks(p: ChapterParameters) -> list[tuple[int, int]]:
    """The (depth, width) of ``05``'s networks: ``widths`` at ``depth`` and ``wide_widths`` at ``wide_depth``."""
    return sorted({(p.depth, w) for w in p.widths} | {(p.wide_depth, w) for w in p.wide_widths})


def saturation_sweeps(p: ChapterParameters) -> Sweeps:
    """``05_intermediate_saturation``: long runs at a few c (sharpness at log-spaced steps) at ``depth`` and
    ``trajectory_width`` and on the wide network (``wide_depth``, ``wide_trajectory_width``); for χ(c) one run per
    (network, c) trained to the end of its window τ, …, τ + n − 1 with the sharpness measured at step 0 and in the
    window (the minibatch loss, which locates the end of the transient, comes with every step); and each network's
    early-transient constants (03's protocol: T = ``transient_steps`` steps, c = 2^x, x = 0, …,
    ``constants_c_x_max``), for the window c_crit < c < c_loss; and the trajectories again with the weights' movement
    ‖θ_t − θ₀‖/‖θ₀‖ recorded (is the network lazy below c_crit?)."""
    base = fcn_base(p, p.depth, p.trajectory_width, p.seeds, search="scan")
    trajectories = {(p.depth, p.trajectory_width): [], (p.wide_depth, p.wide_trajectory_width): []}
    for (depth, width), group in trajectories.items():
        for c in p.trajectory_c:
            last = 6 * saturation_step(c, p.K)
            measure = sorted({0, *np.unique(np.geomspace(1, last, 30).astype(int)).tolist()})
            group.append(base.updated(depth=depth, width=width, seeds=[p.seeds[0]], c_values=[c], steps=last,
                                      measure_at=measure, loss_every_step=False))
    chi = []
    for depth, width in saturation_networks(p):
        for c in saturation_c_values(p):
            window = saturation_window(c, p.K, p.window_steps)
            chi.append(base.updated(depth=depth, width=width, c_values=[c], steps=window[-1], measure_at=(0, *window),
                                    loss_every_step=False))
    constants = [fcn_base(p, depth, width, p.seeds, steps=p.transient_steps,
                          c_values=c_grid(p.constants_c_x_max, p.c_x_step)) for depth, width in saturation_networks(p)]
    movement = [c.updated(record_movement=True) for group in trajectories.values() for c in group]
    return {"trajectories": trajectories[(p.depth, p.trajectory_width)],
            "wide trajectories": trajectories[(p.wide_depth, p.wide_trajectory_width)], "chi": chi,
            "constants": constants, "movement": movement}


def output_scale_sweeps(p: ChapterParameters) -> Sweeps:
    """``06_output_scale``, by the study's protocol for Section 4 and Apps. G, H: full-batch gradient descent on a
    fixed subset of ``n_train`` examples, λ^H of the loss on all of them. Vanilla, centered and zero-last-layer
    networks at ``depths`` × ``widths`` (the zero-output ones with the sharpness threshold 1 + ε); fixed output
    scales α and width-scaled outputs f/w^s at ``scale_depth`` × ``scale_widths``; beside the first three,
    ``trajectories <variant>`` (``trajectory_c`` at one network, the sharpness in every run)."""
    base = SweepConfig(model=ModelSpec("fcn", p.depths[0], p.widths[0]), dataset=p.dataset, loss=p.loss,
                       n_train=p.n_train, n_sharpness=p.n_train, batch_size=p.n_train, sharpness=p.sharpness,
                       seeds=tuple(p.seeds), **early_grid(p))
    out = {name: [base.updated(output=name, depth=d, width=w, rise_epsilon=p.epsilon if name in ZERO_OUTPUTS
                               else 0.0) for d in p.depths for w in p.widths] for name in ("standard", *ZERO_OUTPUTS)}
    for name in ("standard", *ZERO_OUTPUTS):
        out[f"trajectories {name}"] = [out[name][0].updated(depth=p.trajectory_depth, width=p.trajectory_width,
                                                            c_values=sorted(p.trajectory_c), search="scan")]
    for output, values in (("alpha", p.alphas), ("width-scaled", p.width_exponents)):
        for value in values:
            scaled = base.updated(output=output, output_value=float(value), depth=p.scale_depth, seeds=p.scale_seeds)
            out[scaled.model.variant] = [scaled.with_model(width=w) for w in p.scale_widths]
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
