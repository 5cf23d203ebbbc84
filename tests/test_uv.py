"""The uv model: closed-form map and Hessian against autograd, moments against Monte Carlo, c_loss ≥ 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sympy as sp
import torch

from helpers.nets.models import UV
from helpers.nets.uv import (hessian_frobenius_sq, hessian_top_eigenvalue, hessian_trace, initial_state, simulate,
                             uv_critical_constants, uv_step)
from helpers.nets.uv_symbolic import moment_f_over_lambda, w


def _torch_state(width: int, seed: int):
    model = UV(width, seed=seed).double()
    f = (model.u @ model.v).item() / np.sqrt(width)
    lam = ((model.u**2).sum() + (model.v**2).sum()).item() / width
    return model, f, lam


def _loss(model: UV, y: float) -> torch.Tensor:
    return 0.5 * (model(torch.ones(1, dtype=torch.float64)) - y).pow(2).sum()


@pytest.mark.parametrize("width,y,lr", [(1, 0.0, 0.3), (7, 0.0, 0.9), (16, 0.7, 0.4), (64, -1.3, 1.7)])
def test_closed_form_map_equals_an_autograd_gd_step(width, y, lr):
    model, f, lam = _torch_state(width, seed=width)
    grads = torch.autograd.grad(_loss(model, y), [model.u, model.v])
    with torch.no_grad():
        model.u -= lr * grads[0]
        model.v -= lr * grads[1]
    f_next, lam_next = uv_step(np.float64(f), np.float64(lam), lr, width, y)
    assert f_next == pytest.approx((model.u @ model.v).item() / np.sqrt(width), rel=1e-12, abs=1e-12)
    assert lam_next == pytest.approx(((model.u**2).sum() + (model.v**2).sum()).item() / width, rel=1e-12)


@pytest.mark.parametrize("width,y", [(1, 0.0), (3, 0.0), (8, 0.5), (20, -2.0), (5, 3.0)])
def test_trace_frobenius_and_top_eigenvalue_equal_the_exact_hessian(width, y):
    model, f, lam = _torch_state(width, seed=100 + width)
    theta = torch.cat([model.u.detach(), model.v.detach()])

    def loss(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((t[:width] @ t[width:]) / np.sqrt(width) - y) ** 2

    H = torch.func.hessian(loss)(theta)
    eig = torch.linalg.eigvalsh(H)
    assert hessian_trace(f, lam, width, y) == pytest.approx(torch.trace(H).item(), rel=1e-10)
    assert hessian_frobenius_sq(f, lam, width, y) == pytest.approx((H**2).sum().item(), rel=1e-10)
    assert hessian_top_eigenvalue(f, lam, width, y) == pytest.approx(eig[-1].item(), rel=1e-10)


def test_sympy_moments_match_monte_carlo_within_error_bars():
    for width in (1, 4, 32):
        f0, lam0 = initial_state(width, 200_000, seed=width)
        for power in (2, 4):
            samples = (f0 / lam0) ** power
            exact = float(moment_f_over_lambda(power).subs(w, width))
            stderr = samples.std() / np.sqrt(len(samples))
            assert abs(samples.mean() - exact) < 4 * stderr, (width, power, samples.mean(), exact, stderr)
    assert sp.limit(moment_f_over_lambda(2), w, sp.oo) == sp.Rational(1, 4)


def test_divergent_runs_become_nan_and_stay_so():
    f, lam = simulate(np.array([1.0]), np.array([2.0]), np.array([5.0]), 20, 4)
    assert np.isnan(f[0, -1]) and not np.isnan(f[0, 0])
    first = np.argmax(np.isnan(f[0]))
    assert np.isnan(f[0, first:]).all()


def test_c_loss_is_at_least_two_and_grows_as_width_shrinks():
    c = np.round(2 ** np.arange(0, 4.01, 0.05), 6)
    means = {}
    for width in (2, 16, 512):
        k = uv_critical_constants(width, c, n_init=200, steps=10, seed=0)
        top = k[k.measure == "top"]
        assert (top.c_loss.dropna() >= 2.0 - 1e-9).all()
        means[width] = top.c_loss.mean()
    assert means[2] > means[16] > means[512]
    assert means[512] == pytest.approx(2.0, abs=0.15)


def test_the_uv_phase_diagram_averages_over_initializations():
    from helpers.analysis.phases import average_constants

    c = np.round(2 ** np.arange(0, 4.01, 0.1), 6)
    k = pd.concat([uv_critical_constants(w, c, n_init=20, steps=10, seed=w) for w in (2, 16)], ignore_index=True)
    top = average_constants(k[k.measure == "top"].drop(columns="measure").assign(depth=1))
    assert sorted(top.width) == [2, 16] and (top.n_init == 20).all()  # one row per width, not per initialization
    assert top.set_index("width").c_loss.to_dict() == pytest.approx(
        k[k.measure == "top"].groupby("width").c_loss.mean().to_dict())


def test_bad_width_is_rejected():
    with pytest.raises(ValueError, match="width must be a positive integer"):
        initial_state(0, 10, seed=0)
