"""How close a Myrtle-5 (width 16) unit's arithmetic runs to this machine's peak.

The reference is the rate of one large float32 matrix product (2048 × 2048). Against it: each 3×3 convolution of
the network alone on one slice of 128 images (channels-last, as the engine runs it), and the loss on all 2,560
training images as the engine computes L_t (``helpers.curvature.slicing.sliced_losses``), whose multiply-adds are
counted from the layers' output sizes. An SGD step's gradient on 512 images and a Hessian-vector product on 512 are
timed beside them, as multiples of a forward pass on the same 512 images.

Writes ``benchmarks/results/peak.md``. Run: ``.venv/bin/python -m benchmarks.peak``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.machine import describe_machine, median_seconds, write_results
from helpers.nets.build import ModelSpec, build_model
from helpers.sweeps.config import SweepConfig
from helpers.curvature.operators import HessianOperator
from helpers.curvature.stacking import stack_models
from helpers.sweeps.problem import load_sweep_data
from helpers.nets.losses import get_loss
from helpers.nets.models import Conv
from helpers.curvature.slicing import loss_pieces, losses_and_gradient, sliced_losses

RESULTS = Path(__file__).parent / "results" / "peak.md"
SLICE = 128


def conv_layers(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[Conv, torch.Tensor, int]]:
    """Each convolution of ``model`` with its input on ``x`` and its multiply-adds per example."""
    found = []
    hooks = [m.register_forward_hook(lambda m, i, out: found.append(
        (m, i[0].detach(), out[0].numel() * m.weight[0].numel()))) for m in model.modules() if isinstance(m, Conv)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return found


def main() -> None:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    peak = 2 * 2048**3 / median_seconds(lambda: a @ b) / 1e9
    config = SweepConfig(model=ModelSpec("myrtle", 5, 16), dataset="fashion-mnist", n_train=2560, n_sharpness=512)
    data = load_sweep_data(config, "cpu")
    model = build_model(config.model, tuple(data.x.shape[1:]), seed=0, device=torch.device("cpu"),
                        reference_x=data.x[:512])
    loss = get_loss("mse")
    rows = [("matrix product 2048 × 2048", "—", 2 * 2048**3 / 1e9 / peak, peak)]
    layers = conv_layers(model, data.x[:SLICE])
    for k, (conv, x, macs) in enumerate(layers):
        with torch.no_grad():
            t = median_seconds(lambda conv=conv, x=x: conv(x), repeats=20)
        shape = f"{x.shape[1]} → {conv.weight.shape[0]} channels, {x.shape[2]}×{x.shape[3]}"
        rows.append((f"convolution {k} ({shape})", f"{SLICE} images", t, 2 * macs * SLICE / t / 1e9))
    per_example = sum(macs for _, _, macs in layers)
    params, forward = stack_models([model])
    t_loss = median_seconds(lambda: sliced_losses(loss, forward, params, data.x, data.y, SLICE))
    rows.append(("L_t: the loss on the training set (every layer)", f"{len(data.x)} images", t_loss,
                 2 * per_example * len(data.x) / t_loss / 1e9))
    x, y = data.x[:512], data.y[:512]
    t_forward = median_seconds(lambda: sliced_losses(loss, forward, params, x, y, SLICE))
    t_grad = median_seconds(lambda: losses_and_gradient(loss, forward, params, x, y, SLICE))
    op = HessianOperator(loss_pieces(loss, forward, x, y, SLICE), params, stacked=True)
    v = torch.randn(1, op.dim)
    t_product = median_seconds(lambda: op(v))
    lines = ["# Arithmetic rate of a Myrtle-5 (width 16) unit's work", "", describe_machine(torch.device("cpu")), "",
             "Median of 5 (convolutions: 20) timed calls after a warm-up. GFLOP/s counts 2 per multiply-add of the "
             "convolutions (the pools, ReLUs and the readout are left out, so the rate of a whole pass is a lower "
             "bound). The matrix product sets the reference rate.", "",
             "| operation | examples | seconds | GFLOP/s | of the matrix product's rate |",
             "| --- | --- | --- | --- | --- |"]
    for name, n, t, rate in rows:
        lines.append(f"| {name} | {n} | {t:.4f} | {rate:.1f} | {100 * rate / peak:.0f} % |")
    lines += ["", f"On 512 images: a forward pass {t_forward:.3f} s; an SGD step's loss and gradient {t_grad:.3f} s "
              f"({t_grad / t_forward:.1f} forward passes); a Hessian-vector product through the retained graph "
              f"{t_product:.3f} s ({t_product / t_forward:.1f} forward passes)."]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
