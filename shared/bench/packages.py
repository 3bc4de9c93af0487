"""Importing what a benchmark measures: a step's ``npgrad`` and ``train.py``, and ``torch``.

One process can import only one ``npgrad``: :func:`load_folder` puts the chosen folder
first on ``sys.path`` and refuses a package already imported from elsewhere. Both the main
benchmark (:mod:`shared.bench.cli`) and the convolution part run alone
(:mod:`shared.bench.conv`) import through here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shared.steps import step_dir

__all__ = ["import_torch", "load_folder", "load_step", "load_train_module"]


def load_step(step: int) -> tuple[Path, ModuleType]:
    """Put ``steps/NN_*`` first on ``sys.path`` and import its ``npgrad``.

    Raises:
        LookupError: no such step, or below 05 (the benchmark needs ``backward``).
        ImportError: an ``npgrad`` from elsewhere is already imported in this process.
    """
    path = step_dir(step)
    if step < 5:
        raise LookupError(
            f"step {step:02d} has no backward(); the benchmark needs step 05 or later"
        )
    return path, load_folder(path)


def load_folder(path: Path) -> ModuleType:
    """Put ``path`` (a folder holding an ``npgrad`` package) first on ``sys.path``; import it.

    Raises:
        ImportError: ``path`` holds no ``npgrad``, or one from elsewhere is already imported.
    """
    if not (path / "npgrad" / "__init__.py").is_file():
        raise ImportError(f"{path} holds no npgrad package (no {path}/npgrad/__init__.py)")
    sys.path.insert(0, str(path))
    npgrad = importlib.import_module("npgrad")
    origin = Path(npgrad.__file__ or "").resolve()
    if path.resolve() not in origin.parents:
        raise ImportError(f"npgrad was imported from {origin}, not from {path}")
    return npgrad


def load_train_module(step_path: Path) -> ModuleType | None:
    """The step's training command ``train.py`` as the module ``train``, or None if absent.

    Call after :func:`load_step` (it imports ``npgrad`` from the step folder).
    """
    script = step_path / "train.py"
    if not script.is_file():
        return None
    spec = importlib.util.spec_from_file_location("train", script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {script}")
    train = importlib.util.module_from_spec(spec)
    sys.modules["train"] = train  # dataclasses look their module up while being created
    spec.loader.exec_module(train)
    return train


def import_torch() -> ModuleType | None:
    """``torch`` set to one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch
