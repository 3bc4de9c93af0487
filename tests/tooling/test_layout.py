"""The layout rules every step keeps: short modules, and no private name imported across modules.

A module of a step (the package or a script beside it) stays under
``MAX_LINES``, so that a lesson adds a module rather than growing one without
end; a name with a leading underscore is private to its module, so no import
names one (helpers two modules need are public in a module that says what it
holds).
"""

import ast
from pathlib import Path

import pytest

from shared.steps import shown, step_dirs
from shared.tools.source import step_files

pytestmark = pytest.mark.tooling

MAX_LINES = 450


def _step_modules() -> list[Path]:
    return [
        folder / relative
        for folder in step_dirs().values()
        for relative in step_files(folder)
        if relative.endswith(".py")
    ]


def _local_modules(path: Path) -> set[str]:
    """The top-level names the step of ``path`` defines: its package and the scripts beside it."""
    folder = next(parent for parent in path.parents if parent.parent.name == "steps")
    return {"npgrad"} | {script.stem for script in folder.glob("*.py")}


def _private_imports(source: str, local_modules: set[str]) -> list[str]:
    """``module: name`` for each private name a ``from ... import`` of the step's own code takes."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.split(".")[0] not in local_modules:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.module}: {alias.name}")
    return found


def test_no_module_of_any_step_is_longer_than_the_limit() -> None:
    too_long = [
        f"{shown(path)}: {lines} lines"
        for path in _step_modules()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_LINES
    ]
    assert not too_long, (
        f"modules over {MAX_LINES} lines (split each into modules that hold one idea): "
        + "; ".join(too_long)
    )


def test_no_private_name_is_imported_across_modules() -> None:
    crossing = [
        f"{shown(path)} imports {name}"
        for path in _step_modules()
        for name in _private_imports(path.read_text(encoding="utf-8"), _local_modules(path))
    ]
    assert not crossing, (
        "private names imported from another module (make the helper public in a module "
        "whose name says what it holds): " + "; ".join(crossing)
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from npgrad.ops.windows import _pair, as_pair\n", ["npgrad.ops.windows: _pair"]),
        ("from train import _read_member\n", ["train: _read_member"]),
        ("from npgrad.tensor import Tensor\nfrom numpy import _core\n", []),
        ("from npgrad import __version__\n", []),
    ],
)
def test_private_imports_are_found(source: str, expected: list[str]) -> None:
    assert _private_imports(source, {"npgrad", "train"}) == expected


def test_the_local_modules_are_the_package_and_the_scripts_beside_it() -> None:
    folder = step_dirs()[13]
    assert _local_modules(folder / "npgrad" / "ops" / "conv.py") >= {"npgrad", "train", "newton"}
    assert "numpy" not in _local_modules(folder / "train.py")
