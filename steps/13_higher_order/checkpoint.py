"""Saving a model's state as an ``.npz`` checkpoint and loading it back, without pickle.

``save_checkpoint`` writes ``model.state_dict()`` atomically; ``load_checkpoint``
reads the archive through ``read_checkpoint``, which checks its member names,
``.npy`` headers and sizes against the model before reading any array, so a
wrong, damaged or hostile file is refused with a message that says why. The
training command (``train.py``, beside this file) uses them for ``--save`` and
``--resume``.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from npgrad import Module
from npgrad.arrays import Arr


def save_checkpoint(model: Module, path: Path) -> None:
    """Write ``model.state_dict()`` to ``path`` as an ``.npz`` archive, without pickle.

    One array per parameter and buffer, named by its dotted key (``linear1.weight``,
    ``bn1.running_mean``). Written to a
    temporary file first and moved into place, so an interrupted save never leaves a
    half-written checkpoint. The name is used as given (``np.savez`` alone would append
    ``.npz`` to a name without it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, allow_pickle=False, **model.state_dict())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


class CheckpointError(ValueError):
    """A file that is not a checkpoint this command can read safely; the message says why."""


def load_checkpoint(model: Module, path: Path) -> None:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model``, in place.

    Read by :func:`read_checkpoint`, which checks the archive against the model before
    reading any array, then loaded by ``Module.load_state_dict``, which checks the values
    before copying any. Raises ``RuntimeError`` naming every missing, unexpected,
    mis-shaped, non-float or non-finite parameter or buffer when the checkpoint belongs to another
    model (or holds values no model should), :class:`CheckpointError` (a ``ValueError``)
    for a file that is not a readable ``.npz`` of plain arrays, and ``OSError`` when the
    file cannot be opened. A failed load leaves the model unchanged.
    """
    model.load_state_dict(read_checkpoint(path, model.state_dict()))


def read_checkpoint(path: Path, expected: Mapping[str, Arr]) -> dict[str, Arr]:
    """The arrays of the ``.npz`` archive at ``path`` whose names and shapes match ``expected``.

    Nothing is read before everything that can be checked cheaply has been: the archive's
    member names against ``expected``'s keys, then each member's ``.npy`` header (its
    declared shape and dtype) and its size in the zip directory. So a member that is not
    a parameter, a header declaring an absurd shape, or a small compressed member that
    would inflate to gigabytes is refused before any data is decompressed. No pickle is
    ever used: an array of Python objects is refused. Raises ``RuntimeError`` (in the
    words of ``Module.load_state_dict``) for missing, unexpected, mis-shaped and
    non-float members, :class:`CheckpointError` for a file that is empty, not a zip
    archive, damaged, or holds something other than plain ``.npy`` arrays.
    """
    path = Path(path)
    with path.open("rb") as file:  # OSError (FileNotFoundError...) for a file we cannot open
        start = file.read(len(np.lib.format.MAGIC_PREFIX))
    if not start:
        raise CheckpointError(f"{path} is empty, not an .npz checkpoint")
    if start == np.lib.format.MAGIC_PREFIX:
        raise CheckpointError(
            f"{path} holds a single .npy array, not an .npz archive of parameters"
        )
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not an .npz checkpoint (a zip archive of .npy arrays, as --save writes)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(archive, expected, path)
            return {name: _read_member(archive, info, path) for name, info in members.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise CheckpointError(f"{path} is a damaged or unsupported zip archive: {exc}") from exc


def _checked_members(
    archive: zipfile.ZipFile, expected: Mapping[str, Arr], path: Path
) -> dict[str, zipfile.ZipInfo]:
    """The archive's member for each expected key, after checking names, headers and sizes."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        if name in members:
            raise CheckpointError(f"{path} holds {info.filename!r} twice")
        members[name] = info
    problems = [f"missing key {name!r}" for name in expected if name not in members]
    problems += [f"unexpected key {name!r}" for name in members if name not in expected]
    for name, info in members.items():
        if name in expected:
            shape, dtype, header_size = _member_header(archive, info, path)
            if shape != expected[name].shape:
                problems.append(
                    f"shape mismatch for {name!r}: the checkpoint has shape {shape}, "
                    f"the model's has shape {expected[name].shape}"
                )
            if dtype.kind != "f":
                problems.append(
                    f"dtype mismatch for {name!r}: the checkpoint has dtype {dtype}, "
                    f"the model's has dtype {expected[name].dtype}"
                )
            # The zip directory's size must be the header plus the declared data exactly:
            # a member that would inflate to more (a zip bomb) is never decompressed.
            data_size = math.prod(shape) * dtype.itemsize
            if info.file_size != header_size + data_size and shape == expected[name].shape:
                raise CheckpointError(
                    f"{path}: member {info.filename!r} is {info.file_size} bytes, but its "
                    f"header declares {header_size + data_size} ({shape} of {dtype})"
                )
    if problems:
        raise RuntimeError(
            f"cannot load the checkpoint {path}:\n  "
            + "\n  ".join(problems)
            + "\nthe checkpoint must have exactly the keys and shapes of model.state_dict(), "
            "with floating-point values; nothing was loaded"
        )
    return members


def _member_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path
) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """The shape and dtype an ``.npy`` member declares, and its header's size in bytes.

    Read from the header alone; a header that declares Python objects is refused.
    """
    where = f"{path}: member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{where} is encrypted")
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise CheckpointError(f"{where} has .npy format version {version}, not 1.0 or 2.0")
        except ValueError as exc:  # no .npy magic, or a malformed header
            raise CheckpointError(f"{where} is not a plain .npy array: {exc}") from exc
        header_size = stream.tell()
    if dtype.hasobject:
        raise CheckpointError(
            f"{where} holds Python objects (dtype {dtype}), which only pickle can read; "
            "checkpoints are read without pickle (allow_pickle=False)"
        )
    return tuple(shape), dtype, header_size


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Arr:
    """The array of one member whose header :func:`_member_header` has checked."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran_order, dtype = read_header(stream)
        data = stream.read(math.prod(shape) * dtype.itemsize)
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise CheckpointError(f"{path}: member {info.filename!r} is shorter than its header says")
    array: Arr = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran_order else "C").copy()
