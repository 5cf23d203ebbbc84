"""Curvature benchmark: gradient vs Hessian-vector product, Lanczos vs the paper's power iteration, stacking.

FCN depth 4 at widths 128 and 512 on 2048 Fashion-MNIST examples (MSE, at initialization). Writes
``benchmarks/results/curvature.md``. Run: ``make benchmark`` or ``.venv/bin/python -m benchmarks.curvature``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.func import grad, jvp

from benchmarks.machine import describe_machine, median_seconds, write_results
from helpers.nets.build import ModelSpec, build_model
from helpers.curvature.operators import HessianOperator, lanczos, model_loss, power_iteration
from helpers.curvature.stacking import stacked_loss
from helpers.data.images import load_dataset
from helpers.core.device import default_device
from helpers.nets.losses import mse

RESULTS = Path(__file__).parent / "results" / "curvature.md"
WIDTHS = (128, 512)
N_EXAMPLES = 2048
N_STACKED = 16


def products_to_accuracy(op: HessianOperator, reference: float, rel: float, limit: int = 60) -> int:
    """Smallest number of Lanczos products (from the same random start) whose estimate is within ``rel``."""
    for k in range(1, limit + 1):
        if abs(lanczos(op, tol=0.0, max_iter=k).eigenvalue.item() - reference) <= rel * abs(reference):
            return k
    return limit + 1


def bench_width(width: int, data, device: torch.device) -> dict:
    spec = ModelSpec("fcn", 4, width)
    model = build_model(spec, tuple(data.x.shape[1:]), seed=0, device=device)
    params, fn = model_loss(model, mse, data.x, data.y)
    row: dict = {"width": width, "params": sum(p.numel() for p in params)}

    def gradient() -> None:
        theta = [p.detach().requires_grad_(True) for p in params]
        torch.autograd.grad(fn(theta), theta)

    row["grad_ms"] = 1e3 * median_seconds(gradient)
    op = HessianOperator(fn, params)
    v = torch.randn(1, op.dim, device=device)
    row["hvp_ms"] = 1e3 * median_seconds(lambda: op(v))
    row["setup_ms"] = 1e3 * median_seconds(lambda: HessianOperator(fn, params))
    flat_v = [t for t in v[0].split([p.numel() for p in params])]
    tangents = tuple(t.reshape(p.shape) for t, p in zip(flat_v, params))
    g = grad(lambda *theta: fn(list(theta)), argnums=tuple(range(len(params))))
    row["fwd_over_rev_ms"] = 1e3 * median_seconds(lambda: jvp(g, tuple(params), tangents))

    reference = lanczos(op, tol=1e-6, max_iter=200)
    top = reference.eigenvalue.item()
    row["sharpness"] = top
    row["lanczos_products_1e-3"] = products_to_accuracy(op, top, 1e-3)
    stopped = lanczos(op, tol=1e-3)
    row["lanczos_stop_products"] = stopped.n_products
    row["lanczos_stop_error"] = abs(stopped.eigenvalue.item() - top) / top
    errors = [abs(power_iteration(op, n_iter=20, seed=s).eigenvalue.item() - top) / top for s in range(3)]
    row["power20_error"] = max(errors)

    models = [build_model(spec, tuple(data.x.shape[1:]), seed=s, device=device) for s in range(N_STACKED)]
    singles = []
    for m in models:
        single_params, single_fn = model_loss(m, mse, data.x, data.y)
        singles.append(HessianOperator(single_fn, single_params))
    stacked_params, stacked_fn = stacked_loss(models, mse, data.x, data.y)
    stacked = HessianOperator(stacked_fn, stacked_params, stacked=True)
    vs = torch.randn(N_STACKED, stacked.dim, device=device)
    row["loop16_ms"] = 1e3 * median_seconds(lambda: [op_(vs[i : i + 1]) for i, op_ in enumerate(singles)], repeats=3)
    row["stacked16_ms"] = 1e3 * median_seconds(lambda: stacked(vs), repeats=3)
    return row


def main() -> None:
    device = default_device()
    data = load_dataset("fashion-mnist", size=N_EXAMPLES, seed=0, device=device)
    rows = [bench_width(w, data, device) for w in WIDTHS]
    lines = [
        "# Curvature benchmark",
        "",
        describe_machine(device),
        "",
        f"FCN depth 4, MSE, {N_EXAMPLES} Fashion-MNIST examples, at initialization (seed 0); times are medians.",
        "",
        "| width | parameters | gradient (ms) | HVP, retained graph (ms) | HVP / gradient | graph setup (ms) "
        "| HVP, torch.func fwd-over-rev (ms) | fwd-over-rev / gradient |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['params']:,} | {r['grad_ms']:.1f} | {r['hvp_ms']:.1f} | "
                     f"{r['hvp_ms'] / r['grad_ms']:.2f} | {r['setup_ms']:.1f} | {r['fwd_over_rev_ms']:.1f} | "
                     f"{r['fwd_over_rev_ms'] / r['grad_ms']:.2f} |")
    lines += [
        "",
        "Top eigenvalue: products needed and error against a converged reference (Lanczos, residual ≤ 1e-6·λ).",
        "",
        "| width | sharpness | Lanczos products for 1e-3 rel. error | Lanczos stopped by residual ≤ 1e-3·λ: "
        "products | its rel. error | power iteration, 20 products: worst rel. error (3 starts) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['sharpness']:.4f} | {r['lanczos_products_1e-3']} | "
                     f"{r['lanczos_stop_products']} | {r['lanczos_stop_error']:.1e} | {r['power20_error']:.1e} |")
    lines += [
        "",
        f"One HVP for each of {N_STACKED} models: a Python loop over per-model operators vs one stacked operator.",
        "",
        f"| width | loop over {N_STACKED} (ms) | stacked {N_STACKED} (ms) | stacked / loop |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['width']} | {r['loop16_ms']:.1f} | {r['stacked16_ms']:.1f} | "
                     f"{r['stacked16_ms'] / r['loop16_ms']:.2f} |")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
