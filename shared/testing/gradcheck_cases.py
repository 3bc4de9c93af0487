"""Gradcheck cases (steps 09 on): one record per operation, and the coverage they reach.

Each step's ``tests/test_NN_gradcheck.py`` lists ``CASES``; a later step's coverage
test loads the earlier lists with :func:`load_cases` and asks
:func:`unreached_backward_functions` which registered backward functions no case
reaches. ``npgrad`` is imported inside the functions: the package under test is
whichever step is on the path.
"""

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from shared.steps import REPO_ROOT

if TYPE_CHECKING:
    from npgrad import Tensor


@dataclass(frozen=True)
class Case:
    """One differentiable operation, applied to float64 inputs away from its kinks."""

    name: str
    fn: "Callable[..., Tensor]"
    inputs: "Callable[[np.random.Generator], list[Tensor]]"


def load_test_module(filename: str) -> ModuleType:
    """The test file ``tests/<filename>`` loaded as a module (tests are not a package)."""
    path = REPO_ROOT / "tests" / filename
    spec = importlib.util.spec_from_file_location(f"_cases_of_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cases(step: int) -> list[Case]:
    """The ``CASES`` of ``tests/test_{step:02d}_gradcheck.py``, loaded from its file."""
    cases: list[Case] = load_test_module(f"test_{step:02d}_gradcheck.py").CASES
    return cases


def in_package(forward: object) -> bool:
    """True for a forward function of the package (or NumPy's), not one a test registered."""
    module: str = getattr(forward, "__module__", "") or ""
    return module.startswith(("npgrad", "numpy")) or isinstance(forward, np.ufunc)


def unreached_backward_functions(cases: Iterable[Case]) -> tuple[list[str], set[str]]:
    """The package's registered backward functions no case reaches, and what is reached.

    Runs every case's forward once (seed 0) and walks its graph. The first result
    names each unreached ``(forward function, argument)`` entry, and each variadic
    entry (step 10 on) whose forward function no case reaches; the second holds the
    names of the forward functions reached.
    """
    from npgrad import BACK_FUNCS, sorted_computational_graph

    covered: set[tuple[object, int | str]] = set()
    for case in cases:
        inputs = case.inputs(np.random.default_rng(0))
        for node in sorted_computational_graph(case.fn(*inputs)):
            if node.recipe is not None:
                covered.update((node.recipe.func, key) for key in node.recipe.parents)
    reached = {forward for forward, _ in covered}
    missing = sorted(
        f"{getattr(forward, '__name__', forward)} argument {key!r}"
        for forward, key in BACK_FUNCS.entries()
        if in_package(forward) and (forward, key) not in covered
    )
    variadic: Callable[[], list[object]] = getattr(BACK_FUNCS, "variadic_entries", list)
    missing += sorted(
        f"{getattr(forward, '__name__', forward)} (variadic)"
        for forward in variadic()
        if in_package(forward) and forward not in reached
    )
    return missing, {getattr(forward, "__name__", "") for forward in reached}
