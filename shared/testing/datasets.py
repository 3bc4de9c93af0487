"""Small datasets the tests write, and the real MNIST the cache may hold.

``install_synthetic_mnist`` makes ``shared.data`` accept four small IDX files as
MNIST and try no other source, so training commands run in seconds and offline;
``real_mnist_folder`` gives the cached real MNIST, or skips with the command that
fetches it.
"""

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from shared import data
from shared.data import loading

# One fixed random pattern per class: easy to learn, so a short run must learn it.
PROTOTYPES = np.random.default_rng(1234).random((10, 28, 28)) < 0.15


def idx_bytes(array: npt.NDArray[np.uint8]) -> bytes:
    """Encode a uint8 array as an IDX file: 00 00 08 ndim, big-endian dims, payload."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def synthetic_images(
    rng: np.random.Generator, n: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """uint8 images (n, 28, 28) and their labels (n,): a class's pattern plus noise."""
    labels = rng.integers(0, 10, n).astype(np.int64)
    noise = rng.integers(0, 80, (n, 28, 28))
    return (PROTOTYPES[labels] * 170 + noise).astype(np.uint8), labels


def install_synthetic_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_train: int, n_test: int
) -> Path:
    """Write synthetic MNIST files under ``tmp_path`` and make them the only MNIST source.

    Returns the folder to pass as ``--data-dir``. The dataset table takes the files'
    own checksums, the cache moves under ``tmp_path`` and no default source (network,
    npm, Debian) is tried; ``monkeypatch`` undoes it all after the test.
    """
    rng = np.random.default_rng(7)
    train_images, train_labels = synthetic_images(rng, n_train)
    test_images, test_labels = synthetic_images(rng, n_test)
    files = {
        "train-images-idx3-ubyte": idx_bytes(train_images),
        "train-labels-idx1-ubyte": idx_bytes(train_labels.astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(test_images),
        "t10k-labels-idx1-ubyte": idx_bytes(test_labels.astype(np.uint8)),
    }
    folder = tmp_path / "synthetic"
    folder.mkdir()
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    sums = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    monkeypatch.setitem(data.DATASETS, "mnist", replace(data.DATASETS["mnist"], sha256=sums))
    monkeypatch.setenv("NPGRAD_DATA", str(tmp_path / "cache"))

    def no_sources(info: data.DatasetInfo) -> list[data.Source]:
        return []

    # Patched where fetch_files looks it up, not on the package that re-exports it.
    monkeypatch.setattr(loading, "default_sources", no_sources)
    return folder


def real_mnist_folder(cache: Path) -> Path:
    """``cache / "mnist"`` when it holds the four real MNIST files; else skip, saying how.

    ``cache`` is the real cache root, read before any test moves it
    (``data.cache_root()`` at import time).
    """
    folder = cache / "mnist"
    if not all((folder / name).is_file() for name in data.FILE_NAMES.values()):
        pytest.skip(
            f"real MNIST is not in the cache ({folder}); run `python -m shared.data "
            "--dataset mnist` (or set NPGRAD_DATA) to fetch it"
        )
    return folder
