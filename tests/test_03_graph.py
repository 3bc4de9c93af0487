"""Pictures of the recorded graph (``shared.graph``) of the selected step's tensors.

The renderer reads only ``recipe``, ``array`` and ``requires_grad``, so these tests
build graphs with the step's own ``npgrad`` (``*`` and ``log`` exist from step 03 on)
and, for what npgrad never records (a keyword parent, a function without a name), with
small stand-in classes.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from npgrad import Tensor
from shared.graph import GraphvizNotFoundError, check_drawable, draw, to_dot, to_mermaid

pytestmark = pytest.mark.step(3)

TINY_MERMAID = """\
flowchart TD
    n0["a: leaf<br/>(2,) float64<br/>requires_grad"]
    n1["b: leaf<br/>(2,) float64<br/>requires_grad"]
    n2("c: multiply<br/>(2,) float64")
    n3("log<br/>(2,) float64")
    n0 -->|0| n2
    n1 -->|1| n2
    n2 --> n3
    classDef leaf fill:#dbeafe,stroke:#1d4ed8,color:#000
    class n0,n1 leaf
    classDef requiresGrad stroke-width:3px
    class n0,n1,n2,n3 requiresGrad"""

TINY_DOT = """\
digraph npgrad {
    node [shape=box, fontname="Helvetica", fontsize=11];
    edge [fontname="Helvetica", fontsize=10];
    n0 [label="a: leaf\\n(2,) float64\\nrequires_grad", style=filled, fillcolor="#dbeafe", \
color="#1d4ed8", penwidth=3];
    n1 [label="b: leaf\\n(2,) float64\\nrequires_grad", style=filled, fillcolor="#dbeafe", \
color="#1d4ed8", penwidth=3];
    n2 [label="c: multiply\\n(2,) float64", style=rounded, penwidth=3];
    n3 [label="log\\n(2,) float64", style=rounded, penwidth=3];
    n0 -> n2 [label="0"];
    n1 -> n2 [label="1"];
    n2 -> n3;
}
"""


def tiny_graph() -> tuple[Tensor, dict[str, Tensor]]:
    """``d = log(a * b)``, with the names a README would show."""
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    c = a * b
    return c.log(), {"a": a, "b": b, "c": c}


def test_mermaid_of_a_tiny_graph_is_exactly_this_text() -> None:
    d, names = tiny_graph()
    assert to_mermaid(d, names=names) == TINY_MERMAID


def test_dot_of_a_tiny_graph_is_exactly_this_text() -> None:
    d, names = tiny_graph()
    assert to_dot(d, names=names) == TINY_DOT


def test_the_text_is_the_same_for_the_same_graph_built_twice() -> None:
    first, first_names = tiny_graph()
    second, second_names = tiny_graph()
    assert to_mermaid(first, first_names) == to_mermaid(second, second_names)
    assert to_dot(first) == to_dot(second)


def test_without_names_a_leaf_says_leaf_and_an_op_its_function() -> None:
    d, _ = tiny_graph()
    text = to_mermaid(d)
    assert 'n0["leaf<br/>(2,) float64<br/>requires_grad"]' in text
    assert 'n2("multiply<br/>(2,) float64")' in text


def test_a_leaf_without_requires_grad_is_marked_as_a_leaf_only() -> None:
    x = Tensor(np.zeros((3, 1), dtype=np.float32))
    assert to_mermaid(x, names={"x": x}) == (
        "flowchart TD\n"
        '    n0["x: leaf<br/>(3, 1) float32"]\n'
        "    classDef leaf fill:#dbeafe,stroke:#1d4ed8,color:#000\n"
        "    class n0 leaf"
    )
    dot = to_dot(x)
    assert 'n0 [label="leaf\\n(3, 1) float32", style=filled' in dot
    assert "penwidth" not in dot, "a tensor that does not require grad has a thin outline"


def test_a_scalar_tensor_shows_the_empty_shape() -> None:
    a = Tensor(np.array(2.0), requires_grad=True)
    assert '"leaf<br/>() float64<br/>requires_grad"' in to_mermaid(a.log())


def test_a_node_reached_by_two_paths_appears_once() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = a * 3.0
    out = b * b.log()  # b feeds both the multiply and the log
    text = to_mermaid(out, names={"a": a})
    node_lines = [
        line for line in text.split("\n") if line.startswith("    n") and "-->" not in line
    ]
    assert len(node_lines) == 4, f"a node reached by two paths is listed once:\n{text}"
    assert text.count('"a: leaf') == 1
    assert "    n1 -->|0| n3" in text
    assert "    n2 -->|1| n3" in text
    assert "    n1 --> n2" in text


def test_the_same_tensor_at_two_positions_gives_two_labelled_edges() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    dot = to_dot(a * a)
    assert dot.count("n0 -> n1") == 2
    assert 'n0 -> n1 [label="0"];' in dot
    assert 'n0 -> n1 [label="1"];' in dot


def test_a_ten_thousand_deep_chain_renders_without_recursion() -> None:
    a = Tensor(np.array([1.0]), requires_grad=True)
    x = a
    for _ in range(10_000):
        x = x * 1.0
    text = to_mermaid(x)
    assert text.count('("multiply<br/>') == 10_000
    assert "    n9999 --> n10000" in text
    assert to_dot(x).count(" -> ") == 10_000


def test_a_tensor_under_two_names_shows_the_first() -> None:
    d, names = tiny_graph()
    text = to_mermaid(d, names={"first": names["a"], "second": names["a"]})
    assert '"first: leaf' in text
    assert "second" not in text


@dataclass
class FakeArray:
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass
class FakeRecipe:
    func: object
    parents: dict[int | str, "FakeTensor"] = field(default_factory=dict)


@dataclass
class FakeTensor:
    array: FakeArray
    recipe: FakeRecipe | None = None
    requires_grad: bool = True


def test_any_object_with_the_attributes_is_drawn_and_odd_names_are_escaped() -> None:
    x = FakeTensor(FakeArray((2,)))
    w = FakeTensor(FakeArray((2,)))
    out = FakeTensor(FakeArray((2,)), FakeRecipe(lambda *args: None, {"weight": w, 0: x}))
    text = to_mermaid(out)
    assert '    n2("#lt;lambda#gt;<br/>(2,) float32")' in text
    # positions first, then keyword names: x at 0, w as "weight"
    assert "    n0 -->|0| n2\n    n1 -->|weight| n2" in text
    dot = to_dot(out, names={'say "hi"': x})
    assert 'label="<lambda>\\n(2,) float32"' in dot
    assert 'label="say \\"hi\\": leaf' in dot


def test_a_function_without_a_name_is_shown_by_its_repr() -> None:
    class Nameless:
        def __repr__(self) -> str:
            return "nameless-op"

    out = FakeTensor(FakeArray((1,)), FakeRecipe(Nameless(), {0: FakeTensor(FakeArray((1,)))}))
    assert '("nameless-op<br/>(1,) float32")' in to_mermaid(out)


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    assert data, f"{path} is empty"
    return data


@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (apt-get install graphviz); CI installs it",
)
@pytest.mark.parametrize(("suffix", "start"), [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_draw_writes_an_svg_or_a_png_by_the_suffix(
    tmp_path: Path, suffix: str, start: bytes
) -> None:
    d, names = tiny_graph()
    path = tmp_path / "pictures" / f"graph{suffix}"
    draw(d, path, names=names)
    data = read_bytes(path)
    assert data.startswith(start)
    if suffix == ".svg":
        assert b"c: multiply" in data


def test_draw_without_dot_names_the_program_and_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    d, _ = tiny_graph()
    with pytest.raises(GraphvizNotFoundError, match=r"'dot'.*apt-get install graphviz"):
        draw(d, tmp_path / "graph.svg")
    assert not (tmp_path / "graph.svg").exists()


def test_draw_refuses_a_suffix_other_than_svg_or_png(tmp_path: Path) -> None:
    d, _ = tiny_graph()
    with pytest.raises(ValueError, match=r"graph\.pdf.*must end in \.svg or \.png"):
        draw(d, tmp_path / "graph.pdf")
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        check_drawable(tmp_path / "graph")
