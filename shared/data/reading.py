"""Reading a dataset: the IDX file format, the loaded :class:`Dataset`, normalising, batching.

This is the part a training loop sees. :func:`shared.data.load_dataset` finds and verifies
the four files (:mod:`shared.data.loading`) and reads each with :func:`read_idx`; the
loop then normalises the images and walks through them in mini-batches::

    ds = load_dataset("mnist", data_dir=None)
    x_train, y_train, x_test, y_test = normalised_splits(ds, (784,))  # x: (60000, 784) float32
    rng = np.random.default_rng(0)
    for epoch in range(5):
        for xb, yb in batches(x_train, y_train, 64, shuffle=True, rng=rng):
            ...

An IDX file is a tiny header (a magic number that gives the element type and the number
of dimensions, then each dimension as a big-endian uint32) followed by the elements in
row-major order: one byte per pixel or label for MNIST and Fashion-MNIST.

This module imports NumPy and the standard library only; never ``npgrad``.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "GZIP_MAGIC",
    "IDX_UINT8",
    "IMAGE_SIDE",
    "Dataset",
    "DatasetError",
    "Splits",
    "batches",
    "normalise",
    "normalised_splits",
    "open_maybe_gzip",
    "read_idx",
]

GZIP_MAGIC: Final = b"\x1f\x8b"
IDX_UINT8: Final = 0x08
IMAGE_SIDE: Final = 28


class DatasetError(RuntimeError):
    """A dataset file is missing, unreadable, truncated or fails its checksum."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: uint8 images of shape (N, 28, 28) and int64 labels of shape (N,).

    ``mean``/``std`` are the statistics to pass to :func:`normalise`; ``classes[k]`` names
    label ``k``; ``files`` maps each file name to the verified file it was read from.
    (``eq=False``: comparing arrays element-wise has no single truth value.)
    """

    name: str
    train_images: npt.NDArray[np.uint8] = field(repr=False)
    train_labels: npt.NDArray[np.int64] = field(repr=False)
    test_images: npt.NDArray[np.uint8] = field(repr=False)
    test_labels: npt.NDArray[np.int64] = field(repr=False)
    mean: float
    std: float
    classes: tuple[str, ...]
    files: Mapping[str, Path] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading its uncompressed bytes, gzip or not (by magic bytes)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


def _redo_hint(path: Path) -> str:
    return (
        f"Delete {path} and run again (or `python -m shared.data`) to fetch a fresh copy, "
        "or pass --data-dir with intact files."
    )


def _read_uncompressed(path: Path) -> bytes:
    """All uncompressed bytes of ``path``; a damaged gzip stream becomes a DatasetError."""
    try:
        with open_maybe_gzip(path) as stream:
            return stream.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        # A gzip file cut short raises EOFError; flipped bytes raise BadGzipFile/zlib.error.
        raise DatasetError(
            f"{path}: the gzip stream is damaged or truncated ({exc}). {_redo_hint(path)}"
        ) from exc


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """Read an IDX file of unsigned bytes (raw, or gzip detected by its magic bytes 1f 8b).

    The header is ``00 00 08 <ndim>`` followed by ``ndim`` big-endian uint32 dimensions;
    the payload must hold exactly the product of the dimensions in bytes. Returns an
    array of that shape, e.g. (60000, 28, 28) for images and (60000,) for labels.

    Raises:
        DatasetError: the file is not IDX, is not of dtype uint8 (code 0x08), or its
            payload is shorter or longer than its header declares. The message names the
            file and says what to do.
        OSError: the file cannot be opened at all (for example it does not exist).
    """
    path = Path(path)
    data = _read_uncompressed(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file: expected the magic bytes 00 00 08 0N, "
            f"found {data[:4].hex(' ') or 'an empty file'}. {_redo_hint(path)}"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != IDX_UINT8:
        raise DatasetError(
            f"{path}: IDX dtype code 0x{dtype_code:02x}, expected 0x08 (unsigned byte) as "
            f"in the MNIST files. {_redo_hint(path)}"
        )
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares 0 dimensions. {_redo_hint(path)}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_len} header bytes, "
            f"the file holds {len(data)}. {_redo_hint(path)}"
        )
    dims = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big", signed=False) for i in range(ndim)
    )
    expected = math.prod(dims)
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "too long"
        raise DatasetError(
            f"{path}: {what} IDX file: the header declares shape {dims}, i.e. {expected} "
            f"data bytes, but the file holds {actual}. {_redo_hint(path)}"
        )
    # A bytearray makes the array writable without a second copy.
    flat = np.frombuffer(bytearray(data), dtype=np.uint8, offset=header_len)
    return flat.reshape(dims)


# --------------------------------------------------------------------------- preparing


def normalise(
    images: npt.NDArray[np.uint8], mean: float, std: float, *, flatten: bool = False
) -> npt.NDArray[np.float32]:
    """Scale uint8 pixels to [0, 1], then standardise: ``(x / 255 - mean) / std``.

    Args:
        images: uint8 array of shape (N, 28, 28) (any shape with a leading batch axis).
        mean, std: the dataset's statistics (``Dataset.mean``, ``Dataset.std``).
        flatten: if true, return shape (N, 784) (all non-batch axes flattened) for an
            MLP; otherwise the input's shape is kept.

    Returns:
        A new float32 array; float32 as PyTorch uses for datasets.

    Raises:
        TypeError: ``images`` is not uint8 (normalising twice is a common slip).
        ValueError: ``std`` is not positive.
    """
    if images.dtype != np.uint8:
        raise TypeError(
            f"normalise expects the raw uint8 images, got dtype {images.dtype}; "
            "were they normalised already?"
        )
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    scaled = images.astype(np.float32) / np.float32(255.0)
    result: npt.NDArray[np.float32] = (scaled - np.float32(mean)) / np.float32(std)
    if flatten:
        result = result.reshape(result.shape[0], -1)
    return result


class Splits(NamedTuple):
    """A dataset's model-ready arrays; unpacks as ``x_train, y_train, x_test, y_test``."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]


