"""The pytest plugin that points one test run at one step.

``pytest --step NN`` puts ``steps/NN_*`` first on ``sys.path`` and runs every
test introduced at step NN or earlier; ``--impl DIR`` tests the ``npgrad``
package in ``DIR`` (a learner's workspace) with the same selection, and
``--new-only`` keeps only the tests introduced exactly at step NN;
``--exercise NAME`` keeps only the tests that the step README's Exercises
table lists for one exercise (and fails when the table names a test that does
not exist). A package that does not import is reported in one line naming the
file and line. A test declares its step with ``pytest.mark.step(N)`` (usually once per module, as
``pytestmark``); ``step(N, last=M)`` retires a test after step M, for the few
names a later lesson replaces. A test that declares no step is a collection
error. ``pytest --tooling`` runs the tooling tests instead, which drive every
step in their own subprocesses.

The selected step's lesson, ``steps/NN_*/README.md``, runs too: its Python
examples are one more test of step NN (``README.md``), so the printed numbers
stay the code's. Only that step's README runs (earlier ones describe earlier
APIs); with ``--impl DIR`` it is ``DIR/README.md`` when there is one. It is
collected when the run collects the whole suite (no paths, ``tests`` or the
repository root), not when a run names test files.
"""

import ast
import os
import sys
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from shared.steps import REPO_ROOT, shown, step_dir, step_dirs
from shared.testing.readme_doctest import ReadmeFile
from shared.tools.lesson import (
    LessonExercise,
    choose_exercise,
    lesson_exercises,
    missing_tests,
    readme_path,
    select_tests,
)

