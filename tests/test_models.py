"""Models: shapes for every architecture and input size, criticality at initialization, output variants."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.nets.build import REGISTRY, ModelSpec, build_model
from helpers.data.images import standardize
from helpers.nets.losses import mse
from helpers.nets.models import FCN, UV, Dense
from helpers.nets.outputs import output_norm

SHAPES = [(1, 28, 28), (3, 32, 32)]


def registered() -> list[tuple[str, int, str, str]]:
    """Every (architecture, depth, parameterization, init) the registry allows (depths 1 and 4 where any is)."""
    return [(arch, depth, p, init) for arch, family in REGISTRY.items() if arch != "uv"
            for depth in (family.depths or (1, 4)) for p in family.parameterizations for init in family.inits]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("arch,depth,parameterization,init", registered())
def test_every_registered_model_maps_a_batch_to_ten_logits_and_has_a_hessian(arch, depth, parameterization, init,
                                                                             shape):
    from helpers.curvature.operators import HessianOperator, model_loss

    spec = ModelSpec(arch, depth, 4, parameterization, init=init)
    model = build_model(spec, shape, seed=0, device="cpu")
    x = torch.randn(3, *shape)
    out = model(x)
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    again = build_model(spec, shape, seed=0, device="cpu")(x)
    assert torch.equal(out, again)  # the seed fixes the initialization
    params, fn = model_loss(model, mse, x, torch.zeros(3, 10))
    op = HessianOperator(fn, params)
    assert torch.isfinite(op(torch.ones(1, op.dim))).all()  # second derivatives through every layer


def test_depth_counts_weight_layers():
    for depth in (1, 2, 5):
        model = FCN(12, depth, 7)
        assert sum(1 for m in model.modules() if isinstance(m, Dense)) == depth
    conv_count = sum(1 for n, _ in build_model(ModelSpec("myrtle", 7, 4), (1, 28, 28), seed=0).named_parameters()
                     if n.startswith("convs"))
    assert conv_count == 6


def test_seed_fixes_the_initialization():
    spec = ModelSpec("fcn", 3, 16)
    a, b, c = (build_model(spec, (1, 28, 28), seed=s, device="cpu") for s in (5, 5, 6))
    assert torch.equal(a.readout.weight, b.readout.weight)
    assert not torch.equal(a.readout.weight, c.readout.weight)


def _second_moments(model: FCN, x: torch.Tensor) -> list[float]:
    """Mean of h² over units and examples for every pre-activation h, the readout's output last."""
    moments, h = [], x.flatten(1)
    with torch.no_grad():
        for layer in model.hidden:
            pre = layer(h)
            moments.append(pre.pow(2).mean().item())
            h = torch.relu(pre)
        moments.append(model.readout(h).pow(2).mean().item())
    return moments


