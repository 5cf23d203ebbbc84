"""The learning-rate diagnosis of an arbitrary model: λ^H_0 against the exact Hessian, c_max against plain gradient
descent, the models of the chapter (BatchNorm, a Transformer), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.diagnose import Diagnosis, diagnose
from helpers.lr_study import study_grid
from helpers.losses import mse


def _data(n=48, d=6, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = nn.functional.one_hot(torch.randint(0, k, (n,), generator=gen), k).float()
    return x, y


def _tiny(d=6, k=3):
    return nn.Sequential(nn.Linear(d, 5), nn.Tanh(), nn.Linear(5, k))   # PyTorch's default init, with biases


def _exact_top_eigenvalue(model: nn.Module, x, y) -> float:
    """λ_max of the dense Hessian of the MSE loss in float64, from torch.autograd.functional and numpy."""
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        parts, i = {}, 0
        for name, shape in zip(names, shapes):
            size = math.prod(shape)
            parts[name] = theta[i:i + size].reshape(shape)
            i += size
        out = torch.func.functional_call(model, parts, (x.double(),))
        return 0.5 * ((out - y.double()) ** 2).mean()

    hessian = torch.autograd.functional.hessian(loss, flat).numpy()
    return float(np.linalg.eigvalsh(hessian)[-1])


def _gd_diverges(model: nn.Module, x, y, lr: float, steps: int, threshold: float = 1e5) -> bool:
    """Plain full-batch gradient descent with torch.optim.SGD: does the loss leave [0, threshold] within steps?"""
    model = model.__class__(*model.children()) if isinstance(model, nn.Sequential) else model
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = mse(model(x), y)
        if not torch.isfinite(loss) or loss > threshold:
            return True
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = mse(model(x), y)
    return bool(not torch.isfinite(final) or final > threshold)


def test_sharpness_matches_the_exact_hessian_and_c_max_matches_gradient_descent():
    x, y = _data()
    report = diagnose(lambda: _tiny(), x, y, seeds=(0, 1), steps=10, c_values=[2 ** (k / 4) for k in range(33)])
    assert isinstance(report, Diagnosis) and list(report.per_seed.seed) == [0, 1]
    for i, seed in enumerate((0, 1)):
        torch.manual_seed(seed)
        exact = _exact_top_eigenvalue(_tiny(), x, y)
        assert report.sharpness0[i] == pytest.approx(exact, rel=1e-4)
        grid = list(report.c_values)
        c_max = report.c_max[i]
        assert not report.per_seed.censored[i], "the grid must reach a divergence for this check"
        following = grid[grid.index(c_max) + 1]
        torch.manual_seed(seed)
        assert not _gd_diverges(_tiny(), x, y, c_max / report.sharpness0[i], 10)
        torch.manual_seed(seed)
        assert _gd_diverges(_tiny(), x, y, following / report.sharpness0[i], 10)
    assert report.c_loss.shape == (2,) and (report.c_loss <= report.c_max).all()


def test_reading_the_diagnosis_as_learning_rates():
    x, y = _data()
    report = diagnose(_tiny(), x, y, seeds=(5, 6), c_values=[2 ** (k / 2) for k in range(17)])
    assert len(report.per_seed) == 1                        # a module is its own (only) initialization
    b = report.boundaries().iloc[0]
    assert b.lr_max == pytest.approx(report.c_max[0] / report.sharpness0[0])
    assert report.phase(b.lr_max * 2) == "divergent"
    assert report.phase(b.lr_loss * 0.5) == "sharpness reduction"
    low, high = report.suggested_range()
    assert 0 < low <= high == pytest.approx(b.lr_max)
    assert report.lr(1.0) == pytest.approx(1.0 / report.sharpness0[0])
    frame = report.to_frame()
    assert {"seed", "sharpness0", "c_loss", "c_sharp", "c_max", "lr_loss", "lr_sharp", "lr_max"} <= set(frame)
    text = str(report)
    assert "λ^H_0" in text and "suggested learning rates" in text
    assert low <= report.suggested_lr() <= high
    grid = study_grid(report, [high * 3], count=8)
    assert len(grid) == 8 and grid[0] < b.lr_loss and grid[-1] > high * 3


def test_batchnorm_in_training_mode_and_a_callable_loss_with_a_dataloader():
    x, y = _data(n=64)
    model = lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))  # noqa: E731
    labels = y.argmax(dim=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, labels), batch_size=16)
    report = diagnose(model, loader, loss=nn.functional.cross_entropy, batch_size=32, seeds=(0,),
                      c_values=[2 ** (k / 2) for k in range(14)])
    assert report.sharpness0[0] > 0 and np.isfinite(report.c_max[0])


def test_a_small_transformer_is_diagnosed():
    vocab, length = 11, 8
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (32, length + 1), generator=gen)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, 16)
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.readout = nn.Linear(16, vocab)

        def forward(self, t):
            mask = nn.Transformer.generate_square_subsequent_mask(t.shape[1])
            return self.readout(self.encoder(self.embed(t), mask=mask, is_causal=True))

    def next_token_loss(out, target):
        return nn.functional.cross_entropy(out.reshape(-1, vocab), target.reshape(-1))

    report = diagnose(Tiny, tokens[:, :-1], tokens[:, 1:], loss=next_token_loss, seeds=(0,),
                      c_values=[2 ** (k / 2) for k in range(14)])
    assert report.sharpness0[0] > 0 and np.isfinite(report.c_loss[0])


def test_bad_input_gets_clear_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="no trainable parameters"):
        diagnose(nn.Sequential(nn.ReLU()), x, y)
    with pytest.raises(ValueError, match="different numbers of examples"):
        diagnose(_tiny(), x, y[:10])
    with pytest.raises(ValueError, match="scalar"):
        diagnose(_tiny(), x, y, loss=lambda out, target: (out - target) ** 2)
    with pytest.raises(ValueError, match="c_values is empty"):
        diagnose(_tiny(), x, y, c_values=[])
    with pytest.raises(ValueError, match="unknown loss"):
        diagnose(_tiny(), x, y, loss="hinge")
    with pytest.raises(ValueError, match="dropout"):
        diagnose(nn.Sequential(nn.Linear(6, 4), nn.Dropout(0.1), nn.Linear(4, 3)), x, y)
    with pytest.raises(ValueError, match="seeds is empty"):
        diagnose(lambda: _tiny(), x, y, seeds=())