def normalised_splits(
    dataset: Dataset, image_shape: tuple[int, ...], *, limit: int | None = None
) -> Splits:
    """Both splits ready for a model: images normalised with the dataset's own statistics.

    Each image takes ``image_shape``: ``(784,)`` for an MLP, ``(1, 28, 28)`` (one channel)
    for a convolutional network. ``limit`` keeps the first ``limit`` training and the
    first ``limit`` test examples (None: all of them).

    Shapes: images (N, 28, 28) uint8 -> (N, *image_shape) float32; labels (N,) int64, as
    they are (not copied).

    Raises:
        ValueError: ``image_shape`` does not hold one 28 x 28 image, or ``limit`` is negative.
    """
    pixels = IMAGE_SIDE * IMAGE_SIDE
    if math.prod(image_shape) != pixels or any(side < 1 for side in image_shape):
        raise ValueError(
            f"image_shape {image_shape} does not hold one {IMAGE_SIDE}x{IMAGE_SIDE} image; "
            f"pass ({pixels},) for an MLP or (1, {IMAGE_SIDE}, {IMAGE_SIDE}) for a convnet"
        )
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or at least 0, got {limit}")
    keep = slice(None) if limit is None else slice(0, limit)

    def images(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        # normalise returns a fresh contiguous array, so the reshape is a view, not a copy.
        return normalise(raw[keep], dataset.mean, dataset.std).reshape(-1, *image_shape)

    return Splits(
        x_train=images(dataset.train_images),
        y_train=dataset.train_labels[keep],
        x_test=images(dataset.test_images),
        y_test=dataset.test_labels[keep],
    )


_X = TypeVar("_X", bound=np.generic)
_Y = TypeVar("_Y", bound=np.generic)


def batches(
    images: npt.NDArray[_X],
    labels: npt.NDArray[_Y],
    batch_size: int,
    *,
    shuffle: bool,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[npt.NDArray[_X], npt.NDArray[_Y]]]:
    """Yield ``(images[i:j], labels[i:j])`` mini-batches along the first axis.

    Every example appears exactly once; the last batch is smaller when ``batch_size``
    does not divide N (it is kept, not dropped). With ``shuffle=True`` the order is a
    permutation drawn from ``rng``, or from ``np.random.default_rng(seed)`` if no ``rng``
    is given (``seed=None``: fresh entropy, not reproducible). For a different but
    reproducible order each epoch, create ``rng = np.random.default_rng(seed)`` once and
    pass it to every epoch's call. With ``shuffle=False`` the order is unchanged.

    Shapes: images (N, ...) -> (B, ...); labels (N,) -> (B,), B <= batch_size.

    Raises:
        ValueError: ``batch_size < 1``, images and labels of different lengths, or both
            ``seed`` and ``rng`` given.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(images) != len(labels):
        raise ValueError(
            f"images and labels differ in length: {len(images)} images, {len(labels)} labels"
        )
    if seed is not None and rng is not None:
        raise ValueError("pass either seed or rng, not both")
    count = len(images)
    if shuffle:
        generator = rng if rng is not None else np.random.default_rng(seed)
        order = generator.permutation(count)
        for start in range(0, count, batch_size):
            chosen = order[start : start + batch_size]
            yield images[chosen], labels[chosen]
    else:
        for start in range(0, count, batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]
