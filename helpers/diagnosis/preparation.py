"""A user's model, data and loss made ready for the engine, by PyTorch's conventions, with one clear error for what
cannot be: the data as tensors (a DataLoader's batches and batch size), targets checked against the output, and an
internal copy of the model that trains only its trainable parameters, has no train-only randomness and has second
derivatives everywhere. The caller's model, its buffers and the global random state are left as they were."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from helpers.nets.losses import LOSSES, Loss

BATCH_STATISTICS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def as_tensors(x, y, batch_size: int | None) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """(x, y, batch size): tensors as given, or every batch of a DataLoader ``x`` (its batch size unless one is
    given)."""
    if isinstance(x, torch.utils.data.DataLoader):
        if y is not None:
            raise ValueError("pass either a DataLoader as x (and no y) or the tensors x and y")
        with torch.random.fork_rng(devices=[]):   # a shuffling loader draws from the global generator
            xs, ys = zip(*x)
        return torch.cat(xs), torch.cat(ys), batch_size or x.batch_size
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError("x and y must be tensors (or x a DataLoader of (x, y) batches)")
    if len(x) != len(y):
        raise ValueError(f"x and y hold different numbers of examples: {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError("x holds no examples")
    return x, y, batch_size


NAMED_LOSSES: dict[str, Loss] = {"mse": nn.functional.mse_loss, "half_mse": LOSSES["mse"],
                                 "xent": LOSSES["xent"], "cross_entropy": LOSSES["xent"]}
"""The losses a diagnosis takes by name, as PyTorch names them: ``mse`` is ``nn.MSELoss`` (the mean of (f − y)²),
``xent`` or ``cross_entropy`` is ``nn.CrossEntropyLoss`` (class labels or one-hot targets); ``half_mse`` is the
study's ½·mean (f − y)², whose sharpness is half nn.MSELoss's (so its learning rates are twice as large)."""
LOSS_NAMES = {"mse": "nn.MSELoss, the mean of (f − y)²", "half_mse": "the study's ½·mean (f − y)² (half nn.MSELoss: "
              "its learning rates are twice nn.MSELoss's)", "xent": "nn.CrossEntropyLoss",
              "cross_entropy": "nn.CrossEntropyLoss"}


def loss_kind(loss) -> str | None:
    """``mse``, ``half_mse`` or ``xent`` for a named loss or a mean-reduced ``nn.MSELoss``/``nn.CrossEntropyLoss``;
    None for any other callable."""
    if isinstance(loss, str):
        return {"cross_entropy": "xent"}.get(loss, loss)
    if isinstance(loss, nn.MSELoss) and loss.reduction == "mean":
        return "mse"
    if isinstance(loss, nn.CrossEntropyLoss) and loss.reduction == "mean":
        return "xent"
    return None


def describe_loss(loss) -> str:
    """The loss as the summary names it."""
    if isinstance(loss, str):
        return LOSS_NAMES[loss]
    if isinstance(loss, nn.Module):
        return f"{type(loss).__name__}(reduction={getattr(loss, 'reduction', '?')!r})"
    return getattr(loss, "__name__", type(loss).__name__)


def checked_loss(loss: str | Loss, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Loss:
    """The loss function, after checking the targets against the model's output on two examples: ``"mse"``,
    ``"half_mse"`` and ``nn.MSELoss`` want float targets shaped like the output; ``"xent"`` and
    ``nn.CrossEntropyLoss`` integer class labels [B] or one-hot targets [B, k]; any loss must return a scalar, and an
    output [B, 1] against targets [B] (which broadcast to [B, B]) is refused."""
    if isinstance(loss, str):
        fn = NAMED_LOSSES.get(loss)
        if fn is None:
            raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(NAMED_LOSSES)} or pass a callable "
                             "(outputs, targets) → scalar, e.g. nn.MSELoss()")
    elif callable(loss):
        fn = loss
    else:
        raise TypeError(f"loss must be a name ({sorted(NAMED_LOSSES)}) or a callable (outputs, targets) → scalar, "
                        f"got {type(loss).__name__}")
    kind = loss_kind(loss)
    with torch.no_grad():
        f, t = model(x[:2]), y[:2]
    if f.dim() == t.dim() + 1 and f.shape[-1] == 1 and t.is_floating_point():
        raise ValueError(f"the output {tuple(f.shape)} and the targets {tuple(t.shape)} would broadcast to "
                         f"{tuple(f.shape[:-1]) * 2}: give the targets a last axis of 1 or squeeze the output")
    if kind in ("mse", "half_mse") and (not t.is_floating_point() or t.shape != f.shape):
        got = "integer labels" if not t.is_floating_point() else "targets"
        shown = repr(loss) if isinstance(loss, str) else describe_loss(loss)
        raise ValueError(f"loss={shown} needs float targets shaped like the output "
                         f"{tuple(f.shape)}, got {got} {tuple(t.shape)}: pass one-hot targets, or use loss='xent' "
                         "for class labels")
    if kind == "xent" and not t.is_floating_point() and (t.dim() != 1 or int(t.max()) >= f.shape[-1]):
        raise ValueError(f"loss='xent' takes class labels [B] in 0 … {f.shape[-1] - 1} (or one-hot [B, k]), "
                         f"got {tuple(t.shape)} with labels up to {int(t.max())}")
    with torch.no_grad():
        value = fn(f, t)
    if not (isinstance(value, torch.Tensor) and value.dim() == 0):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"the loss must return a scalar tensor (a mean over the batch), got {shape}")
    return fn


def built(builder: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``builder()`` under ``torch.manual_seed(seed)``, with the caller's global random state restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def _freeze(model: nn.Module) -> int:
    """Turn the parameters that do not require gradients into buffers (trained by no one); return how many."""
    frozen = 0
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None and not p.requires_grad:
                del module._parameters[name]
                module.register_buffer(name, p.detach())
                frozen += 1
    return frozen


def prepared(model: nn.Module, device: torch.device) -> tuple[nn.Module, int]:
    """A copy for the engine (the caller's model untouched): on ``device``; frozen parameters made buffers; every
    module in evaluation mode — dropout of every kind (``nn.Dropout``, attention and recurrent dropout, ``F.dropout``
    and stochastic depth that read ``self.training``) off — except normalization by batch statistics, which keeps
    training mode as in training (BatchNorm's running averages left out). Returns the copy and how many parameter
    tensors were frozen."""
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")
    copied = copy.deepcopy(model).to(device)
    frozen = _freeze(copied)
    copied.eval()
    for module in copied.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()
    torch.func.replace_all_batch_norm_modules_(copied)
    return copied, frozen


def check_deterministic(model: nn.Module, x: torch.Tensor) -> None:
    """Refuse a model whose output differs between two calls on the same inputs (randomness left in its forward):
    its loss, and so λ^H, would be undefined."""
    with torch.no_grad():
        first = model(x)
        if not bool(torch.isfinite(first).all()):
            raise ValueError(f"the model's output is not finite (NaN or inf) on {len(x)} of the examples, before any "
                             "training: check its initialization and the inputs (e.g. a division by zero or a log of "
                             "zero in its forward)")
        if not torch.equal(first, model(x)):
            raise ValueError("the model's output differs between two calls on the same inputs even with dropout off: "
                             "remove the randomness from its forward (e.g. noise layers) for the diagnosis")


def check_second_derivatives(model: nn.Module, x: torch.Tensor) -> None:
    """Try a second derivative through every leaf module on ``x``; a module without one (e.g. ``nn.Hardsigmoid``)
    is named in one clear error, before any training."""
    inputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args, output) -> None:  # returns None: the output is left as it is
            if args and name not in inputs:
                inputs[name] = args[0]
        return hook

    hooks = [m.register_forward_hook(keep(name)) for name, m in model.named_modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    modules = dict(model.named_modules())
    for name, value in inputs.items():
        if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
            continue
        z = value.detach().clone().requires_grad_(True)
        try:
            out = modules[name](z)
        except TypeError:  # a module that takes more than one input (e.g. attention): covered by its parts
            continue
        out = out[0] if isinstance(out, tuple) else out
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            continue
        try:
            (g,) = torch.autograd.grad(out.float().pow(2).sum(), z, create_graph=True)
            if g.requires_grad:
                torch.autograd.grad(g.sum(), z, allow_unused=True)
        except (RuntimeError, NotImplementedError) as err:
            kind = type(modules[name]).__name__
            raise ValueError(f"layer {name!r} ({kind}) has no second derivative in torch ({str(err).splitlines()[0]}); "
                             "λ^H needs Hessian-vector products through every layer: replace it (e.g. Hardsigmoid by "
                             "a smooth sigmoid) for the diagnosis") from None
