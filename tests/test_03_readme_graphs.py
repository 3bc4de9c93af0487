"""The graphs in the selected step's README are what ``shared.graph`` draws now.

A README marks a graph with ``<!-- graph: NAME -->`` right above a ```` ```mermaid ````
block; ``NAME`` is a Tensor its ``>>>`` examples define. The examples run against the
``npgrad`` this session selected. After a change, redraw the blocks with
``python3 -m shared.graph readme steps/NN_name/README.md``. The other tests here check
that machinery on READMEs written into ``tmp_path``.
"""

from pathlib import Path

import pytest

from npgrad import Tensor
from shared.graph import (
    ReadmeGraphError,
    graph_namespaces,
    has_graph_markers,
    leaf_names,
    main,
    readme_differences,
    render_readme,
    run_readme_examples,
    to_mermaid,
)
from shared.steps import shown, step_dir

pytestmark = pytest.mark.step(3)


def selected_readme(config: pytest.Config) -> Path:
    """The README of the step this session tests (``--step NN``).

    Without ``--step`` the session tests the latest step, where this file's test
    has retired, so it never runs then.
    """
    step: int = config.getoption("step")
    return step_dir(step) / "README.md"


# Steps 03-09 each draw their worked example's graph; the later lessons draw none
# (their graphs are whole models), so the test retires after step 09.
@pytest.mark.step(3, last=9)
def test_the_step_readme_graphs_match_the_renderer(request: pytest.FixtureRequest) -> None:
    readme = selected_readme(request.config)
    text = readme.read_text(encoding="utf-8")
    assert has_graph_markers(text), (
        f"{shown(readme)} marks no graph: put a line <!-- graph: NAME --> above a ```mermaid "
        "block of its worked example"
    )
    differing = readme_differences(text, graph_namespaces(readme), shown(readme))
    assert not differing, (
        f"{shown(readme)}: the graph of {', '.join(differing)} is not what the renderer draws "
        f"now; redraw it with: python3 -m shared.graph readme {shown(readme)}"
    )


EXAMPLES = """\
# A lesson

>>> from npgrad import Tensor
>>> a = Tensor([1.0, 2.0], requires_grad=True)
>>> b = Tensor([3.0, 4.0], requires_grad=True)
>>> c = a * b
>>> d = c.log()
>>> print(d.shape)
(2,)
"""

STALE = """
<!-- graph: d -->
```mermaid
flowchart TD
    n0["an old picture"]
```

The end.
"""


