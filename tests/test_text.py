"""The character corpus: read from a folder of plain text files the test writes, split 90/10, and one clear error
when it is missing."""

from __future__ import annotations

import pytest
import torch

from helpers.data.images import DatasetUnavailable
from helpers.data.text import char_sequences, load_corpus


def test_the_corpus_skips_indexes_and_the_sequences_shift_by_one(tmp_path):
    (tmp_path / "b-file").write_text("abcdefghij" * 20)
    (tmp_path / "a-file").write_text("0123456789" * 20)
    (tmp_path / "a-file.dat").write_bytes(b"\x00\x01binary index")
    text = load_corpus(tmp_path)
    assert text.startswith("0123") and "\x00" not in text and len(text) == 401
    train = char_sequences(text, 8, 50, seed=0)
    assert train.x.shape == train.y.shape == (50, 8)
    assert torch.equal(train.x[:, 1:], train.y[:, :-1])          # y is x shifted by one character
    held = char_sequences(text, 8, 5, seed=0, held_out=True, vocab=train.vocab)
    decoded = {"".join(train.vocab[i] for i in row) for row in held.x.tolist()}
    assert all(set(s) <= set("abcdefghij") for s in decoded)    # the last 10 % of the text
    with pytest.raises(ValueError, match="shorter than one sequence"):
        char_sequences(text, 60, 1, seed=0, held_out=True)


def test_a_missing_corpus_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailable, match="sudo apt-get install fortunes"):
        load_corpus(tmp_path / "nowhere")
