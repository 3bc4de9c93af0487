"""A step README's Python examples, run as one test: the lesson's numbers are the code's.

``steps/NN_name/README.md`` is parsed with the standard library's doctest
parser and run with ``NORMALIZE_WHITESPACE`` and ``ELLIPSIS``, as
``python3 -m doctest -o NORMALIZE_WHITESPACE -o ELLIPSIS README.md`` would run it
from the step folder. The examples share one namespace, top to bottom, and
import ``npgrad`` from wherever the test session put it on ``sys.path``.
"""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from pathlib import Path

import pytest

OPTION_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
ITEM_NAME = "README.md"


def readme_examples(path: Path) -> doctest.DocTest:
    """The examples of one README as a single doctest."""
    text = path.read_text(encoding="utf-8")
    return doctest.DocTestParser().get_doctest(
        text, {"__name__": "README"}, path.name, str(path), 0
    )


class ReadmeExampleError(Exception):
    """The first failing example of a README, as the doctest runner reported it."""


class ReadmeFile(pytest.File):
    """A step README: one test item when it holds examples, none otherwise."""

    def collect(self) -> Iterator[pytest.Item]:
        if readme_examples(self.path).examples:
            yield ReadmeItem.from_parent(self, name=ITEM_NAME)


class ReadmeItem(pytest.Item):
    """Every example of one README, run in order in one namespace."""

    def runtest(self) -> None:
        test = readme_examples(self.path)
        report: list[str] = []
        # Later examples build on earlier ones: after the first failure the rest
        # would only repeat it, so only the first is reported.
        runner = doctest.DocTestRunner(
            optionflags=OPTION_FLAGS | doctest.REPORT_ONLY_FIRST_FAILURE, verbose=False
        )
        try:
            result = runner.run(test, out=report.append, clear_globs=True)
        finally:
            test.globs.clear()
        if result.failed:
            raise ReadmeExampleError(
                f"{result.failed} of {result.attempted} examples in {self.path} failed; "
                "the first:\n" + "".join(report)
            )

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: object = None,
    ) -> str:
        if isinstance(excinfo.value, ReadmeExampleError):
            return str(excinfo.value)
        return str(excinfo.getrepr(style="short"))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"[doctest] {self.path}"
