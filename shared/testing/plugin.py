"""The pytest plugin that points one test run at one step.

``pytest --step NN`` puts ``steps/NN_*`` first on ``sys.path`` and runs every
test introduced at step NN or earlier; ``--impl DIR`` tests the ``npgrad``
package in ``DIR`` (a learner's workspace) with the same selection, and
``--new-only`` keeps only the tests introduced exactly at step NN. A test
declares its step with ``pytest.mark.step(N)`` (usually once per module, as
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
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from shared.steps import REPO_ROOT, shown, step_dir, step_dirs
from shared.testing.readme_doctest import ReadmeFile

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
