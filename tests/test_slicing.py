"""Slice-by-slice losses, gradients and Hessian products against the whole-set computation and the exact Hessian."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad

from helpers.nets.build import ModelSpec, build_model
from helpers.curvature.operators import HessianOperator
from helpers.curvature.reference import exact_hessian
from helpers.curvature.stacking import stack_models
from helpers.nets.losses import cross_entropy, mse
from helpers.curvature.slicing import (largest_activation, loss_pieces, losses_and_gradient, slice_size, sliced_losses,
                                       spans)


def _cnn(n: int = 13):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=gen), 10).float()
    model = build_model(ModelSpec("myrtle", 5, 2), (1, 8, 8), seed=3, device="cpu")
    return model, x, y


@pytest.mark.parametrize("n,size,expected", [(10, 4, [(0, 4), (4, 8), (8, 10)]), (10, None, [(0, 10)]),
                                             (10, 10, [(0, 10)]), (10, 64, [(0, 10)])])
def test_spans_cover_every_example_once(n, size, expected):
    assert spans(n, size) == expected


@pytest.mark.parametrize("loss", [mse, cross_entropy])
def test_sliced_loss_and_gradient_equal_the_whole_set_ones(loss):
    model, x, y = _cnn()
    params, forward = stack_models([model])
    names = [name for name, _ in model.named_parameters()]
    theta = {name: p[0] for name, p in zip(names, params)}

    def whole(theta):
        return loss(functional_call(model, theta, (x,)), y)

    reference = grad(whole)(theta)
    for size in (None, 5, 1):
        value = sliced_losses(loss, forward, params, x, y, size)
        value_g, gradient = losses_and_gradient(loss, forward, params, x, y, size)
        assert value.shape == (1,) and float(value) == pytest.approx(float(whole(theta)), rel=1e-6)
        assert float(value_g) == pytest.approx(float(value), rel=1e-6)
        for name, g in zip(names, gradient):
            assert torch.allclose(g[0], reference[name], atol=1e-6, rtol=1e-5)


def test_hessian_products_over_slices_equal_the_exact_hessian_of_a_tiny_cnn():
    model, x, y = _cnn()
    params, forward = stack_models([model])
    pieces = loss_pieces(mse, forward, x, y, 4)
    assert len(pieces) == 4
    H = exact_hessian(lambda theta: sum(piece(theta) for piece in pieces), params)
    whole = HessianOperator(lambda theta: mse(forward(theta, x)[0], y), params, stacked=True)
    H_whole = exact_hessian(lambda theta: mse(forward(theta, x)[0], y), params)
    assert torch.allclose(H, H_whole, atol=1e-6)
    op = HessianOperator(pieces, params, stacked=True)
    v = torch.randn(1, op.dim, generator=torch.Generator().manual_seed(0))
    reference = H_whole @ v[0]
    assert torch.allclose(op(v)[0], reference, atol=1e-5 * float(reference.abs().max()), rtol=1e-4)
    assert op.n_products == 1
    assert float(op.loss) == pytest.approx(float(whole.loss), rel=1e-6)
    assert torch.allclose(op.gradient, whole.gradient, atol=1e-7, rtol=1e-5)


def test_a_hessian_operator_needs_a_loss():
    model, x, y = _cnn()
    params, _ = stack_models([model])
    with pytest.raises(ValueError, match="no loss function"):
        HessianOperator([], params, stacked=True)


def test_slice_size_fits_the_largest_activation_in_the_budget():
    model = build_model(ModelSpec("myrtle", 5, 16), (1, 28, 28), seed=0, device="cpu")
    example = torch.zeros(1, 1, 28, 28)
    assert largest_activation(model, example) == 16 * 28 * 28
    per_example = 16 * 28 * 28 * 4
    size = slice_size(model, example, budget=100 * per_example)
    assert size == 64  # the largest power of two ≤ 100
    assert slice_size(model, example, models=2, budget=100 * per_example) == 32
    assert slice_size(model, example, budget=1) == 16  # never below 16 examples
    fcn = build_model(ModelSpec("fcn", 2, 8), (1, 28, 28), seed=0, device="cpu")
    assert largest_activation(fcn, example) == 784  # the input is the largest


def test_a_network_with_batch_statistics_is_never_sliced():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(10))
    example = torch.zeros(1, 1, 28, 28)
    model(torch.zeros(2, 1, 28, 28))
    assert slice_size(model, example, budget=1) is None
    model.eval()  # running statistics: a function of each example alone
    assert slice_size(model, example, budget=1) == 16