@pytest.mark.parametrize("parameterization", ["sp", "ntp"])
def test_initialization_is_critical_on_standardized_inputs(parameterization):
    # For He initialization on per-sample standardized inputs, E[h_l²] = 2 at every hidden layer and E[f²] = 1,
    # exactly in expectation over the weights at any width. Check the mean over seeds within 4 standard errors.
    x = standardize(torch.randn(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    samples = torch.tensor([_second_moments(FCN(784, 5, 128, parameterization=parameterization, seed=s), x)
                            for s in range(40)])
    mean, stderr = samples.mean(0), samples.std(0) / math.sqrt(samples.shape[0])
    expected = torch.tensor([2.0, 2.0, 2.0, 2.0, 1.0])
    assert torch.all((mean - expected).abs() < 4 * stderr), (mean, stderr)


def test_ntp_and_sp_compute_the_same_function_family():
    torch.manual_seed(0)
    sp, ntp = FCN(6, 3, 5, parameterization="sp", seed=1), FCN(6, 3, 5, parameterization="ntp", seed=1)
    with torch.no_grad():
        for a, b in zip(sp.modules(), ntp.modules()):
            if isinstance(a, Dense):
                b.weight.copy_(a.weight / b.scale)
    x = torch.randn(4, 6)
    assert torch.allclose(sp(x), ntp(x), atol=1e-6)


def test_bias_variant_starts_at_zero_and_is_trained():
    model = FCN(6, 3, 5, bias=True)
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    assert len(biases) == 3 and all(torch.all(b == 0) for b in biases)


def test_zero_last_layer_starts_at_zero_with_loss_005():
    spec = ModelSpec("fcn", 3, 32, output="zero-last-layer")
    model = build_model(spec, (1, 28, 28), seed=0, device="cpu")
    x = torch.randn(64, 1, 28, 28)
    y = torch.nn.functional.one_hot(torch.arange(64) % 10, 10).float()
    assert torch.all(model(x) == 0)
    assert mse(model(x), y).item() == pytest.approx(0.05, abs=1e-7)


@pytest.mark.parametrize("arch,depth,shape", [("fcn", 3, (1, 28, 28)), ("myrtle", 5, (3, 32, 32))])
def test_centered_network_is_zero_at_init_with_the_vanilla_gradient(arch, depth, shape):
    x = torch.randn(8, *shape)
    y = torch.nn.functional.one_hot(torch.arange(8) % 10, 10).float()
    vanilla = build_model(ModelSpec(arch, depth, 8), shape, seed=3, device="cpu")
    centered = build_model(ModelSpec(arch, depth, 8, output="centered"), shape, seed=3, device="cpu")
    assert torch.equal(centered(x), torch.zeros(8, 10))
    assert [n for n, _ in centered.named_parameters()] == [f"model.{n}" for n, _ in vanilla.named_parameters()]
    # The gradient of f(θ) − f(θ₀) w.r.t. θ is that of f(θ): compare the output Jacobian-vector products.
    g_vanilla = torch.autograd.grad((vanilla(x) * y).sum(), list(vanilla.parameters()))
    g_centered = torch.autograd.grad((centered(x) * y).sum(), list(centered.parameters()))
    for a, b in zip(g_vanilla, g_centered):
        assert torch.allclose(a, b)
    with torch.no_grad():
        next(centered.parameters()).add_(0.1)
    assert centered(x).abs().max() > 0


@pytest.mark.parametrize("alpha", [0.1, 1.0, 30.0])
def test_alpha_scaling_gives_output_norm_alpha(alpha):
    x = torch.randn(256, 1, 28, 28)
    model = build_model(ModelSpec("fcn", 4, 64, output="alpha", output_value=alpha), (1, 28, 28), seed=0,
                        device="cpu", reference_x=x)
    assert output_norm(model, x) == pytest.approx(alpha, rel=1e-5)


def test_width_scaled_output_divides_by_width_to_the_s():
    x = torch.randn(4, 1, 28, 28)
    base = build_model(ModelSpec("fcn", 3, 64), (1, 28, 28), seed=0, device="cpu")
    for s in (-0.5, 0.0, 0.5):
        scaled = build_model(ModelSpec("fcn", 3, 64, output="width-scaled", output_value=s), (1, 28, 28), seed=0,
                             device="cpu")
        assert torch.allclose(scaled(x), base(x) / 64**s, rtol=1e-5, atol=1e-6)


def test_uv_model_is_vTu_x_over_sqrt_w():
    model = UV(9, seed=2)
    x = torch.tensor([[1.0], [-2.0]])
    expected = (model.u * model.v).sum() * x / 3.0
    assert torch.allclose(model(x), expected)


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="mlp"), "unknown architecture"),
    (dict(width=-3), "width must be a positive integer"),
    (dict(depth=0), "depth must be a positive integer"),
    (dict(width=2.5), "width must be a positive integer"),
    (dict(parameterization="mup"), "parameterization"),
    (dict(output="huge"), "unknown output variant"),
    (dict(output="alpha"), "needs output_value"),
    (dict(arch="myrtle", depth=6), r"arch='myrtle' has depths \[5, 7, 10\], got depth=6"),
])
def test_bad_specs_fail_with_a_clear_message_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelSpec(**kwargs)


def test_models_are_built_on_the_requested_device():
    model = build_model(ModelSpec("fcn", 2, 4), (1, 28, 28), seed=0, device="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
    with pytest.raises(ValueError, match="reference_x"):
        build_model(ModelSpec("fcn", 2, 4, output="alpha", output_value=1.0), (1, 28, 28), seed=0)


def test_variant_labels_name_the_intervention_and_its_value():
    assert ModelSpec().variant == "standard"
    assert ModelSpec(output="centered").variant == "centered"
    assert ModelSpec(output="alpha", output_value=0.1).variant == "alpha=0.1"
    assert ModelSpec(output="width-scaled", output_value=-0.5).variant == "width-scaled s=-0.5"


def test_resnet_follows_the_studys_code_by_default_with_he_as_an_option():
    lecun = build_model(ModelSpec("resnet", 18, 16), (3, 32, 32), seed=0, device="cpu")
    he = build_model(ModelSpec("resnet", 18, 16, init="he"), (3, 32, 32), seed=0, device="cpu")
    assert lecun.readout.bias is not None and torch.equal(lecun.readout.bias, torch.zeros(10))
    assert he.readout.bias is None
    for name in ("stem", "blocks.3.conv1", "blocks.2.shortcut"):
        w_lecun = dict(lecun.named_modules())[name].weight
        w_he = dict(he.named_modules())[name].weight
        fan_in = w_lecun[0].numel()
        assert w_lecun.var().item() == pytest.approx(1 / fan_in, rel=0.15)
        assert w_he.var().item() == pytest.approx(2 / fan_in, rel=0.15)
    with pytest.raises(ValueError, match="inits"):
        ModelSpec("fcn", 2, 8, init="he")


def test_a_convolution_on_the_cpu_computes_the_plain_convolution():
    # the channels-last layout is a layout only: the same values as F.conv2d on contiguous tensors
    model = build_model(ModelSpec("myrtle", 5, 6), (1, 12, 12), seed=0, device="cpu")
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    conv = model.convs[1]
    assert conv.channels_last
    h = torch.randn(3, 6, 12, 12, generator=torch.Generator().manual_seed(2), requires_grad=True)
    weight = conv.weight.detach().clone().requires_grad_(True)
    reference = torch.nn.functional.conv2d(h, weight, padding=1)
    out = conv(h)
    assert torch.allclose(out, reference, atol=1e-5)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    grads = torch.autograd.grad((out * probe).sum(), [h, conv.weight])
    reference_grads = torch.autograd.grad((reference * probe).sum(), [h, weight])
    for g, r in zip(grads, reference_grads):
        assert torch.allclose(g, r, atol=1e-4, rtol=1e-5)
    assert model(x).shape == (3, 10)
