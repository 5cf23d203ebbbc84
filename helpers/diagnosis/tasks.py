"""Choosing a learning rate three ways, on models built from plain ``torch.nn`` layers: the early phase diagram
(:func:`helpers.diagnosis.diagnose.diagnose`), the learning-rate range test (``torch-lr-finder``), and a grid of longer
training runs that says which one predicted better."""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import TqdmWarning

from helpers.core.device import generator
from helpers.diagnosis.diagnose import Diagnosis
from helpers.diagnosis.edges import OptimizerFactory, make_optimizer
from helpers.diagnosis.walk import in_chunks
from helpers.rules import DIVERGE_LOSS, diverged


def plain_sgd(params) -> torch.optim.Optimizer:
    """Plain SGD: no momentum, no weight decay (the learning rate is set by the caller)."""
    return torch.optim.SGD(params, lr=0.0)


def momentum_sgd(params) -> torch.optim.Optimizer:
    """SGD with heavy-ball momentum 0.9 (PyTorch's form, no dampening)."""
    return torch.optim.SGD(params, lr=0.0, momentum=0.9)


def adam(params) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8; the learning rate is set by the caller)."""
    return torch.optim.Adam(params)


def label_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with integer class labels, averaged over the batch."""
    return nn.functional.cross_entropy(outputs, labels)


def next_token_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every next-character prediction, averaged over sequences and positions."""
    return nn.functional.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable, chunk: int = 1024
             ) -> tuple[float, float]:
    """The mean loss of ``model`` on (x, y) and its accuracy (the share of argmax predictions equal to y), in
    evaluation mode (BatchNorm's running statistics); the model's mode is restored after."""
    total, correct, count = 0.0, 0, 0
    mode = model.training
    model.eval()
    for rows, out in in_chunks(model, x, chunk):
        total += float(loss(out, y[rows])) * len(out)
        correct += int((out.argmax(dim=-1) == y[rows]).sum())
        count += len(out)
    model.train(mode)
    return total / count, correct / y[:count].numel()


@dataclass(frozen=True)
class Task:
    """A model to train: a builder of fresh initializations, the training examples (``x``, ``y``), the held-out
    examples ``test`` and the loss (outputs, targets) → scalar."""

    build: Callable[[], nn.Module]
    x: torch.Tensor
    y: torch.Tensor
    test: tuple[torch.Tensor, torch.Tensor]
    loss: Callable


def train_run(task: Task, lr: float, *, steps: int, batch_size: int, seed: int,
              optimizer: OptimizerFactory | None = None, diverge_loss: float = DIVERGE_LOSS) -> dict:
    """Plain SGD (or ``optimizer``) at ``lr`` for ``steps`` minibatches (seeded init and order) of ``task``. Returns
    the initial and final training loss (on the training examples), held-out loss and accuracy, whether it diverged
    (loss non-finite or above ``diverge_loss``: losses then NaN) and its wall time."""
    x, y, loss, test = task.x, task.y, task.loss, task.test
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = task.build()
    train_loss0, _ = evaluate(model, x, y, loss)
    optimizer = make_optimizer(optimizer or plain_sgd, model.parameters(), lr)
    gen = generator(seed)
    order = torch.randperm(len(x), generator=gen)
    divergent = False
    for step in range(steps):
        first = (step * batch_size) % len(x)
        if first + batch_size > len(x):
            order, first = torch.randperm(len(x), generator=gen), 0
        index = order[first : first + batch_size]
        optimizer.zero_grad()
        value = loss(model(x[index]), y[index])
        if diverged(float(value.detach()), diverge_loss):
            divergent = True
            break
        value.backward()
        optimizer.step()
    train_loss, _ = evaluate(model, x, y, loss) if not divergent else (math.nan, math.nan)
    test_loss, accuracy = evaluate(model, *test, loss) if not divergent else (math.nan, math.nan)
    if diverged(train_loss, diverge_loss):
        divergent, train_loss, test_loss, accuracy = True, math.nan, math.nan, math.nan
    return dict(lr=lr, seed=seed, initial_train_loss=train_loss0, final_train_loss=train_loss,
                final_test_loss=test_loss, test_accuracy=accuracy, diverged=divergent,
                cost_s=time.perf_counter() - start)


def range_test(task: Task, *, batch_size: int, seed: int, start_lr: float = 1e-4, end_lr: float = 10.0,
               num_iter: int = 100, ax=None, optimizer: OptimizerFactory | None = None) -> dict:
    """The learning-rate range test of ``torch-lr-finder`` (Smith 2017) with plain SGD (or ``optimizer``):
    ``num_iter`` steps at learning rates growing exponentially from ``start_lr`` to ``end_lr``; its suggestion is
    the library's, the steepest descent of the smoothed loss. Draws the curve into ``ax`` when given. Returns the
    suggested learning rate, the curve and the wall time."""
    with warnings.catch_warnings():  # the library imports tqdm.autonotebook, which warns outside Jupyter widgets
        warnings.filterwarnings("ignore", category=TqdmWarning)
        from torch_lr_finder import LRFinder

    x, y = task.x, task.y
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = task.build()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                                         generator=generator(seed))
    finder = LRFinder(model, make_optimizer(optimizer or plain_sgd, model.parameters(), start_lr), task.loss,
                      device=x.device)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter)
        cost = time.perf_counter() - start
        if ax is None:
            import matplotlib.pyplot as plt

            figure, scratch = plt.subplots()
            _, suggestion = finder.plot(ax=scratch, suggest_lr=True)
            plt.close(figure)
        else:
            _, suggestion = finder.plot(ax=ax, suggest_lr=True)
    return dict(lr=float(suggestion), cost_s=cost, history=dict(finder.history))


def study_grid(diagnosis: Diagnosis, suggestions: Iterable[float] = (), count: int = 8, margin: float = 2.0
               ) -> list[float]:
    """``count`` learning rates evenly spaced on a log axis from the smallest phase boundary or suggestion ÷
    ``margin`` to the largest × ``margin``: a grid that straddles every boundary of ``diagnosis`` and every
    suggestion."""
    b = diagnosis.boundaries()
    points = [*b[["lr_loss", "lr_sharp", "lr_max"]].to_numpy(float).ravel(), *suggestions]
    points = [p for p in points if np.isfinite(p) and p > 0]
    return [float(v) for v in np.geomspace(min(points) / margin, max(points) * margin, count)]
