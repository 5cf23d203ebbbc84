"""Datasets as the study preprocesses them: per-sample standardized images, one-hot labels.

Files are looked for, in order, in the data root (``data/`` in the repository, or ``$EARLY_DYNAMICS_DATA``),
then (Fashion-MNIST only) in the Debian package's folder, then downloaded by torchvision when online.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tv

from helpers.core.device import generator, resolve_device
from helpers.core.files import check_writable, copy_stream, extract_folder, folder_lock
from helpers.core.paths import configured_folder

DATA_ENV_VAR = "EARLY_DYNAMICS_DATA"
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TRAIN_SIZES = {"fashion-mnist": 60000, "mnist": 60000, "cifar10": 50000}
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"

HOW_TO_GET = {
    "fashion-mnist": "install the Debian package (`sudo apt-get install dataset-fashion-mnist`), or copy the four "
    "IDX files ({files}.gz) into {raw}",
    "mnist": "copy the four MNIST IDX files ({files}, gzipped or not) into {raw}, or run "
    "`python -m helpers data mnist` on a machine with internet access and copy its data/MNIST folder into {root}",
    "cifar10": "copy `cifar-10-python.tar.gz` (https://www.cs.toronto.edu/~kriz/cifar.html) into {root}, or run "
    "`python -m helpers data cifar10` once on a machine with internet access",
}


class DatasetUnavailable(RuntimeError):
    """A dataset's files are nowhere to be found and could not be downloaded."""


@dataclass(frozen=True)
class Data:
    """Images ``x`` [n, C, H, W] (float32, standardized per sample), one-hot ``y`` [n, 10], integer ``labels``."""

    x: torch.Tensor
    y: torch.Tensor
    labels: torch.Tensor
    name: str

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: str | torch.device) -> Data:
        """Return the same data on ``device``."""
        return Data(self.x.to(device), self.y.to(device), self.labels.to(device), self.name)


def canonical_name(name: str) -> str:
    """Return the canonical dataset name (``fashion-mnist``, ``mnist``, ``cifar10``) for a spelling of it."""
    key = str(name).lower().replace("_", "-").replace(" ", "-")
    key = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in HOW_TO_GET:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(HOW_TO_GET)}")
    return key


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data root: ``root`` if given, else ``$EARLY_DYNAMICS_DATA``, else ``data/`` in the repository."""
    return configured_folder(root, DATA_ENV_VAR, "data")


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-sample standardization x ← (x − mean(x)) / std(x) over all pixels and channels (population std)."""
    flat = x.reshape(x.shape[0], -1).to(torch.float32)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, correction=0, keepdim=True).clamp_min(torch.finfo(torch.float32).eps)
    return ((flat - mean) / std).reshape(x.shape)


