"""The learning-rate diagnosis of an arbitrary model: λ^H_0 against the exact Hessian, c_max against plain gradient
descent, the models of the chapter (BatchNorm, a Transformer), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers.diagnosis import Diagnosis, diagnose
from helpers.diagnosis.tasks import study_grid


def _data(n=48, d=6, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    y = nn.functional.one_hot(torch.randint(0, k, (n,), generator=gen), k).float()
    return x, y


def _tiny(d=6, k=3):
    return nn.Sequential(nn.Linear(d, 5), nn.Tanh(), nn.Linear(5, k))   # PyTorch's default init, with biases


def _exact_top_eigenvalue(model: nn.Module, x, y) -> float:
    """λ_max of the dense Hessian of nn.MSELoss (the mean of (f − y)²) in float64, from torch.autograd.functional and
    numpy."""
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
        return ((out - y.double()) ** 2).mean()

    hessian = torch.autograd.functional.hessian(loss, flat).numpy()
    return float(np.linalg.eigvalsh(hessian)[-1])


def _gd_diverges(model: nn.Module, x, y, lr: float, steps: int, threshold: float = 1e5) -> bool:
    """Plain full-batch gradient descent with torch.optim.SGD: does the loss leave [0, threshold] within steps?"""
    model = model.__class__(*model.children()) if isinstance(model, nn.Sequential) else model
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if not torch.isfinite(loss) or loss > threshold:
            return True
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = nn.functional.mse_loss(model(x), y)
    return bool(not torch.isfinite(final) or final > threshold)


def test_sharpness_matches_the_exact_hessian_and_c_max_matches_gradient_descent():
    x, y = _data()
    report = diagnose(lambda: _tiny(), x, y, seeds=(0, 1), steps=10, c_values=[2 ** (k / 4) for k in range(33)],
                      held=None)  # the study's divergence rule only: a loss above 1e5 or not finite
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
    with pytest.raises(ValueError, match="seeds is empty"):
        diagnose(lambda: _tiny(), x, y, seeds=())


def test_the_summary_names_early_sharpening_and_a_censored_c_max_for_what_they_are():
    import pandas as pd

    per_seed = pd.DataFrame(dict(seed=[0, 1], sharpness0=[2.0, 2.0], c_loss=[4.0, 4.0], c_sharp=[1.0, 1.0],
                                 c_max=[8.0, 8.0], c_loss_filled=False, c_sharp_filled=False, censored=[True, False]))
    text = str(Diagnosis(per_seed, (1.0, 2.0, 4.0, 8.0), pd.DataFrame(), 10))
    assert "sharpness catapults" not in text and "early sharpening" in text
    assert "1 seed(s): no divergence up to η = 4 (c = 8); extend the grid" in text
    assert "diverges above             c = 8, η = 4 (1 seed(s) that diverged)" in text
    every = str(Diagnosis(per_seed.assign(censored=True), (1.0, 2.0, 4.0, 8.0), pd.DataFrame(), 10))
    assert "2 seed(s): no divergence up to η = 4" in every and "diverges above" not in every



GRID = [2 ** (k / 2) for k in range(14)]


def test_class_labels_with_cross_entropy_equal_one_hot_targets_and_mse_refuses_them():
    x, y = _data()
    labels, model = y.argmax(dim=1), _tiny()
    by_label = diagnose(model, x, labels, loss="xent", c_values=GRID, progress=False)
    by_one_hot = diagnose(model, x, y, loss="xent", c_values=GRID, progress=False)
    assert by_label.sharpness0[0] == pytest.approx(by_one_hot.sharpness0[0], rel=1e-5)
    assert (by_label.c_max == by_one_hot.c_max).all()
    with pytest.raises(ValueError, match="loss='mse' needs float targets shaped like the output.*integer labels"):
        diagnose(_tiny(), x, labels, loss="mse")
    with pytest.raises(ValueError, match=r"output \(2, 1\) and the targets \(2,\) would broadcast"):
        diagnose(_tiny(k=1), x, y[:, 0], loss="mse")
    with pytest.raises(ValueError, match="class labels"):
        diagnose(_tiny(), x, labels + 5, loss="xent")


def test_dropout_of_every_kind_is_off_on_the_internal_copy():
    x, y = _data()

    class FunctionalDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 3)

        def forward(self, t):
            return self.b(nn.functional.dropout(torch.tanh(self.a(t)), 0.5, training=self.training))

    plain = diagnose(lambda: _tiny(), x, y, seeds=(0,), c_values=GRID, progress=False)
    dropped = diagnose(lambda: nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Dropout(0.5), nn.Linear(5, 3)), x, y,
                       seeds=(0,), c_values=GRID, progress=False)
    assert dropped.sharpness0[0] == pytest.approx(plain.sharpness0[0], rel=1e-6)  # the same network without dropout
    functional = diagnose(FunctionalDropout, x, y, seeds=(0,), c_values=GRID, progress=False)
    assert functional.sharpness0[0] > 0 and np.isfinite(functional.c_max[0])

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 3)

        def forward(self, t):
            return self.a(t) + 0.1 * torch.randn_like(self.a(t))

    with pytest.raises(ValueError, match="differs between two calls"):
        diagnose(Noisy, x, y, c_values=GRID, progress=False)


def test_a_layer_without_second_derivatives_is_named_before_any_training():
    x, y = _data()
    model = lambda: nn.Sequential(nn.Linear(6, 5), nn.Hardsigmoid(), nn.Linear(5, 3))  # noqa: E731
    try:
        diagnose(model, x, y, seeds=(0,), c_values=GRID, progress=False)
    except ValueError as err:
        assert "layer '1' (Hardsigmoid) has no second derivative" in str(err)
    else:  # a torch with a double backward for it: nothing to refuse
        pytest.skip("this torch has second derivatives for Hardsigmoid")


def test_frozen_parameters_stay_fixed_and_out_of_the_sharpness():
    x, y = _data()
    model = _tiny()
    model[0].requires_grad_(False)
    report = diagnose(model, x, y, c_values=GRID, progress=False)
    trainable = nn.Sequential(model[2])  # λ^H over the trainable readout only, with the frozen part as a fixed input
    features = torch.tanh(model[0](x)).detach()
    assert report.sharpness0[0] == pytest.approx(_exact_top_eigenvalue(trainable, features, y), rel=1e-4)
    assert report.frozen == 2 and "2 frozen parameter tensor(s)" in str(report)
    assert model[0].weight.requires_grad is False and not model[0].weight.grad  # the caller's model untouched


def test_the_callers_random_state_is_untouched_and_a_dataloaders_batch_size_is_used():
    x, y = _data(n=64)
    state = torch.random.get_rng_state()
    diagnose(lambda: _tiny(), x, y, seeds=(3,), c_values=GRID, progress=False)
    assert torch.equal(state, torch.random.get_rng_state())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    by_loader = diagnose(lambda: _tiny(), loader, seeds=(0,), c_values=GRID, progress=False)
    explicit = diagnose(lambda: _tiny(), x, y, batch_size=16, seeds=(0,), c_values=GRID, progress=False)
    full_batch = diagnose(lambda: _tiny(), x, y, seeds=(0,), c_values=GRID, progress=False)
    pd.testing.assert_frame_equal(by_loader.runs, explicit.runs)
    assert not by_loader.runs.batch_loss.equals(full_batch.runs.batch_loss)


def test_a_loss_held_high_is_divergent_and_a_censored_maximum_is_never_a_boundary():
    from helpers.diagnosis.seeds import held_divergent

    runs = pd.DataFrame(dict(seed=0, c=[1.0, 1.0, 2.0, 2.0], step=[0, 1, 0, 1], loss=[1.0, 0.5, 1.0, 2.5],
                             loss0=1.0, diverged=False))
    assert held_divergent(runs).diverged.tolist() == [False, False, False, True]
    assert held_divergent(runs, held=None).diverged.tolist() == [False] * 4
    per_seed = pd.DataFrame(dict(seed=[0], sharpness0=[2.0], c_loss=[4.0], c_sharp=[4.0], c_max=[8.0],
                                 c_loss_filled=False, c_sharp_filled=False, censored=[True]))
    report = Diagnosis(per_seed, (1.0, 2.0, 4.0, 8.0), pd.DataFrame(), 10)
    low, high = report.suggested_range()
    assert low == 2.0 and np.isnan(high) and report.suggested_lr() == 2.0
    assert "diverges above" not in str(report) and "extend the grid to find the upper boundary" in str(report)


def test_quick_is_one_seed_without_c_sharp():
    x, y = _data()
    report = diagnose(lambda: _tiny(), x, y, seeds=(0, 1, 2), c_values=GRID, quick=True, progress=False)
    assert len(report.per_seed) == 1 and np.isnan(report.c_sharp[0]) and np.isfinite(report.c_max[0])
    assert report.runs[report.runs.step >= 1].sharpness.isna().all() and "c_sharp not measured" in str(report)


def test_a_grid_that_never_diverged_nor_rose_prints_no_nan_and_no_rise_that_never_happened():
    per_seed = pd.DataFrame(dict(seed=[0], sharpness0=[2.0], c_loss=[8.0], c_sharp=[8.0], c_max=[8.0],
                                 c_loss_filled=True, c_sharp_filled=True, censored=[True]))
    text = str(Diagnosis(per_seed, (1.0, 2.0, 4.0, 8.0), pd.DataFrame(), 10))
    assert "nan" not in text.lower()
    assert "the loss rises from" not in text and "the sharpness rises from" not in text
    assert "the loss rises" in text and "for no seed on the grid" in text
    assert "no suggested learning rate" in text and "extend the grid upward" in text
    # one seed rose, one never did: the onset averages the seed that rose only
    two = pd.DataFrame(dict(seed=[0, 1], sharpness0=[2.0, 2.0], c_loss=[2.0, 8.0], c_sharp=[4.0, 4.0],
                            c_max=[8.0, 8.0], c_loss_filled=[False, True], c_sharp_filled=False, censored=False))
    text = str(Diagnosis(two, (1.0, 2.0, 4.0, 8.0), pd.DataFrame(), 10))
    assert "the loss rises from        c = 2, η = 1 (1 seed(s) where it never rose left out)" in text


def test_a_shuffling_dataloader_leaves_the_callers_random_state_untouched():
    x, y = _data(n=64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    diagnose(lambda: _tiny(), loader, seeds=(0,), c_values=GRID, quick=True, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_an_optimizer_instance_or_another_wrong_type_is_one_clear_line():
    x, y = _data()
    instance = torch.optim.Adam(_tiny().parameters())
    with pytest.raises(TypeError, match=r"factory .* not a Adam instance.*lambda params: torch.optim.Adam"):
        diagnose(lambda: _tiny(), x, y, optimizer=instance, c_values=GRID, progress=False)
    with pytest.raises(TypeError, match="optimizer must be a callable"):
        diagnose(lambda: _tiny(), x, y, optimizer="adam", c_values=GRID, progress=False)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module or a zero-argument callable"):
        diagnose("resnet", x, y, c_values=GRID, progress=False)
    with pytest.raises(TypeError, match="x and y must be tensors"):
        diagnose(lambda: _tiny(), x.numpy(), y.numpy(), c_values=GRID, progress=False)


def _runs(outcomes: dict[float, tuple[float, bool]], seed: int = 0) -> pd.DataFrame:
    """Hand-made runs: per c, (L_1/L_0, diverged at step 1)."""
    rows = []
    for c, (ratio, dead) in outcomes.items():
        rows += [dict(seed=seed, c=c, step=0, loss=1.0, loss0=1.0, sharpness=1.0, sharpness0=1.0, diverged=False),
                 dict(seed=seed, c=c, step=1, loss=ratio, loss0=1.0, sharpness=0.9, sharpness0=1.0, diverged=dead)]
    return pd.DataFrame(rows)


def test_the_default_grid_extends_down_and_up_until_both_edges_are_inside_within_its_bounds():
    from helpers.sweeps.config import c_grid
    from helpers.diagnosis.diagnose import HIGHEST, LOWEST, bracketing

    grid = c_grid(6.0, 0.1)
    inside = _runs({grid[0]: (0.5, False), grid[1]: (1.2, False), grid[2]: (2.0, True)})
    assert bracketing(inside, grid) is None                                   # both edges found
    diverged_first = _runs({grid[0]: (0.0, True)})
    lower = bracketing(diverged_first, grid)
    assert lower[0] == pytest.approx(2.0 ** -6) and lower[-1] == grid[-1] and set(grid) < set(lower)
    rose_first = _runs({grid[0]: (1.5, False), grid[1]: (3.0, True)})
    assert bracketing(rose_first, grid)[0] == pytest.approx(2.0 ** -6)
    never = _runs({c: (0.5, False) for c in grid})
    higher = bracketing(never, grid)
    assert higher[0] == grid[0] and higher[-1] == pytest.approx(2.0 ** 10) and set(grid) < set(higher)
    assert np.all(np.diff(higher) > 0)
    top = c_grid(16.0, 0.1, 10.0)
    assert bracketing(_runs({c: (0.5, False) for c in top}), top) is None     # at the bound: reported, not extended
    bottom = c_grid(-9.0, 0.1, -10.0)
    assert bracketing(_runs({bottom[0]: (0.0, True)}), bottom) is None
    assert bottom[0] == pytest.approx(LOWEST, rel=1e-3) and top[-1] == pytest.approx(HIGHEST)


class Bounded(nn.Module):
    """tanh-bounded outputs under MSE: the loss cannot leave [0, 2], so no c ever diverges."""

    def __init__(self):
        super().__init__()
        self.net = _tiny()

    def forward(self, x):
        return torch.tanh(self.net(x))


def test_a_model_that_never_diverges_extends_the_default_grid_to_its_bound_and_says_which_edge_is_missing():
    from helpers.diagnosis.diagnose import HIGHEST

    x, y = _data()
    report = diagnose(Bounded, x, y, seeds=(0,), held=None, quick=True, progress=False, steps=3)
    assert report.c_values[-1] == pytest.approx(HIGHEST, rel=1e-3) and report.censored.all()
    text = str(report)
    assert "no divergence up to" in text and "nan" not in text.lower()


def test_losses_as_pytorch_names_them_and_the_studys_half_mse_by_name():
    x, y = _data()
    common = dict(seeds=(0,), c_values=GRID, progress=False, quick=True)
    named = diagnose(lambda: _tiny(), x, y, loss="mse", **common)
    module = diagnose(lambda: _tiny(), x, y, loss=nn.MSELoss(), **common)
    half = diagnose(lambda: _tiny(), x, y, loss="half_mse", **common)
    assert module.sharpness0[0] == pytest.approx(named.sharpness0[0], rel=1e-6)
    assert half.sharpness0[0] == pytest.approx(named.sharpness0[0] / 2, rel=1e-5)     # ½ the loss, ½ its Hessian
    assert half.suggested_lr() == pytest.approx(2 * named.suggested_lr(), rel=1e-4)  # the same runs, η doubled
    assert "loss: nn.MSELoss" in str(named) and "loss: MSELoss(reduction='mean')" in str(module)
    assert "the study's ½·mean" in str(half)
    labels = y.argmax(dim=1)
    by_module = diagnose(lambda: _tiny(), x, labels, loss=nn.CrossEntropyLoss(), **common)
    by_name = diagnose(lambda: _tiny(), x, labels, loss="xent", **common)
    assert by_module.sharpness0[0] == pytest.approx(by_name.sharpness0[0], rel=1e-5)
    with pytest.raises(ValueError, match="needs float targets"):
        diagnose(lambda: _tiny(), x, labels, loss=nn.MSELoss(), **common)
    with pytest.raises(TypeError, match="loss must be a name"):
        diagnose(lambda: _tiny(), x, y, loss=3, **common)


class NotFinite(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _tiny()

    def forward(self, x):
        return self.net(x) / torch.zeros(())   # inf and NaN from the start


def test_a_model_whose_output_is_not_finite_is_named_as_such_not_as_random():
    x, y = _data()
    with pytest.raises(ValueError, match="output is not finite") as caught:
        diagnose(NotFinite, x, y, c_values=GRID, progress=False)
    assert "randomness" not in str(caught.value)


def test_an_upward_extension_walks_only_the_new_c_and_equals_a_walk_of_the_whole_grid():
    x, y = _data()
    extended = diagnose(Bounded, x, y, seeds=(0, 1), steps=1, progress=False)
    assert extended.c_values[-1] > 64 and not extended.censored[0] and extended.censored[1]
    whole = diagnose(Bounded, x, y, seeds=(0, 1), steps=1, progress=False, c_values=extended.c_values)
    columns = ["seed", "sharpness0", "c_loss", "c_sharp", "c_max", "censored"]
    pd.testing.assert_frame_equal(extended.per_seed[columns], whole.per_seed[columns])
    # the same runs up to each initialization's first divergence (a walk goes on past one that only the held rule
    # finds, after the walk; the extension does not, and needs not)
    keys = ["seed", "c", "step", "loss", "diverged"]
    up_to = lambda report: report.runs[report.runs.c <= report.runs.seed.map(  # noqa: E731
        dict(zip(report.per_seed.seed, report.per_seed.c_max)))][keys].reset_index(drop=True)
    pd.testing.assert_frame_equal(up_to(extended), up_to(whole))
    assert (extended.runs.seed == 1).sum() == (whole.runs.seed == 1).sum()   # the open one: every c of the grid
