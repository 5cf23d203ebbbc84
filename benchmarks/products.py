"""Hessian-vector products for fully connected and convolutional networks: which is fastest on this machine, and
is it exact.

Three ways to compute H v of the MSE loss on a fixed set of training examples:

- retained double backward (the engine's :class:`helpers.curvature.operators.HessianOperator`): one graph of ∇L built
  with ``create_graph=True``, then one backward pass through it per product;
- forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``, what the study's JAX code does), from scratch
  for every product;
- central finite differences of two float64 gradients (step 1e-4 along the unit direction).

Each is timed (the graph's one-off cost apart) and compared with the float64 double-backward product at the same
parameters. Optionally (``--unit``) one whole unit (one initialization) of a Myrtle-5 CNN sweep is timed.
Writes ``benchmarks/results/products.md``. Run: ``.venv/bin/python -m benchmarks.products``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.machine import describe_machine, timed, write_results
from helpers.nets.build import ModelSpec, build_model
from helpers.sweeps.config import SweepConfig, c_grid
from helpers.curvature.operators import HessianOperator, lanczos, model_loss
from helpers.curvature.reference import finite_difference, forward_over_reverse
from helpers.sweeps.engine import run_unit
from helpers.sweeps.problem import load_sweep_data
from helpers.nets.losses import mse

RESULTS = Path(__file__).parent / "results" / "products.md"
CASES = [("fcn", 4, 128, 2048), ("myrtle", 5, 16, 512), ("myrtle", 5, 16, 2048)]


def compare(arch: str, depth: int, width: int, n: int, repeats: int) -> dict:
    dataset = "fashion-mnist"
    config = SweepConfig(model=ModelSpec(arch, depth, width), dataset=dataset, n_train=max(n, 2048), n_sharpness=n)
    data = load_sweep_data(config, "cpu")
    x, y = data.x[:n], data.y[:n]
    model = build_model(config.model, tuple(x.shape[1:]), seed=0, device="cpu")
    params, fn = model_loss(model, mse, x, y)
    params64, fn64 = model_loss(build_model(config.model, tuple(x.shape[1:]), seed=0, device="cpu").double(), mse,
                                x.double(), y.double())
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(0))
    v = v / v.norm()
    reference = HessianOperator(fn64, params64)(v.double()[None])[0]

    def error(hv: torch.Tensor) -> float:
        return float((hv.double() - reference).norm() / reference.norm())

    graph, op = timed(lambda: HessianOperator(fn, params), repeats)
    retained, hv_retained = timed(lambda: op(v[None])[0], repeats)
    fwd = forward_over_reverse(fn, params)
    forward, hv_forward = timed(lambda: fwd(v), repeats)
    fd = finite_difference(fn64, params64)
    differences, hv_fd = timed(lambda: fd(v.double()), repeats)
    eig = lanczos(HessianOperator(fn, params), tol=1e-3, seed=0)
    return dict(net=f"{arch} d{depth} w{width}", n=n, params=v.numel(), graph=graph, retained=retained,
                forward=forward, differences=differences, err_retained=error(hv_retained),
                err_forward=error(hv_forward), err_fd=error(hv_fd), lanczos_products=eig.n_products,
                lanczos_s=graph + eig.n_products * retained)


def unit_time(width: int, x_step: float, n_train: int, n_sharpness: int) -> tuple[float, object]:
    config = SweepConfig(model=ModelSpec("myrtle", 5, width), dataset="fashion-mnist", n_train=n_train,
                         n_sharpness=n_sharpness, c_values=c_grid(7.0, x_step))
    data = load_sweep_data(config, "cpu")
    start = time.perf_counter()
    runs = run_unit(config, 0, data, "cpu").runs
    return time.perf_counter() - start, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--unit", action="store_true", help="also time one Myrtle-5 width-16 unit")
    parser.add_argument("--unit-x-step", type=float, default=0.25)
    parser.add_argument("--unit-n-train", type=int, default=2560)
    parser.add_argument("--unit-n-sharpness", type=int, default=512)
    args = parser.parse_args()
    rows = []
    for case in CASES:
        rows.append(compare(*case, repeats=args.repeats))
        print(rows[-1], flush=True)
    lines = ["# Hessian-vector products: fully connected vs convolutional", "",
             describe_machine(torch.device("cpu")), "",
             "MSE on Fashion-MNIST examples at initialization (seed 0). Median wall time per product over "
             f"{args.repeats} calls after a warm-up; the retained graph's one-off cost in its own column. Error: "
             "‖Hv − Hv_ref‖/‖Hv_ref‖ against the float64 double-backward product. λ^H (cold): the graph plus the "
             "products Lanczos needs from a random start to a residual ≤ 1e-3·λ, with retained products.", "",
             "| network | examples | parameters | graph (s) | retained (s/product) | fwd-over-rev (s/product) | "
             "finite diff. f64 (s/product) | error retained | error fwd-over-rev | error finite diff. | "
             "Lanczos products | λ^H cold (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['n']} | {r['params']} | {r['graph']:.3f} | {r['retained']:.3f} | "
                     f"{r['forward']:.3f} | {r['differences']:.3f} | {r['err_retained']:.1e} | "
                     f"{r['err_forward']:.1e} | {r['err_fd']:.1e} | {r['lanczos_products']} | {r['lanczos_s']:.2f} |")
    if args.unit:
        wall, runs = unit_time(16, args.unit_x_step, args.unit_n_train, args.unit_n_sharpness)
        measured = runs[runs.step >= 1].groupby("c").sharpness.apply(lambda s: s.notna().any())
        lines += ["", f"One unit of a Myrtle-5 (width 16) sweep, default search, {args.unit_n_train} training "
                  f"examples (the loss on all of them), λ^H on {args.unit_n_sharpness}, T = 10, c = 2^x in steps of "
                  f"{args.unit_x_step:g} up to the first divergence: **{wall:.0f} s**, {runs.c.nunique()} runs, "
                  f"{int(measured.sum())} of them measuring λ^H, {runs.step.ge(1).sum()} SGD steps."]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
