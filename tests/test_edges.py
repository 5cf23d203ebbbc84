"""Optimizers' edges against independent references: the critical learning rate of a quadratic in closed form, Adam's
preconditioned sharpness against numpy's eigenvalues of the dense P^-1/2 H P^-1/2, Adam's first update against its
formula, momentum's edge against the divergence of torch.optim.SGD on a quadratic; and the diagnosis with an
optimizer (the same constants as the engine for plain SGD, the summary, bad input)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers.data.images import Data
from helpers.diagnosis import diagnose
from helpers.diagnosis.edges import critical_lr, first_update, preconditioned_sharpness
from helpers.nets.losses import mse
from helpers.sweeps.problem import Problem


def _regression(n=64, d=5, k=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen) * torch.linspace(0.3, 2.0, d)   # an anisotropic quadratic
    return x, torch.randn(n, k, generator=gen)


def _dense(model: nn.Module, loss, x, y) -> tuple[np.ndarray, np.ndarray]:
    """The gradient and Hessian of θ ↦ loss(model(x; θ), y) in float64, by torch.autograd.functional."""
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def fn(theta):
        parts, i = {}, 0
        for name, shape in zip(names, shapes):
            parts[name] = theta[i:i + shape.numel()].reshape(shape)
            i += shape.numel()
        return loss(torch.func.functional_call(model, parts, (x.double(),)), y.double())

    grad = torch.autograd.functional.jacobian(fn, flat).numpy()
    return grad, torch.autograd.functional.hessian(fn, flat).numpy()


def test_critical_lr_of_gradient_descent_on_a_quadratic_is_twice_gtg_over_gthg():
    x, y = _regression()
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    g, h = _dense(copy.deepcopy(model), mse, x, y)
    update = first_update(model, lambda p: torch.optim.SGD(p, lr=0.0), mse, x, y)
    assert np.allclose(torch.cat([u.reshape(-1) for u in update]).numpy(), -g, atol=1e-5)
    expected = 2 * g @ g / (g @ h @ g)
    found = critical_lr(model, mse, x, y, update, precision=1e-3)
    assert found.lr == pytest.approx(expected, rel=2e-3)
    assert found.sharpness <= np.linalg.eigvalsh(h)[-1] * (1 + 1e-3)        # curvature along g ≤ λ_max
    assert found.forward_passes < 60


def test_adams_first_update_and_preconditioned_sharpness_match_dense_references():
    x, y = _regression(n=32, d=4)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    eps = 1e-3   # large enough that the preconditioner's spread stays well inside float32
    factory = lambda p: torch.optim.Adam(p, eps=eps, betas=(0.8, 0.99))  # noqa: E731
    g, h = _dense(copy.deepcopy(model), mse, x, y)
    update = torch.cat([u.reshape(-1) for u in first_update(model, factory, mse, x, y)]).numpy()
    assert np.allclose(update, -g / (np.abs(g) + eps), rtol=1e-3, atol=1e-5)       # m̂/(√v̂ + ε) at step 1
    d = 1 / np.sqrt(np.abs(g) + eps)
    expected = np.linalg.eigvalsh(d[:, None] * h * d[None, :])[-1] * (1 - 0.8) / (1 + 0.8)
    problem = Problem.of(model, 1, mse, Data(x, y, y, "test"), len(x), None)
    found = preconditioned_sharpness(problem.hessian(problem.params0), factory(model.parameters()))
    assert found == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize("settings", [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.5, nesterov=True),
                                      dict(momentum=0.9, dampening=0.5)])
def test_momentums_hessian_edge_is_c_equal_2_on_a_quadratic(settings):
    """Full-batch SGD on a linear least-squares problem: at c below 2 (in units of the Hessian edge) torch.optim.SGD
    with these settings is stable, above 2 it diverges."""
    x, y = _regression(n=32)
    report = diagnose(lambda: nn.Linear(5, 2), x, y, "mse", seeds=(0,), steps=400, held=None, progress=False,
                      c_values=[1.5, 1.9, 1.98, 2.05, 2.3, 3.0],
                      optimizer=lambda p: torch.optim.SGD(p, lr=0.0, **settings))
    assert report.edge == "hessian" and report.c_max[0] == 1.98
    assert not report.per_seed.censored[0]


def test_plain_sgd_as_an_optimizer_gives_the_engines_constants():
    gen = torch.Generator().manual_seed(3)
    x, labels = torch.randn(192, 8, generator=gen), torch.randint(0, 3, (192,), generator=gen)
    build = lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))  # noqa: E731
    common = dict(batch_size=64, seeds=(0, 1), c_values=[2 ** (k / 4) for k in range(-4, 33)], progress=False,
                  n_sharpness=192)
    engine = diagnose(build, x, labels, "xent", **common)
    optimizer = diagnose(build, x, labels, "xent", optimizer=lambda p: torch.optim.SGD(p, lr=0.0), **common)
    assert np.allclose(optimizer.sharpness0, engine.sharpness0, rtol=1e-4)
    assert np.array_equal(optimizer.c_loss, engine.c_loss) and np.array_equal(optimizer.c_max, engine.c_max)
    assert np.isnan(optimizer.c_sharp).all()
    assert (optimizer.per_seed.critical <= optimizer.per_seed.lambda_H0 * 1.001).all()


def test_the_summary_names_the_optimizer_and_edge_and_never_calls_a_censored_c_max_a_divergence():
    x, y = _regression(n=32)
    report = diagnose(lambda: nn.Linear(5, 2), x, y, "mse", seeds=(0,), steps=5, progress=False,
                      c_values=[0.01, 0.02], optimizer=lambda p: torch.optim.Adam(p))
    text = str(report)
    assert "Adam (β₁ 0.9, β₂ 0.999)" in text and "preconditioned sharpness" in text and "critical" in text
    assert "no divergence up to η" in text and "diverges above" not in text
    assert np.isnan(report.suggested_range()[1])
    critical = diagnose(lambda: nn.Linear(5, 2), x, y, "mse", seeds=(0,), steps=5, progress=False,
                        c_values=[0.5, 1.0, 64.0], optimizer=lambda p: torch.optim.RMSprop(p), edge=None)
    assert critical.edge == "critical" and "critical sharpness" in str(critical)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(optimizer=lambda p: torch.optim.SGD(p, lr=0.0), edge="preconditioned"), ValueError, "not defined"),
    (dict(optimizer=lambda p: torch.optim.Adam(p), edge="hessian"), ValueError, "SGD's"),
    (dict(optimizer=lambda p: torch.optim.Adam(p), edge="curvy"), ValueError, "unknown edge"),
    (dict(optimizer=lambda p: list(p)), TypeError, "torch.optim.Optimizer"),
    (dict(c_values=[]), ValueError, "c_values is empty"),
])
def test_bad_optimizer_input_gets_one_clear_error(kwargs, error, match):
    x, y = _regression(n=16)
    with pytest.raises(error, match=match):
        diagnose(lambda: nn.Linear(5, 2), x, y, "mse", seeds=(0,), steps=2, progress=False,
                 **{"c_values": [1.0], **kwargs})


def test_an_optimizer_diagnosis_leaves_the_callers_model_and_random_state_as_they_were():
    x, y = _regression(n=32)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    state = torch.get_rng_state()
    report = diagnose(model, x, y, "mse", batch_size=8, steps=3, c_values=[0.5, 1.0, 4.0, 64.0], progress=False,
                      optimizer=lambda p: torch.optim.AdamW(p, weight_decay=0.1))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert report.optimizer.name == "AdamW" and report.optimizer.weight_decay == 0.1
    assert str(report.optimizer).startswith("AdamW (") and "weight decay 0.1" in str(report.optimizer)