def write_readme(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def drawn_now(readme: Path, name: str) -> str:
    namespace = run_readme_examples(readme)
    value = namespace[name]
    assert isinstance(value, Tensor)
    return to_mermaid(value, names=leaf_names(namespace))


def test_the_examples_run_in_one_namespace(tmp_path: Path) -> None:
    namespace = run_readme_examples(write_readme(tmp_path, EXAMPLES))
    assert {"a", "b", "c", "d"} <= namespace.keys()
    assert set(leaf_names(namespace)) == {"a", "b"}, "only leaves are named in the picture"


def test_a_stale_block_is_found_and_redrawn_in_place(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, EXAMPLES + STALE)
    namespaces = graph_namespaces(readme)
    assert readme_differences(readme.read_text(encoding="utf-8"), namespaces) == ["d"]
    redrawn = render_readme(readme.read_text(encoding="utf-8"), namespaces)
    expected_block = f"<!-- graph: d -->\n```mermaid\n{drawn_now(readme, 'd')}\n```\n"
    assert redrawn == EXAMPLES + "\n" + expected_block + "\nThe end.\n"
    assert '"a: leaf<br/>(2,) float64<br/>requires_grad"' in redrawn
    assert '"b: leaf' in redrawn
    assert readme_differences(redrawn, namespaces) == []


def test_a_marker_alone_gets_its_block(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, EXAMPLES + "\n<!-- graph: c -->\nText after.\n")
    namespaces = graph_namespaces(readme)
    text = readme.read_text(encoding="utf-8")
    assert readme_differences(text, namespaces) == ["c"]
    redrawn = render_readme(text, namespaces)
    assert f"<!-- graph: c -->\n```mermaid\n{drawn_now(readme, 'c')}\n```\nText after.\n" in (
        redrawn
    )


def test_each_graph_is_of_its_name_as_the_examples_above_its_marker_left_it(
    tmp_path: Path,
) -> None:
    later = "\n<!-- graph: d -->\n\n>>> d = a * 2.0\n\n<!-- graph: d -->\n"
    readme = write_readme(tmp_path, EXAMPLES + later)
    first, second = graph_namespaces(readme)
    redrawn = render_readme(readme.read_text(encoding="utf-8"), [first, second])
    first_block, second_block = redrawn.split("```mermaid\n")[1:]
    assert '("log<br/>(2,) float64")' in first_block, "the first marker shows d = log(a * b)"
    assert "log" not in second_block.split("```")[0], "the second shows d = a * 2.0"
    assert '"a: leaf' in second_block
    assert '"b: leaf' not in second_block.split("```")[0], "b is not part of d = a * 2.0"


def test_a_marker_above_the_example_that_defines_its_name_says_so(tmp_path: Path) -> None:
    readme = write_readme(tmp_path, "<!-- graph: d -->\n\n" + EXAMPLES)
    with pytest.raises(ReadmeGraphError, match=r"above the marker define no variable 'd'"):
        render_readme(readme.read_text(encoding="utf-8"), graph_namespaces(readme))


def test_the_command_checks_then_rewrites_a_readme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = write_readme(tmp_path, EXAMPLES + STALE)
    run_readme_examples(readme)  # an example that fails raises here, with its own message
    before = readme.read_text(encoding="utf-8")
    assert main(["readme", str(readme), "--check"]) == 1
    assert f"{readme}: the graph of d differs" in capsys.readouterr().out
    assert readme.read_text(encoding="utf-8") == before, "--check changes nothing"
    assert main(["readme", str(readme)]) == 0
    assert drawn_now(readme, "d") in readme.read_text(encoding="utf-8")
    assert main(["readme", str(readme), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_the_command_on_a_readme_without_markers_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = write_readme(tmp_path, EXAMPLES)
    assert main(["readme", str(readme), "--check"]) == 0
    assert "no graph markers" in capsys.readouterr().out
    assert not has_graph_markers(EXAMPLES)


@pytest.mark.parametrize(
    ("marked", "message"),
    [
        ("<!-- graph: e -->\n```mermaid\n```\n", r"graph of 'e'.*define no variable 'e'"),
        ("<!-- graph: EXAMPLES -->\n", r"define no variable"),
        ("<!-- graph: Tensor -->\n```mermaid\n```\n", r"'Tensor' is a type, not a Tensor"),
        ("<!-- graph: d -->\n```mermaid\nflowchart TD\n", r"never closed"),
    ],
)
def test_a_marker_that_cannot_give_a_graph_says_why(
    tmp_path: Path, marked: str, message: str
) -> None:
    readme = write_readme(tmp_path, EXAMPLES + "\n" + marked)
    with pytest.raises(ReadmeGraphError, match=message):
        render_readme(readme.read_text(encoding="utf-8"), graph_namespaces(readme), "README.md")


def test_an_example_that_raises_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_readme_examples(write_readme(tmp_path, EXAMPLES))  # these examples themselves work
    readme = write_readme(tmp_path, EXAMPLES + ">>> d.no_such_attribute\n\n<!-- graph: d -->\n")
    with pytest.raises(ReadmeGraphError, match=r"README\.md:10: 'd\.no_such_attribute' raised"):
        run_readme_examples(readme)
    assert main(["readme", str(readme)]) == 2
    assert "AttributeError" in capsys.readouterr().err
