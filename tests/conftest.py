"""Shared fixtures: tiny datasets in the real on-disk formats, written by the tests themselves."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (magic 0x0000 0x08 ndim, big-endian dims, raw bytes)."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data root with MNIST-format gzipped IDX files: 50 training and 20 test images of 28×28."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", 50), ("t10k", 20)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", labels)
        arrays[f"{split}-images"], arrays[f"{split}-labels"] = images, labels
    return tmp_path, arrays


def write_cifar(root: Path, per_batch: int, n_test: int, seed: int = 1) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write ``root/cifar-10-python.tar.gz`` in CIFAR-10's python format: five training batches of ``per_batch``
    images and a test batch of ``n_test``; return each batch's (data, labels)."""
    rng = np.random.default_rng(seed)
    arrays, members = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        members[name] = pickle.dumps({"data": data, "labels": labels})
        arrays[name] = (data, labels)
    members["batches.meta"] = pickle.dumps({"label_names": [f"class{i}" for i in range(10)]})
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return arrays


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A data root holding a CIFAR-10 python tarball: five training batches of 4 images and a test batch of 3."""
    return tmp_path, write_cifar(tmp_path, 4, 3)


@pytest.fixture(scope="session")
def preset_data_root(tmp_path_factory) -> Path:
    """A data root for running presets: a CIFAR-10 tarball of 5 × 120 random training images (Fashion-MNIST still
    comes from the Debian package) and a text corpus in ``text/`` (fortune-file format)."""
    root = tmp_path_factory.mktemp("data")
    write_cifar(root, 120, 20)
    (root / "text").mkdir()
    words = np.random.default_rng(0).choice(["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog."],
                                            size=4000)
    (root / "text" / "fortunes").write_text("\n%\n".join(" ".join(words[i : i + 12]) for i in range(0, 4000, 12)))
    return root


@pytest.fixture
def tiny_config(tiny_mnist, monkeypatch):
    """A seconds-sized sweep on the tiny MNIST files: FCN depth 2, width 4, 40 examples, λ^H on 16, 3 steps."""
    from helpers.nets.build import ModelSpec
    from helpers.sweeps.config import SweepConfig

    root, _ = tiny_mnist
    monkeypatch.setenv("EARLY_DYNAMICS_DATA", str(root))
    return SweepConfig(model=ModelSpec("fcn", 2, 4), dataset="mnist", n_train=40, n_sharpness=16, batch_size=8,
                       steps=3, c_values=(1.0, 2.0), seeds=(0,), lanczos_tol=1e-6)


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    """A unit's table without its wall time, which differs between runs that compute the same numbers."""
    return table.drop(columns="seconds", errors="ignore")
