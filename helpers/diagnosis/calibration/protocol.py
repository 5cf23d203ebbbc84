"""The calibration's protocol: what every row shares (data sizes, batch, budget, grids), the key that names its folder,
the optimizers, and each architecture's task."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers.core.paths import REPOSITORY, configured_folder
from helpers.data.images import load_dataset
from helpers.data.text import char_sequences, load_corpus
from helpers.diagnosis.tasks import Task, adam, label_loss, next_token_loss, plain_sgd
from helpers.diagnosis.zoo import IMAGE_MODELS, TEXT_MODELS

FOLDER_ENV_VAR = "EARLY_DYNAMICS_CALIBRATION"


OPTIMIZERS: dict[str, Callable] = {"sgd": plain_sgd, "adam": adam}


@dataclass(frozen=True)
class Protocol:
    """What every row shares: data sizes, batch, budget, the diagnosis's grid of c = 2^x, the range test's span,
    and the first ladder of learning rates 2^k per optimizer."""

    n_train: int = 4096
    n_test: int = 2048
    text_length: int = 16
    batch_size: int = 128
    steps: int = 500
    n_diagnose: int = 512
    diagnose_steps: int = 10
    c_x: tuple[float, float, float] = (-2.0, 12.0, 0.25)
    range_span: tuple[tuple[str, float, float], ...] = (("sgd", 1e-4, 10.0), ("adam", 1e-6, 1.0))
    range_iters: int = 100
    ladder: tuple[tuple[str, int, int], ...] = (("sgd", -9, 3), ("adam", -14, -2))

    def span(self, optimizer: str) -> tuple[float, float]:
        return next((lo, hi) for name, lo, hi in self.range_span if name == optimizer)

    def first_ladder(self, optimizer: str) -> list[float]:
        low, high = next((lo, hi) for name, lo, hi in self.ladder if name == optimizer)
        return [2.0 ** k for k in range(low, high + 1, 2)]


def protocol_key(p: Protocol | dict) -> str:
    """A hash of every field of the protocol (as :func:`helpers.sweeps.schema.sweep_key` keys a sweep)."""
    values = asdict(p) if isinstance(p, Protocol) else p
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def calibration_folder(p: Protocol = Protocol(), root: str | os.PathLike | None = None) -> Path:
    """The folder of the jobs made under protocol ``p``: ``calibration-<key>`` in ``root``, else in
    ``$EARLY_DYNAMICS_CALIBRATION``, else in the repository's ``store/`` (where the default protocol's ship)."""
    return configured_folder(root, FOLDER_ENV_VAR, "store") / f"calibration-{protocol_key(p)}"


SHIPPED_PROTOCOL = Protocol()
"""The protocol of the shipped jobs (every default)."""
SHIPPED = REPOSITORY / "store" / f"calibration-{protocol_key(SHIPPED_PROTOCOL)}"
"""The shipped jobs of the default protocol."""


def task(model: str, p: Protocol) -> Task:
    """Fashion-MNIST for the image models, the fortunes text for the sequence models."""
    if model in IMAGE_MODELS:
        train = load_dataset("fashion-mnist", size=p.n_train, seed=0)
        test = load_dataset("fashion-mnist", train=False, size=p.n_test, seed=0)
        return Task(IMAGE_MODELS[model], train.x, train.labels, (test.x, test.labels), label_loss)
    corpus = load_corpus()
    train = char_sequences(corpus, p.text_length, p.n_train, seed=0)
    test = char_sequences(corpus, p.text_length, p.n_test // 2, seed=1, held_out=True, vocab=train.vocab)
    builder = TEXT_MODELS[model]
    return Task(lambda: builder(len(train.vocab), p.text_length), train.x, train.y, (test.x, test.y),
                next_token_loss)
