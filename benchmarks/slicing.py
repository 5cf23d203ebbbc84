"""Losses, gradients and Hessian products on a CPU: the whole set at once in the default layout, against slices
that fit the cache (:mod:`helpers.curvature.slicing`) with convolutions in the channels-last layout
(:class:`helpers.nets.models.Conv`).

For each network, at initialization on Fashion-MNIST: the loss on the 2,560 examples of the chapters' training set
without gradients (what L_t costs at every step), the loss and gradient on a batch of 512 (an SGD step), and one
Hessian-vector product on the 512 examples of λ^H. "plain" is the unsliced computation with ``F.conv2d`` on the
tensors as they come; "engine" is what the engine does now. Also checks that both give the same numbers.
Writes ``benchmarks/results/slicing.md``. Run: ``.venv/bin/python -m benchmarks.slicing``.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.nn import functional as F

from benchmarks.machine import describe_machine, median_seconds, write_results
from helpers.nets.build import ModelSpec, build_model
from helpers.sweeps.config import SweepConfig
from helpers.curvature.operators import HessianOperator
from helpers.curvature.stacking import stack_models
from helpers.sweeps.problem import load_sweep_data
from helpers.nets.losses import mse
from helpers.nets.models import Conv
from helpers.curvature.slicing import loss_pieces, losses_and_gradient, slice_size, sliced_losses

RESULTS = Path(__file__).parent / "results" / "slicing.md"
CASES = [("myrtle", 5, 8), ("myrtle", 5, 16), ("myrtle", 5, 32), ("fcn", 4, 512), ("fcn", 2, 2048)]


@contextmanager
def plain_convolutions():
    """Convolutions computed by ``F.conv2d`` on the tensors as they come (no channels-last copy)."""
    fast = Conv.forward
    Conv.forward = lambda self, x: F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)
    try:
        yield
    finally:
        Conv.forward = fast


def measure(model, x, y, xb, yb, size: int | None, repeats: int) -> dict:
    params, forward = stack_models([model])
    op = HessianOperator(loss_pieces(mse, forward, xb, yb, size), params, stacked=True)
    v = torch.randn(1, op.dim, generator=torch.Generator().manual_seed(0))
    return dict(loss=median_seconds(lambda: sliced_losses(mse, forward, params, x, y, size), repeats),
                grad=median_seconds(lambda: losses_and_gradient(mse, forward, params, xb, yb, size), repeats),
                hvp=median_seconds(lambda: op(v), repeats),
                values=(sliced_losses(mse, forward, params, x, y, size), op(v)))


def compare(arch: str, depth: int, width: int, repeats: int) -> dict:
    config = SweepConfig(model=ModelSpec(arch, depth, width), n_train=2560, n_sharpness=512)
    data = load_sweep_data(config, "cpu")
    x, y, xb, yb = data.x, data.y, data.x[:512], data.y[:512]
    model = build_model(config.model, tuple(x.shape[1:]), seed=0, device="cpu")
    with plain_convolutions():
        plain = measure(model, x, y, xb, yb, None, repeats)
    size = slice_size(model, x[:1])
    engine = measure(model, x, y, xb, yb, size, repeats)
    (loss_p, hv_p), (loss_e, hv_e) = plain["values"], engine["values"]
    return dict(net=f"{arch} d{depth} w{width}", size=size, plain=plain, engine=engine,
                loss_err=float((loss_e - loss_p).abs().max() / loss_p.abs().max()),
                hv_err=float((hv_e - hv_p).norm() / hv_p.norm()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for case in CASES:
        rows.append(compare(*case, repeats=args.repeats))
        print(rows[-1]["net"], {k: rows[-1][k] for k in ("size", "loss_err", "hv_err")}, flush=True)
    lines = ["# Slices and the channels-last layout on a CPU", "", describe_machine(torch.device("cpu")), "",
             f"Median wall time over {args.repeats} calls after a warm-up, at initialization (seed 0), MSE on "
             "Fashion-MNIST. L_t: the loss on 2,560 examples without gradients; step: loss and gradient on a "
             "batch of 512; product: one Hessian-vector product on 512 examples (its graph built beforehand). "
             "plain: the whole set at once, ``F.conv2d`` on the tensors as they come; engine: slices of the "
             "given size and channels-last convolutions. Difference: the engine's L_t and product relative to "
             "plain's (float32 rounding).", "",
             "| network | slice | L_t plain (s) | L_t engine (s) | step plain (s) | step engine (s) | "
             "product plain (s) | product engine (s) | difference L_t | difference product |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p, e = r["plain"], r["engine"]
        lines.append(f"| {r['net']} | {r['size']} | {p['loss']:.3f} | {e['loss']:.3f} ({p['loss'] / e['loss']:.1f}×)"
                     f" | {p['grad']:.3f} | {e['grad']:.3f} ({p['grad'] / e['grad']:.1f}×) | {p['hvp']:.3f} | "
                     f"{e['hvp']:.3f} ({p['hvp'] / e['hvp']:.1f}×) | {r['loss_err']:.1e} | {r['hv_err']:.1e} |")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