def one_hot(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """One-hot float32 encoding of integer labels."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).to(torch.float32)


def subset_indices(total: int, size: int | None, seed: int) -> torch.Tensor:
    """The first ``size`` entries of a seeded random permutation of ``range(total)`` (all, in order, if None)."""
    if size is None:
        return torch.arange(total)
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int or None, got {size!r}")
    if size > total:
        raise ValueError(f"size={size} is larger than the dataset ({total} examples)")
    return torch.randperm(total, generator=generator(seed))[:size]


def _stage_idx(source: Path, raw: Path) -> bool:
    """Make ``raw`` hold the four uncompressed IDX files, gunzipping from ``source``; True when complete. Several
    processes may stage at once: each writes its own temporary and renames it into place (:mod:`helpers.core.files`)."""
    for name in IDX_FILES:
        target = raw / name
        if target.exists():
            continue
        candidate = next((c for c in (source / name, source / f"{name}.gz") if c.exists()), None)
        if candidate is None:
            return False
        check_writable(raw, f"set ${DATA_ENV_VAR} to a writable folder (the IDX files are unpacked there)")
        opener = gzip.open if candidate.suffix == ".gz" else open
        with opener(candidate, "rb") as src:
            copy_stream(src, target)
    return True


def _cifar_complete(root: Path) -> bool:
    """True when every CIFAR-10 batch file exists under ``root``."""
    names = [name for name, _ in tv.CIFAR10.train_list + tv.CIFAR10.test_list]
    return all((root / CIFAR_FOLDER / name).exists() for name in names)


class _CIFAR10(tv.CIFAR10):
    """torchvision's CIFAR-10 reader, checking that the batch files exist rather than their checksums."""

    def _check_integrity(self) -> bool:
        return _cifar_complete(Path(self.root))

    def _load_meta(self) -> None:
        self.classes = [str(i) for i in range(NUM_CLASSES)]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def _idx_class(name: str) -> type[tv.MNIST]:
    return tv.FashionMNIST if name == "fashion-mnist" else tv.MNIST


def _prepare_idx(name: str, root: Path, download: bool) -> None:
    cls = _idx_class(name)
    raw = root / cls.__name__ / "raw"
    looked = [f"{raw} (the data root; set ${DATA_ENV_VAR} to use another)"]
    found = _stage_idx(raw, raw)
    if not found and name == "fashion-mnist":
        looked.append(f"{SYSTEM_FASHION_MNIST} (Debian package dataset-fashion-mnist)")
        found = SYSTEM_FASHION_MNIST.is_dir() and _stage_idx(SYSTEM_FASHION_MNIST, raw)
    if not found:
        _download(lambda: cls(str(root), train=True, download=True), name, root, looked, download)


def _read_idx(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ds = _idx_class(name)(str(root), train=train, download=False)
    return ds.data.unsqueeze(1), ds.targets


def _prepare_cifar10(root: Path, download: bool) -> None:
    archive = root / CIFAR_ARCHIVE
    looked = [f"{root / CIFAR_FOLDER} (the data root; set ${DATA_ENV_VAR} to use another)", str(archive)]
    if not (root / CIFAR_FOLDER).is_dir() and archive.exists():
        check_writable(root, f"set ${DATA_ENV_VAR} to a writable folder (the CIFAR-10 archive is unpacked there)")
        extract_folder(lambda folder: _extract_cifar(archive, folder), root / CIFAR_FOLDER)
    if not _cifar_complete(root):
        _download(lambda: tv.CIFAR10(str(root), train=True, download=True), "cifar10", root, looked, download)


def _read_cifar10(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ds = _CIFAR10(str(root), train=train, download=False)
    x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)
    return x, torch.tensor(ds.targets)


def prepare_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make the files of ``name`` ready in the data root (unpacked from the Debian package's folder or an archive,
    or downloaded when online); return the data root. Raises :class:`DatasetUnavailable` (where to get the data)
    or :class:`~helpers.core.files.FolderNotWritable` (the data root cannot take the files), each one clear message."""
    key, where = canonical_name(name), data_root(root)
    if key == "cifar10":
        _prepare_cifar10(where, download)
    else:
        _prepare_idx(key, where, download)
    return where


def _extract_cifar(archive: Path, folder: Path) -> None:
    """Unpack the batch files of ``archive`` (``cifar-10-batches-py/*``) flat into ``folder``."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).parent.name == CIFAR_FOLDER]
        for member in members:
            member.name = Path(member.name).name
        tar.extractall(folder, members=members, filter="data")


def _download(fetch, name: str, root: Path, looked: list[str], allowed: bool) -> None:
    """Run torchvision's download (one process at a time per data root); a refusal or any network failure becomes
    one :class:`DatasetUnavailable`."""
    if not allowed:
        raise _unavailable(name, root, looked, "downloading was not allowed (download=False)")
    check_writable(root, f"set ${DATA_ENV_VAR} to a writable folder (downloads are saved there)")
    try:
        with folder_lock(root, ".download.lock"):
            fetch()
    except (RuntimeError, urllib.error.URLError, OSError) as err:
        lines = str(err).strip().splitlines()
        reason = f"the download failed ({lines[-1] if lines else type(err).__name__})"
        raise _unavailable(name, root, looked, reason) from None


def _unavailable(name: str, root: Path, looked: list[str], reason: str) -> DatasetUnavailable:
    raw = root / _idx_class(name).__name__ / "raw"
    how = HOW_TO_GET[name].format(files=", ".join(IDX_FILES), raw=raw, root=root)
    places = "\n".join(f"  - {place}" for place in looked)
    return DatasetUnavailable(f"dataset {name!r} is not available.\nLooked in:\n{places}\nand {reason}.\n"
                              f"To get it: {how}.")


def load_dataset(
    name: str,
    *,
    train: bool = True,
    size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> Data:
    """Load a split of ``name``, standardized per sample, with one-hot labels; a seeded subset if ``size`` is given."""
    key = canonical_name(name)
    where = prepare_dataset(key, root, download)
    images, labels = _read_cifar10(where, train) if key == "cifar10" else _read_idx(key, where, train)
    index = subset_indices(images.shape[0], size, seed)
    x = standardize(images[index])
    labels = labels[index].long()
    target = resolve_device(device)
    return Data(x.to(target), one_hot(labels).to(target), labels.to(target), key)
