"""Curvature against independent references: the exact Hessian (torch.func.hessian + eigvalsh) and scipy's eigsh."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from helpers.nets.build import ModelSpec, build_model
from helpers.curvature.operators import (HessianOperator, frobenius_norm_sq, hutchinson_trace, lanczos, model_loss,
                                         power_iteration)
from helpers.curvature.reference import exact_hessian, finite_difference, forward_over_reverse
from helpers.nets.losses import cross_entropy, mse
from helpers.curvature.stacking import stacked_loss


def _problem(seed: int = 0, n: int = 48, width: int = 6, depth: int = 3, loss=mse):
    gen = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=gen), 10).float()
    model = build_model(ModelSpec("fcn", depth, width), (1, 4, 4), seed=seed, device="cpu")
    return model, x, y, model_loss(model, loss, x, y)


@pytest.mark.parametrize("loss", [mse, cross_entropy])
def test_hvp_equals_the_exact_hessian_times_v(loss):
    _, _, _, (params, fn) = _problem(loss=loss)
    H = exact_hessian(fn, params)
    op = HessianOperator(fn, params)
    v = torch.randn(1, op.dim)
    assert torch.allclose(op(v)[0], H @ v[0], atol=1e-5, rtol=1e-4)
    assert op.n_products == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_finds_the_top_eigenvalue_of_the_exact_hessian(seed):
    _, _, _, (params, fn) = _problem(seed)
    eigvals, eigvecs = torch.linalg.eigh(exact_hessian(fn, params).double())
    result = lanczos(HessianOperator(fn, params), tol=1e-5, seed=seed)
    assert bool(result.converged)
    assert result.eigenvalue.item() == pytest.approx(eigvals[-1].item(), rel=1e-4)
    overlap = abs(torch.dot(result.eigenvector.double(), eigvecs[:, -1]).item())
    assert overlap == pytest.approx(1.0, abs=1e-3)
    assert result.residual.item() <= 1e-5 * abs(result.eigenvalue.item()) * 1.0001


def _indefinite_quadratic(spectrum: list[float]):
    """L(θ) = ½ θᵀAθ with A = Q diag(spectrum) Qᵀ for a random orthogonal Q; its Hessian is A."""
    gen = torch.Generator().manual_seed(7)
    q, _ = torch.linalg.qr(torch.randn(len(spectrum), len(spectrum), generator=gen))
    A = q @ torch.diag(torch.tensor(spectrum)) @ q.T
    theta = [torch.randn(len(spectrum), generator=gen)]
    return A, theta, lambda p: 0.5 * p[0] @ A @ p[0]


def test_lanczos_is_right_where_power_iteration_is_wrong():
    # The most negative eigenvalue has the larger magnitude: power iteration converges to it, Lanczos must not.
    spectrum = [-5.0, -1.0, 0.3, 1.0, 2.0] + [0.1 * i for i in range(15)]
    A, theta, fn = _indefinite_quadratic(spectrum)
    reference = torch.linalg.eigvalsh(A.double())
    assert reference[-1].item() == pytest.approx(2.0, abs=1e-5)
    top = lanczos(HessianOperator(fn, theta), tol=1e-6)
    assert top.eigenvalue.item() == pytest.approx(2.0, rel=1e-4)
    power = power_iteration(HessianOperator(fn, theta))
    assert power.eigenvalue.item() < -4.0
    assert power.n_products == 20


def test_lanczos_keeps_its_basis_orthogonal_over_many_iterations():
    # A clustered top (1.0, 0.99, 0.98, ...) converges slowly: the basis grows past its first allocation (8 vectors),
    # and only a basis kept orthogonal finds the top eigenvalue without ghost copies of it.
    spectrum = [1.0 - 0.01 * i for i in range(60)] + [0.05 * i for i in range(10)]
    A, theta, fn = _indefinite_quadratic(spectrum)
    reference = torch.linalg.eigvalsh(A.double())[-1].item()
    result = lanczos(HessianOperator(fn, theta), tol=1e-6, max_iter=60, seed=3)
    assert result.n_products > 16 and bool(result.converged)
    assert result.eigenvalue.item() == pytest.approx(reference, rel=1e-5)
    vec = result.eigenvector.double()
    assert (A.double() @ vec - reference * vec).norm().item() < 1e-2


def test_lanczos_stops_once_a_lower_bound_settles_the_question():
    # "Is λ above 0.9?" is answered by the first Ritz value above 0.9: a lower bound on the top eigenvalue (1.0)
    spectrum = [1.0 - 0.01 * i for i in range(60)] + [0.05 * i for i in range(10)]
    A, theta, fn = _indefinite_quadratic(spectrum)
    full = lanczos(HessianOperator(fn, theta), tol=1e-6, max_iter=60, seed=3)
    early = lanczos(HessianOperator(fn, theta), tol=1e-6, max_iter=60, seed=3, settled=lambda top: top > 0.9)
    assert 0.9 < early.eigenvalue.item() <= full.eigenvalue.item() + 1e-6
    assert early.n_products < full.n_products and not bool(early.converged)
    never = lanczos(HessianOperator(fn, theta), tol=1e-6, max_iter=60, seed=3, settled=lambda top: top > 1.5)
    assert never.n_products == full.n_products and never.eigenvalue.item() == pytest.approx(full.eigenvalue.item())


def test_power_iteration_matches_the_top_eigenvalue_when_it_dominates():
    _, _, _, (params, fn) = _problem(0)
    reference = torch.linalg.eigvalsh(exact_hessian(fn, params).double())[-1].item()
    op = HessianOperator(fn, params)
    estimate = power_iteration(op, n_iter=20).eigenvalue.item()
    assert estimate <= reference * (1 + 1e-5)  # a Rayleigh quotient never exceeds the top eigenvalue
    assert estimate == pytest.approx(reference, rel=0.05)
    assert op.n_products == 20


def test_warm_start_from_the_eigenvector_converges_at_once():
    _, _, _, (params, fn) = _problem(1)
    cold = lanczos(HessianOperator(fn, params), tol=1e-4)
    warm = lanczos(HessianOperator(fn, params), v0=cold.eigenvector, tol=1e-4, mix=0.0)
    assert warm.n_products <= 3 < cold.n_products
    assert warm.eigenvalue.item() == pytest.approx(cold.eigenvalue.item(), rel=1e-4)
    mixed = lanczos(HessianOperator(fn, params), v0=cold.eigenvector, tol=1e-4)
    assert mixed.eigenvalue.item() == pytest.approx(cold.eigenvalue.item(), rel=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_warm_start_on_a_lower_eigenvector_is_kept_from_returning_it_by_the_random_component(seed):
    """The last step's top eigenvector becomes a lower one where two eigenvalues cross: started on it exactly, the
    warm start alone returns that lower eigenpair; mixed with a seeded random vector (the default) it finds the top
    eigenvalue of the exact Hessian."""
    _, _, _, (params, fn) = _problem(seed)
    eigvals, eigvecs = np.linalg.eigh(exact_hessian(fn, params).double().numpy())
    second = torch.tensor(eigvecs[:, -2], dtype=torch.float32)
    alone = lanczos(HessianOperator(fn, params), v0=second, tol=1e-3, mix=0.0, seed=seed)
    assert alone.eigenvalue.item() == pytest.approx(eigvals[-2], rel=1e-3)
    assert alone.eigenvalue.item() < eigvals[-1] * (1 - 1e-2)   # a lower eigenpair, well apart from the top
    mixed = lanczos(HessianOperator(fn, params), v0=second, tol=1e-3, seed=seed)
    assert mixed.eigenvalue.item() == pytest.approx(eigvals[-1], rel=1e-3)


def test_lanczos_reports_non_convergence():
    _, _, _, (params, fn) = _problem(2)
    result = lanczos(HessianOperator(fn, params), tol=1e-7, max_iter=2)
    assert result.n_products == 2 and not bool(result.converged)


def test_hutchinson_trace_and_frobenius_norm_within_their_error_bars():
    _, _, _, (params, fn) = _problem(0)
    H = exact_hessian(fn, params).double()
    op = HessianOperator(fn, params)
    trace = hutchinson_trace(op, n_samples=300, seed=1)
    frob = frobenius_norm_sq(op, n_samples=300, seed=1)
    assert abs(trace.mean.item() - torch.trace(H).item()) < 4 * trace.stderr.item()
    assert abs(frob.mean.item() - (H**2).sum().item()) < 4 * frob.stderr.item()
    assert trace.stderr.item() < 0.1 * abs(torch.trace(H).item())


def test_lanczos_matches_scipy_eigsh_on_a_mid_size_network():
    torch.manual_seed(0)
    x = torch.randn(256, 1, 28, 28)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (256,)), 10).float()
    model = build_model(ModelSpec("fcn", 3, 48), (1, 28, 28), seed=0, device="cpu")
    params, fn = model_loss(model, mse, x, y)
    op = HessianOperator(fn, params)
    matvec = lambda v: op(torch.from_numpy(np.asarray(v, dtype=np.float32)).reshape(1, -1))[0].double().numpy()
    reference = eigsh(LinearOperator((op.dim, op.dim), matvec=matvec, dtype=np.float64), k=1, which="LA",
                      tol=1e-8, return_eigenvectors=False)[0]
    result = lanczos(op, tol=1e-4)
    assert op.dim > 40000 and bool(result.converged)
    assert result.eigenvalue.item() == pytest.approx(reference, rel=1e-4)


def test_stacked_models_give_the_per_model_results():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(40, 1, 4, 4, generator=gen)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (40,), generator=gen), 10).float()
    models = [build_model(ModelSpec("fcn", 3, 6), (1, 4, 4), seed=s, device="cpu") for s in range(4)]
    params, fn = stacked_loss(models, mse, x, y)
    stacked = HessianOperator(fn, params, stacked=True)
    assert stacked.batch == 4
    v = torch.randn(4, stacked.dim, generator=gen)
    hv = stacked(v)
    top = lanczos(stacked, tol=1e-6)
    assert top.eigenvalue.shape == (4,)
    for m, model in enumerate(models):
        single_params, single_fn = model_loss(model, mse, x, y)
        single = HessianOperator(single_fn, single_params)
        assert torch.allclose(hv[m], single(v[m : m + 1])[0], atol=1e-6)
        assert torch.allclose(stacked.gradient[m], single.gradient[0], atol=1e-7)
        reference = lanczos(single, tol=1e-6).eigenvalue.item()
        assert top.eigenvalue[m].item() == pytest.approx(reference, rel=1e-4)


def _tiny_cnn(dtype=torch.float32):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(12, 1, 8, 8, generator=gen).to(dtype)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (12,), generator=gen), 10).to(dtype)
    model = build_model(ModelSpec("myrtle", 5, 2), (1, 8, 8), seed=3, device="cpu").to(dtype)
    return model_loss(model, mse, x, y)


def test_every_product_for_convolutions_equals_the_exact_hessian_of_a_tiny_cnn():
    # Myrtle-5 (width 2, 8×8 images): the engine's retained double backward, forward-over-reverse and float64
    # finite differences of gradients, each against the dense Hessian
    params, fn = _tiny_cnn()
    H = exact_hessian(fn, params)
    assert H.shape[0] > 100 and torch.linalg.eigvalsh(H.double())[-1] > 0
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(0))
    reference = H @ v
    tol = dict(atol=1e-5 * float(reference.abs().max()), rtol=1e-4)
    assert torch.allclose(HessianOperator(fn, params)(v[None])[0], reference, **tol)
    assert torch.allclose(forward_over_reverse(fn, params)(v), reference, **tol)
    params64, fn64 = _tiny_cnn(torch.float64)
    assert torch.allclose(finite_difference(fn64, params64)(v.double()).float(), reference, **tol)


def test_lanczos_marks_a_model_whose_products_overflow_and_finishes_the_others():
    """A run blowing up (its Hessian-vector products not finite) gets NaN, not a failed eigensolver for the stack."""
    from helpers.curvature.operators import HessianOperator, lanczos

    d = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    d[1, 0] = float("inf")
    op = HessianOperator(lambda ps: 0.5 * (d * ps[0] ** 2).sum(), [torch.ones(2, 3)], stacked=True)
    eig = lanczos(op, tol=1e-6)
    assert float(eig.eigenvalue[0]) == pytest.approx(3.0, rel=1e-5) and bool(eig.converged[0])
    assert math.isnan(float(eig.eigenvalue[1])) and not bool(eig.converged[1])
