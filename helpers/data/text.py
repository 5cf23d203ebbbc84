"""A character-level English corpus: the fortune cookies that the Debian package ``fortunes`` ships.

The text is every plain file of the package's folder (``/usr/share/games/fortunes``, or ``$EARLY_DYNAMICS_TEXT``),
read in sorted order; training sequences come from its first 90 %, held-out ones from the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.data.images import DatasetUnavailable
from helpers.core.device import generator

TEXT_ENV_VAR = "EARLY_DYNAMICS_TEXT"
SYSTEM_FORTUNES = Path("/usr/share/games/fortunes")
HOW_TO_GET_TEXT = ("install the Debian package (`sudo apt-get install fortunes`), or point ${var} at a folder of "
                   "text files")


def text_folder() -> Path:
    """Where the corpus is read from: ``$EARLY_DYNAMICS_TEXT`` if set, else the Debian package's folder."""
    return Path(os.environ.get(TEXT_ENV_VAR) or SYSTEM_FORTUNES)


def load_corpus(folder: str | os.PathLike | None = None) -> str:
    """The corpus as one string: the plain text files of ``folder`` (no ``.dat`` indexes, no ``.u8`` links)."""
    where = Path(folder) if folder is not None else text_folder()
    files = sorted(p for p in where.glob("*") if p.is_file() and p.suffix not in {".dat", ".u8"}) \
        if where.is_dir() else []
    if not files:
        raise DatasetUnavailable(f"the text corpus is missing: no text files in {where}. To get it, "
                                 + HOW_TO_GET_TEXT.format(var=TEXT_ENV_VAR))
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


@dataclass(frozen=True)
class CharData:
    """Token sequences ``x`` [n, L] and their next-character targets ``y`` [n, L] over the alphabet ``vocab``."""

    x: torch.Tensor
    y: torch.Tensor
    vocab: str

    def __len__(self) -> int:
        return self.x.shape[0]


def char_sequences(text: str, length: int, n: int, seed: int, held_out: bool = False,
                   vocab: str | None = None) -> CharData:
    """``n`` windows of ``length`` + 1 characters at seeded offsets, from the first 90 % of ``text`` (or, with
    ``held_out``, the last 10 %); characters outside ``vocab`` (default: those of ``text``) become its first."""
    if length < 1 or n < 1:
        raise ValueError(f"need length ≥ 1 and n ≥ 1, got length={length}, n={n}")
    vocab = vocab or "".join(sorted(set(text)))
    split = int(0.9 * len(text))
    part = text[split:] if held_out else text[:split]
    if len(part) <= length + 1:
        raise ValueError(f"the text ({len(part)} characters in this split) is shorter than one sequence")
    index = {ch: i for i, ch in enumerate(vocab)}
    codes = torch.tensor([index.get(ch, 0) for ch in part], dtype=torch.long)
    starts = torch.randint(0, len(part) - length - 1, (n,), generator=generator(seed))
    windows = torch.stack([codes[s : s + length + 1] for s in starts.tolist()])
    return CharData(windows[:, :-1], windows[:, 1:], vocab)