_SELECTED_STEP = pytest.StashKey[int]()
_README = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("npgrad", "npgrad steps")
    group.addoption(
        "--step",
        type=int,
        default=None,
        help="run the tests introduced at step NN or earlier against steps/NN_* "
        "(default: the latest step)",
    )
    group.addoption(
        "--impl",
        type=Path,
        default=None,
        metavar="DIR",
        help="test the npgrad package inside DIR (a learner's workspace) instead of the step's own",
    )
    group.addoption(
        "--new-only",
        action="store_true",
        default=False,
        help="keep only the tests introduced exactly at the selected step (a learner's exercises)",
    )
    group.addoption(
        "--exercise",
        action="append",
        default=[],
        metavar="NAME",
        help="keep only the tests the step README's Exercises table lists for exercise NAME "
        "(its number, or a function name in its Implement column; a unique prefix will do); "
        "may be repeated",
    )
    group.addoption(
        "--tooling",
        action="store_true",
        default=False,
        help="run the tooling tests (exercises, drift, propagate) instead of one step's tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Timings on a shared 2-core machine are noisy: no per-example deadline.
    settings.register_profile("npgrad", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile(
        "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
    )
    # The tooling tests run workspaces full of stubs, which fail for every input:
    # shrinking (and reporting each distinct failure) would only cost time, and a
    # few examples suffice to reach a stub. A restored workspace is byte for byte
    # the step itself, which the test sessions check with the full profile.
    settings.register_profile(
        "tooling",
        parent=settings.get_profile("npgrad"),
        max_examples=10,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        report_multiple_bugs=False,
    )
    profile = os.environ.get("NPGRAD_HYPOTHESIS_PROFILE")
    settings.load_profile(profile or ("ci" if os.environ.get("CI") else "npgrad"))
    if config.getoption("tooling"):
        return
    selected = config.getoption("step")
    step = max(step_dirs()) if selected is None else selected
    impl: Path | None = config.getoption("impl")
    root = impl.resolve() if impl is not None else step_dir(step)
    if not (root / "npgrad" / "__init__.py").is_file():
        raise pytest.UsageError(
            f"{root} holds no npgrad package (expected {root}/npgrad/__init__.py)"
        )
    if "npgrad" in sys.modules:
        raise pytest.UsageError(
            "npgrad is already imported in this interpreter; run one step per process"
        )
    sys.path.insert(0, str(root))
    config.stash[_SELECTED_STEP] = step
    readme = root / "README.md"
    if impl is not None and not readme.is_file():
        readme = step_dir(step) / "README.md"
    if readme.is_file() and _collects_the_whole_suite(config):
        config.stash[_README] = readme.resolve()
        config.args.append(str(readme))


def _collects_the_whole_suite(config: pytest.Config) -> bool:
    """True when the run collects every test (not the files or tests it names)."""
    if config.args_source is pytest.Config.ArgsSource.TESTPATHS:
        return True
    whole = {REPO_ROOT, REPO_ROOT / "tests", config.rootpath, config.rootpath / "tests"}
    invoked = config.invocation_params.dir
    return any("::" not in arg and (invoked / arg).resolve() in whole for arg in config.args)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    readme = parent.config.stash.get(_README, None)
    if readme is None or file_path.resolve() != readme:
        return None
    # Named by its path as the tools show paths: a workspace's README lies outside
    # the repository, where pytest would name it by nothing at all.
    collector = ReadmeFile.from_parent(parent, path=file_path, nodeid=shown(readme))
    # A test of the selected step: kept by --new-only, counted with the step's tests.
    collector.add_marker(pytest.mark.step(parent.config.stash[_SELECTED_STEP]))
    return collector


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("tooling"):
        return "npgrad: tooling tests"
    step = config.stash[_SELECTED_STEP]
    import npgrad

    return f"npgrad: step {step:02d}, package {Path(npgrad.__file__).parent}"


def declared_module_step(path: Path) -> int | None:
    """The step a test module declares with ``pytestmark = pytest.mark.step(N)``, if any.

    Read from the source without importing it: a module of a later step may
    import names that the selected step does not have yet.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == "pytestmark"
                for target in node.targets
            )
        ):
            continue
        marks = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
        for mark in marks:
            if (
                isinstance(mark, ast.Call)
                and isinstance(mark.func, ast.Attribute)
                and mark.func.attr == "step"
                and mark.args
                and isinstance(mark.args[0], ast.Constant)
                and isinstance(mark.args[0].value, int)
            ):
                return mark.args[0].value
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.is_dir():
        if collection_path.name == "tooling":
            return not config.getoption("tooling")
        return None
    if not (collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        return None
    if config.getoption("tooling"):
        return collection_path.parent.name != "tooling"
    module_step = declared_module_step(collection_path)
    if module_step is not None and module_step > config.stash[_SELECTED_STEP]:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("tooling"):
        return
    step = config.stash[_SELECTED_STEP]
    new_only: bool = config.getoption("new_only")
    undeclared: list[str] = []
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        mark = item.get_closest_marker("step")
        if mark is None:
            undeclared.append(item.nodeid)
            continue
        first: int = mark.args[0]
        last: int | None = mark.kwargs.get("last")
        applies = first <= step and (last is None or step <= last)
        if new_only:
            applies = first == step
        (selected if applies else deselected).append(item)
    if undeclared:
        listed = "\n  ".join(undeclared)
        raise pytest.UsageError(
            "these tests declare no step; add pytestmark = pytest.mark.step(N) to the module "
            f"or @pytest.mark.step(N) to the test:\n  {listed}"
        )
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = selected


# --- one exercise at a time, and a package that does not import --------------------------


def describe_import_error(error: BaseException, package: Path) -> str:
    """``FILE:LINE: Type: message`` for the place in ``package`` where importing it failed."""
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}:{error.lineno}"
        return f"{where}: {type(error).__name__}: {error.msg}"
    frames = traceback.extract_tb(error.__traceback__)
    # The learner's line: the last frame inside the package (else the last of all).
    inside = [frame for frame in frames if Path(frame.filename).is_relative_to(package)] or frames
    where = f"{inside[-1].filename}:{inside[-1].lineno}: " if inside else ""
    return f"{where}{type(error).__name__}: {error}"


@pytest.hookimpl(tryfirst=True, specname="pytest_sessionstart")
def pytest_sessionstart_import_package(session: pytest.Session) -> None:
    """Import the package under test first: if it fails, one line says where, and pytest stops.

    Otherwise every test module would report the same traceback as a collection
    error, or the report header an INTERNALERROR.
    """
    config = session.config
    if config.getoption("tooling"):
        return
    impl: Path | None = config.getoption("impl")
    package = impl.resolve() if impl is not None else step_dir(config.stash[_SELECTED_STEP])
    try:
        import npgrad  # noqa: F401
    except Exception as error:
        raise pytest.UsageError(
            f"npgrad in {package} does not import: "
            f"{describe_import_error(error, package / 'npgrad')}"
        ) from None


@pytest.hookimpl(tryfirst=True, specname="pytest_sessionstart")
def pytest_sessionstart_check_exercise(session: pytest.Session) -> None:
    """An unknown or ambiguous ``--exercise`` name: one line saying what is valid."""
    config = session.config
    if config.getoption("tooling") or not config.getoption("exercise"):
        return
    _chosen_exercises(config)


def _chosen_exercises(config: pytest.Config) -> list[LessonExercise]:
    step = config.stash[_SELECTED_STEP]
    exercises = lesson_exercises(step)
    if not exercises:
        raise pytest.UsageError(f"--exercise: {readme_path(step)} has no Exercises table")
    try:
        return [choose_exercise(exercises, name, step) for name in config.getoption("exercise")]
    except LookupError as error:
        raise pytest.UsageError(f"--exercise: {error}") from None


@pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_exercise(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--exercise NAME``: keep the tests that the README's row for NAME lists.

    Every test the whole table names must have been collected, so that the
    lesson and the tests cannot drift apart.
    """
    wanted: list[str] = config.getoption("exercise")
    if config.getoption("tooling") or not wanted:
        return
    step = config.stash[_SELECTED_STEP]
    exercises = lesson_exercises(step)
    chosen = _chosen_exercises(config)
    readme = readme_path(step)
    collected = [_collected_test(config, item) for item in items]
    if missing := missing_tests(step, exercises, collected):
        raise pytest.UsageError(
            f"--exercise: the Exercises table of {readme} names tests that were not collected "
            f"(fix the table or the tests): {'; '.join(missing)}"
        )
    keep = select_tests(step, chosen, collected)
    deselected = [item for item, kept in zip(items, keep, strict=True) if not kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = [item for item, kept in zip(items, keep, strict=True) if kept]


def _collected_test(config: pytest.Config, item: pytest.Item) -> tuple[str, str, str | None]:
    """A test as the Exercises table names it: module, function, parametrization id."""
    try:
        module = item.path.relative_to(config.rootpath).as_posix()
    except ValueError:
        module = item.path.as_posix()
    callspec = getattr(item, "callspec", None)
    function = getattr(item, "originalname", item.name)
    return module, function, callspec.id if callspec is not None else None
