"""Losses: MSE is ½·mean over batch and classes; cross-entropy matches torch's on one-hot targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.nets.losses import LOSSES, cross_entropy, get_loss, mse


def test_mse_is_half_the_mean_over_batch_and_classes():
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=(7, 10)), rng.normal(size=(7, 10))
    expected = 0.5 * np.mean((f - y) ** 2)
    assert mse(torch.tensor(f), torch.tensor(y)).item() == pytest.approx(expected, rel=1e-12)


def test_zero_output_on_one_hot_labels_gives_005():
    y = torch.nn.functional.one_hot(torch.tensor([3, 1, 4, 1, 5, 9]), 10).float()
    assert mse(torch.zeros_like(y), y).item() == pytest.approx(0.05, abs=1e-8)


def test_cross_entropy_matches_torch():
    torch.manual_seed(0)
    f = torch.randn(9, 10)
    labels = torch.randint(0, 10, (9,))
    y = torch.nn.functional.one_hot(labels, 10).float()
    assert torch.allclose(cross_entropy(f, y), torch.nn.functional.cross_entropy(f, labels))


def test_loss_lookup():
    assert get_loss("mse") is mse and get_loss("xent") is cross_entropy
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        get_loss("l1")


def test_cross_entropy_takes_class_labels_as_torchs_loss_does():
    import torch

    from helpers.nets.losses import cross_entropy

    gen = torch.Generator().manual_seed(0)
    f, labels = torch.randn(7, 5, generator=gen), torch.randint(0, 5, (7,), generator=gen)
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    reference = torch.nn.CrossEntropyLoss()(f, labels)
    assert torch.allclose(cross_entropy(f, labels), reference) and torch.allclose(cross_entropy(f, one_hot), reference)



@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_is_a_nonnegative_batch_mean_that_vanishes_only_at_the_target(name):
    import torch

    gen = torch.Generator().manual_seed(1)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (6,), generator=gen), 4).float()
    f = torch.randn(6, 4, generator=gen)
    value = LOSSES[name](f, y)
    assert value.dim() == 0 and value >= 0
    doubled = LOSSES[name](torch.cat([f, f]), torch.cat([y, y]))
    assert torch.allclose(doubled, value)  # a mean over the batch, not a sum
    near = LOSSES[name](100 * (2 * y - 1), y) if name == "xent" else LOSSES[name](y, y)
    assert near < 1e-6
