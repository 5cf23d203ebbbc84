"""Data loading: real file formats, per-sample standardization, one-hot labels, subsets, clear errors."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.core.paths import REPOSITORY
from helpers.data import images as data
from helpers.data.images import DatasetUnavailable, load_dataset, standardize


def test_mnist_idx_gz_files_load_standardized_with_one_hot(tiny_mnist):
    root, arrays = tiny_mnist
    ds = load_dataset("mnist", root=root, device="cpu", download=False)
    assert ds.x.shape == (50, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.y.shape == (50, 10)
    np.testing.assert_array_equal(ds.labels.numpy(), arrays["train-labels"])
    np.testing.assert_array_equal(ds.y.argmax(1).numpy(), arrays["train-labels"])
    assert torch.all(ds.y.sum(1) == 1)
    # Independent reference: numpy's population standardization of the raw bytes.
    raw = arrays["train-images"].reshape(50, -1).astype(np.float64)
    expected = (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True)
    np.testing.assert_allclose(ds.x.reshape(50, -1).numpy(), expected, atol=1e-5)
    test = load_dataset("mnist", train=False, root=root, device="cpu", download=False)
    np.testing.assert_array_equal(test.labels.numpy(), arrays["t10k-labels"])


def test_subsets_are_deterministic_by_seed_and_size(tiny_mnist):
    root, _ = tiny_mnist
    a = load_dataset("mnist", root=root, size=10, seed=3, device="cpu")
    b = load_dataset("mnist", root=root, size=10, seed=3, device="cpu")
    c = load_dataset("mnist", root=root, size=10, seed=4, device="cpu")
    full = load_dataset("mnist", root=root, device="cpu")
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.x, c.x)
    index = torch.randperm(50, generator=torch.Generator().manual_seed(3))[:10]
    assert torch.equal(a.x, full.x[index])
    with pytest.raises(ValueError, match="larger than the dataset"):
        load_dataset("mnist", root=root, size=51, device="cpu")
    with pytest.raises(ValueError, match="positive"):
        load_dataset("mnist", root=root, size=0, device="cpu")


def test_cifar10_python_tarball_loads(tiny_cifar):
    root, arrays = tiny_cifar
    ds = load_dataset("cifar-10", root=root, device="cpu", download=False)
    assert ds.x.shape == (20, 3, 32, 32)
    train_labels = sum((arrays[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(ds.labels.numpy(), train_labels)
    first = arrays["data_batch_1"][0][0].astype(np.float64)  # CIFAR stores channel planes: R(1024) G B
    expected = (first - first.mean()) / first.std()
    np.testing.assert_allclose(ds.x[0].numpy().reshape(-1), expected, atol=1e-5)
    test = load_dataset("cifar10", train=False, root=root, device="cpu")
    assert test.x.shape == (3, 3, 32, 32)


@pytest.mark.skipif(not data.SYSTEM_FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist absent")
def test_real_fashion_mnist_from_the_debian_package(tmp_path):
    ds = load_dataset("fashion-mnist", root=tmp_path, size=1000, seed=0, device="cpu", download=False)
    assert ds.x.shape == (1000, 1, 28, 28)
    flat = ds.x.reshape(1000, -1)
    assert flat.mean(1).abs().max() < 1e-5
    assert (flat.std(1, correction=0) - 1).abs().max() < 1e-5
    counts = torch.bincount(ds.labels, minlength=10)
    assert counts.min() > 60  # ten balanced classes: about 100 each in 1000 draws
    full = load_dataset("fashion-mnist", root=tmp_path, device="cpu", download=False)
    assert len(full) == 60000
    assert len(load_dataset("fashion-mnist", train=False, root=tmp_path, device="cpu", download=False)) == 10000


def test_standardize_is_per_sample_with_population_std():
    x = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]], [[[1.0, 1.0], [1.0, 3.0]]]])
    out = standardize(x).reshape(2, -1)
    assert torch.allclose(out.mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(out.pow(2).mean(1), torch.ones(2), atol=1e-6)


def test_missing_dataset_offline_is_one_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", offline)
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", root=tmp_path, device="cpu")
    message = str(info.value)
    assert "'mnist' is not available" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "download failed" in message and "To get it" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(DatasetUnavailable, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", root=tmp_path, device="cpu")


def test_fashion_mnist_error_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("fashion-mnist", root=tmp_path, device="cpu", download=False)
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_command_line_exits_nonzero_with_the_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "data", "mnist", "--root", str(tmp_path), "--no-download"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "error: dataset 'mnist' is not available" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_loads_present_files(tiny_mnist):
    root, _ = tiny_mnist
    result = subprocess.run([sys.executable, "-m", "helpers", "data", "mnist", "--root", str(root)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "mnist train: x (50, 1, 28, 28)" in result.stdout


def test_unknown_dataset_and_data_root_override(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv(data.DATA_ENV_VAR)
    assert data.data_root() == REPOSITORY / "data"


def _stage(source: str, root: str, barrier) -> str:
    """Stage the IDX files of ``source`` into the data root ``root`` (in a fresh process, all at once)."""
    from helpers.data import images as data_module

    raw = Path(root) / "MNIST" / "raw"
    barrier.wait()
    try:
        return "ok" if data_module._stage_idx(Path(source), raw) else "incomplete"
    except Exception as err:  # reported to the test
        return f"{type(err).__name__}: {err}"


@pytest.mark.parametrize("archive", ["cifar", "idx"])
def test_processes_staging_one_dataset_at_once_all_succeed_and_leave_whole_files(tmp_path, archive):
    import gzip
    import multiprocessing

    from tests.conftest import write_cifar, write_idx

    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(4)
    root = tmp_path / "root"
    if archive == "idx":
        source = tmp_path / "source"
        source.mkdir()
        rng = np.random.default_rng(0)
        for name, shape in (("train-images-idx3-ubyte", (300, 28, 28)), ("train-labels-idx1-ubyte", (300,)),
                            ("t10k-images-idx3-ubyte", (50, 28, 28)), ("t10k-labels-idx1-ubyte", (50,))):
            top = 10 if "labels" in name else 256
            write_idx(source / f"{name}.gz", rng.integers(0, top, size=shape, dtype=np.uint8))
        with context.Pool(4) as pool:
            outcomes = pool.starmap(_stage, [(str(source), str(root), barrier)] * 4)
        assert outcomes == ["ok"] * 4
        raw = root / "MNIST" / "raw"
        assert sorted(p.name for p in raw.iterdir()) == sorted(data.IDX_FILES)  # no temporaries left
        for name in data.IDX_FILES:
            assert (raw / name).read_bytes() == gzip.decompress((source / f"{name}.gz").read_bytes())
        assert load_dataset("mnist", root=root, device="cpu", download=False).x.shape == (300, 1, 28, 28)
    else:
        root.mkdir()
        write_cifar(root, 20, 10)
        with context.Pool(4) as pool:
            shapes = pool.starmap(_load_cifar, [(str(root), barrier)] * 4)
        assert shapes == [(100, 3, 32, 32)] * 4
        assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def _load_cifar(root: str, barrier) -> tuple:
    barrier.wait()
    return tuple(load_dataset("cifar10", root=root, device="cpu", download=False).x.shape)
