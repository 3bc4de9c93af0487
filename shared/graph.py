"""Pictures of the recorded graph of a Tensor: Mermaid text, Graphviz DOT text, SVG or PNG.

The graph is the one backward walks: each tensor's ``recipe`` (None for a leaf) names
the operation (``recipe.func``) and the input tensors it depends on (``recipe.parents``,
keyed by argument position). :func:`to_mermaid` and :func:`to_dot` give one node per
tensor, labelled with the operation's name (or ``leaf``), the shape and the dtype, and
an edge from each input to the result, labelled with the argument position when the
operation has more than one parent. Leaves are filled boxes; a thick outline marks every
tensor that requires grad, and leaves also say ``requires_grad`` in words, since they
are the tensors whose ``.grad`` backward fills. :func:`draw` runs Graphviz's ``dot``
program to write an SVG or a PNG.

This module reads those attributes and nothing else (the :class:`GraphTensor`
protocol), imports no ``npgrad`` and needs only the standard library, so it draws the
tensors of any step from 03 on, or of a learner's own workspace::

    >>> print(to_mermaid(c, names={"a": a, "b": b}))  # doctest: +SKIP

README graphs: a step README marks a graph with the line ``<!-- graph: NAME -->``
directly above a ```` ```mermaid ```` block, where ``NAME`` is a Tensor that the
README's ``>>>`` examples above the marker define (leaf tensors there are labelled
with their variable names). ``python3 -m shared.graph readme PATH`` runs those
examples and rewrites each marked block (writing the block when only the marker is
there); ``--check`` changes nothing and exits with 1 when a block differs.
"""

from __future__ import annotations

import argparse
import doctest
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeGuard

from shared.steps import REPO_ROOT

__all__ = [
    "GraphTensor",
    "GraphvizNotFoundError",
    "ReadmeGraphError",
    "check_drawable",
    "draw",
    "graph_namespaces",
    "has_graph_markers",
    "leaf_names",
    "main",
    "readme_differences",
    "render_readme",
    "run_readme_examples",
    "to_dot",
    "to_mermaid",
]


class GraphArray(Protocol):
    """What the renderer reads of a tensor's array (a NumPy array has both)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> object: ...


class GraphParents(Protocol):
    """A recipe's parents: ``(position or keyword, tensor)`` pairs, as a dict gives them."""

    def items(self) -> Iterable[tuple[object, GraphTensor]]: ...


class GraphRecipe(Protocol):
    """What the renderer reads of a recipe: the forward function and the parents."""

    @property
    def func(self) -> object: ...

    @property
    def parents(self) -> GraphParents: ...


class GraphTensor(Protocol):
    """What the renderer reads of a tensor; npgrad's ``Tensor`` has it from step 03 on."""

    @property
    def array(self) -> GraphArray: ...

    @property
    def recipe(self) -> GraphRecipe | None: ...

    @property
    def requires_grad(self) -> bool: ...


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program, which :func:`draw` runs, is not installed."""


class ReadmeGraphError(ValueError):
    """A README's graph marker or examples cannot give a graph."""


@dataclass(frozen=True)
class _Node:
    id: str
    label_lines: tuple[str, ...]
    is_leaf: bool
    requires_grad: bool


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    label: str | None


def _position_key(position: object) -> tuple[int, int, str]:
    """Argument positions in order, then keyword names alphabetically."""
    if isinstance(position, int):
        return (0, position, "")
    return (1, 0, str(position))


def _sorted_parents(tensor: GraphTensor) -> list[tuple[object, GraphTensor]]:
    if tensor.recipe is None:
        return []
    return sorted(tensor.recipe.parents.items(), key=lambda item: _position_key(item[0]))


def _inputs_first(root: GraphTensor) -> list[GraphTensor]:
    """Every tensor ``root`` depends on, each once, inputs before the results that use them.

    An iterative depth-first walk (a 10,000-deep chain needs no recursion), parents in
    position order, so the order and the node numbers are the same on every run. A cycle,
    which a correct engine never records, is broken at the edge that would close it.
    """
    order: list[GraphTensor] = []
    done: set[int] = set()
    in_progress: set[int] = set()
    stack: list[tuple[GraphTensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        key = id(node)
        if parents_done:
            in_progress.discard(key)
            if key not in done:
                done.add(key)
                order.append(node)
            continue
        if key in done or key in in_progress:
            continue
        in_progress.add(key)
        stack.append((node, True))
        for _, parent in reversed(_sorted_parents(node)):
            if id(parent) not in done and id(parent) not in in_progress:
                stack.append((parent, False))
    return order


def _op_name(recipe: GraphRecipe) -> str:
    func = recipe.func
    return str(getattr(func, "__name__", repr(func)))


def _layout(
    root: GraphTensor, names: Mapping[str, GraphTensor] | None
) -> tuple[list[_Node], list[_Edge]]:
    named: dict[int, str] = {}
    for name, tensor in (names or {}).items():
        named.setdefault(id(tensor), name)  # a tensor under two names shows the first
    order = _inputs_first(root)
    ids = {id(tensor): f"n{number}" for number, tensor in enumerate(order)}
    nodes: list[_Node] = []
    edges: list[_Edge] = []
    for tensor in order:
        recipe = tensor.recipe
        kind = "leaf" if recipe is None else _op_name(recipe)
        shown_name = named.get(id(tensor))
        lines = [kind if shown_name is None else f"{shown_name}: {kind}"]
        lines.append(f"{tuple(tensor.array.shape)} {tensor.array.dtype}")
        if recipe is None and tensor.requires_grad:
            lines.append("requires_grad")
        node_id = ids[id(tensor)]
        nodes.append(_Node(node_id, tuple(lines), recipe is None, bool(tensor.requires_grad)))
        parents = _sorted_parents(tensor)
        for position, parent in parents:
            if id(parent) in ids:  # not so only for the closing edge of a cycle
                label = str(position) if len(parents) > 1 else None
                edges.append(_Edge(ids[id(parent)], node_id, label))
    return nodes, edges


_MERMAID_ESCAPES: Final = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;"}
_LEAF_FILL: Final = "#dbeafe"
_LEAF_STROKE: Final = "#1d4ed8"


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in text)


def to_mermaid(tensor: GraphTensor, names: Mapping[str, GraphTensor] | None = None) -> str:
    """The recorded graph of ``tensor`` as a Mermaid flowchart (GitHub renders it).

    ``names`` labels tensors with the variable names a reader knows
    (``names={"a": a, "b": b}``): a node then reads ``a: leaf`` instead of ``leaf``.
    Nodes are numbered ``n0, n1, ...`` inputs first, the same on every run; leaves are
    filled rectangles, results rounded ones, and tensors that require grad have a thick
    outline. The text has no trailing newline.
    """
    nodes, edges = _layout(tensor, names)
    lines = ["flowchart TD"]
    for node in nodes:
        label = "<br/>".join(_mermaid_text(line) for line in node.label_lines)
        opening, closing = ("[", "]") if node.is_leaf else ("(", ")")
        lines.append(f'    {node.id}{opening}"{label}"{closing}')
    for edge in edges:
        arrow = "-->" if edge.label is None else f"-->|{_mermaid_text(edge.label)}|"
        lines.append(f"    {edge.source} {arrow} {edge.target}")
    leaves = [node.id for node in nodes if node.is_leaf]
    grads = [node.id for node in nodes if node.requires_grad]
    if leaves:
        lines.append(f"    classDef leaf fill:{_LEAF_FILL},stroke:{_LEAF_STROKE},color:#000")
        lines.append(f"    class {','.join(leaves)} leaf")
    if grads:
        lines.append("    classDef requiresGrad stroke-width:3px")
        lines.append(f"    class {','.join(grads)} requiresGrad")
    return "\n".join(lines)


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(tensor: GraphTensor, names: Mapping[str, GraphTensor] | None = None) -> str:
    """The recorded graph of ``tensor`` in Graphviz's DOT language (what :func:`draw` runs).

    The same nodes, numbers, labels and marks as :func:`to_mermaid`; ends with a newline.
    """
    nodes, edges = _layout(tensor, names)
    lines = [
        "digraph npgrad {",
        '    node [shape=box, fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in nodes:
        label = _dot_string("\n".join(node.label_lines)).replace("\n", "\\n")
        if node.is_leaf:
            style = f'style=filled, fillcolor="{_LEAF_FILL}", color="{_LEAF_STROKE}"'
        else:
            style = "style=rounded"
        width = ", penwidth=3" if node.requires_grad else ""
        lines.append(f"    {node.id} [label={label}, {style}{width}];")
    for edge in edges:
        label = "" if edge.label is None else f" [label={_dot_string(edge.label)}]"
        lines.append(f"    {edge.source} -> {edge.target}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_FORMATS: Final = {".svg": "svg", ".png": "png"}
INSTALL_HINT: Final = (
    "install Graphviz (Debian or Ubuntu: apt-get install graphviz; macOS: brew install "
    "graphviz; other systems: https://graphviz.org/download/), or show the graph with "
    "to_mermaid() instead"
)


def check_drawable(path: Path) -> str:
    """The ``dot`` program that :func:`draw` would run for ``path``, or why it cannot.

    Raises ``ValueError`` unless ``path`` ends in ``.svg`` or ``.png``, and
    :class:`GraphvizNotFoundError` when ``dot`` is not on the PATH.
    """
    if Path(path).suffix.lower() not in _FORMATS:
        raise ValueError(f"cannot draw a graph into {path}: the file name must end in .svg or .png")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            f"drawing {path} needs Graphviz's 'dot' program, which is not on the PATH: "
            + INSTALL_HINT
        )
    return program


def draw(tensor: GraphTensor, path: Path, names: Mapping[str, GraphTensor] | None = None) -> None:
    """Write the recorded graph of ``tensor`` to ``path``, an SVG or a PNG by its suffix.

    Runs Graphviz's ``dot`` on :func:`to_dot`'s text. Raises ``ValueError`` for another
    suffix, :class:`GraphvizNotFoundError` when ``dot`` is missing and ``RuntimeError``
    with ``dot``'s own message when it fails.
    """
    path = Path(path)
    program = check_drawable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [program, f"-T{_FORMATS[path.suffix.lower()]}", "-o", str(path)],
        input=to_dot(tensor, names),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"Graphviz's dot failed to draw {path} (exit status {result.returncode}): "
            f"{result.stderr.strip()}"
        )


# README graphs ---------------------------------------------------------------------------

_MARKER: Final = re.compile(r"^<!-- graph: ([A-Za-z_][A-Za-z0-9_]*) -->\s*$")
_FENCE_OPEN: Final = "```mermaid"
_FENCE_CLOSE: Final = "```"


@dataclass(frozen=True)
class _Block:
    name: str
    marker_line: int  # index into the README's lines
    body: tuple[str, ...] | None  # None: the marker has no block under it yet
    end: int  # index of the first line after the marker and its block


def _graph_blocks(lines: Sequence[str], source: str) -> list[_Block]:
    blocks: list[_Block] = []
    for index, line in enumerate(lines):
        match = _MARKER.match(line)
        if match is None:
            continue
        following = index + 1
        if following >= len(lines) or lines[following].strip() != _FENCE_OPEN:
            blocks.append(_Block(match.group(1), index, None, following))
            continue
        for close in range(following + 1, len(lines)):
            if lines[close].strip() == _FENCE_CLOSE:
                body = tuple(lines[following + 1 : close])
                blocks.append(_Block(match.group(1), index, body, close + 1))
                break
        else:
            raise ReadmeGraphError(
                f"{source}:{following + 1}: the ```mermaid block under the graph marker of "
                f"{match.group(1)!r} is never closed with ```"
            )
    return blocks


def has_graph_markers(text: str) -> bool:
    """True when a README's text holds at least one ``<!-- graph: NAME -->`` line."""
    return any(_MARKER.match(line) for line in text.splitlines())


class _ExampleRunner(doctest.DocTestRunner):
    """Runs examples for their effect; printed output is the doctest session's business."""

    def __init__(self) -> None:
        super().__init__(verbose=False, optionflags=doctest.ELLIPSIS)
        self.errors: list[str] = []

    def report_failure(
        self, out: object, test: doctest.DocTest, example: doctest.Example, got: str
    ) -> None:
        pass

    def report_unexpected_exception(
        self,
        out: object,
        test: doctest.DocTest,
        example: doctest.Example,
        exc_info: tuple[type[BaseException], BaseException, object],
    ) -> None:
        if self.errors:  # what follows a failed example fails for that reason: keep the first
            return
        line = (test.lineno or 0) + example.lineno + 1
        kind, error = exc_info[0], exc_info[1]
        self.errors.append(
            f"{test.filename}:{line}: {example.source.strip()!r} raised {kind.__name__}: {error}"
        )


def _run_examples(readme: Path, stops: Sequence[int]) -> list[dict[str, object]]:
    """Run the examples of ``readme`` in one namespace; a copy of it at each stop line.

    Returns one namespace per index of ``stops`` (0-based line numbers, ascending), as
    the examples above that line left it, then the final namespace.
    """
    readme = Path(readme)
    folder = readme.resolve().parent
    if "npgrad" not in sys.modules and (folder / "npgrad" / "__init__.py").is_file():
        sys.path.insert(0, str(folder))
    text = readme.read_text(encoding="utf-8")
    examples = doctest.DocTestParser().get_examples(text, str(readme))
    namespace: dict[str, object] = {"__name__": "__readme__"}
    runner = _ExampleRunner()
    snapshots: list[dict[str, object]] = []
    bounds = [*stops, len(text.splitlines()) + 1]
    done = 0
    for bound in bounds:
        segment = [example for example in examples[done:] if example.lineno < bound]
        done += len(segment)
        test = doctest.DocTest(segment, namespace, readme.name, str(readme), 0, text)
        test.globs = namespace  # DocTest copies the namespace it is given; share one
        runner.run(test, out=lambda _: None, clear_globs=False)
        if runner.errors:  # one line, the first failure: the rest follow from it
            raise ReadmeGraphError(
                f"the examples of {readme} fail, so its graphs cannot be drawn: " + runner.errors[0]
            )
        snapshots.append(dict(namespace))
    return snapshots


def run_readme_examples(readme: Path) -> dict[str, object]:
    """Run every ``>>>`` example of ``readme`` in one namespace and return the namespace.

    The README's folder goes first on ``sys.path`` when it holds an ``npgrad`` package
    and no ``npgrad`` is imported yet, so a step README runs against its own step;
    inside a test session the step selected there is already imported and is used.
    Printed output is not compared (the doctest run does that); an example that raises
    an exception it does not expect is a :class:`ReadmeGraphError` naming its line.
    """
    return _run_examples(readme, [])[-1]


def graph_namespaces(readme: Path) -> list[dict[str, object]]:
    """One namespace per graph marker of ``readme``: what the examples above it defined.

    Runs the examples as :func:`run_readme_examples` does; a README that reuses a
    variable name later still shows each graph as it was at its marker.
    """
    lines = Path(readme).read_text(encoding="utf-8").split("\n")
    stops = [block.marker_line for block in _graph_blocks(lines, str(readme))]
    return _run_examples(readme, stops)[:-1]


def _is_tensor(value: object) -> TypeGuard[GraphTensor]:
    """Duck typing: anything with the attributes the renderer reads is drawn as a tensor."""
    # A class such as Tensor itself has the attributes too (as slot descriptors).
    return not isinstance(value, type) and all(
        hasattr(value, attribute) for attribute in ("array", "recipe", "requires_grad")
    )


def leaf_names(namespace: Mapping[str, object]) -> dict[str, GraphTensor]:
    """The leaf tensors of a namespace by variable name (names with ``_`` first left out)."""
    found: dict[str, GraphTensor] = {}
    for name, value in namespace.items():
        if not name.startswith("_") and _is_tensor(value) and value.recipe is None:
            found[name] = value
    return found


def _graph_lines(name: str, namespace: Mapping[str, object], source: str) -> list[str]:
    if name not in namespace:
        raise ReadmeGraphError(
            f"{source} marks a graph of {name!r}, but the examples above the marker define no "
            f"variable {name!r}: define it in an example before the marker"
        )
    value = namespace[name]
    if not _is_tensor(value):
        raise ReadmeGraphError(
            f"{source} marks a graph of {name!r}, but {name!r} is a {type(value).__name__}, "
            "not a Tensor"
        )
    return to_mermaid(value, names=leaf_names(namespace)).split("\n")


def _blocks_with_namespaces(
    lines: Sequence[str], namespaces: Sequence[Mapping[str, object]], source: str
) -> list[tuple[_Block, Mapping[str, object]]]:
    blocks = _graph_blocks(lines, source)
    if len(blocks) != len(namespaces):
        raise ValueError(
            f"{source} has {len(blocks)} graph markers but {len(namespaces)} namespaces were "
            "given: one per marker (graph_namespaces gives them)"
        )
    return list(zip(blocks, namespaces, strict=True))


def render_readme(
    text: str, namespaces: Sequence[Mapping[str, object]], source: str = "README"
) -> str:
    """``text`` with every marked Mermaid block drawn afresh, each from its namespace.

    ``namespaces`` holds one namespace per marker, in order (:func:`graph_namespaces`).
    A marker with no block under it gets one. ``source`` names the README in errors.
    """
    lines = text.split("\n")
    out: list[str] = []
    position = 0
    for block, namespace in _blocks_with_namespaces(lines, namespaces, source):
        out.extend(lines[position : block.marker_line + 1])
        out.extend([_FENCE_OPEN, *_graph_lines(block.name, namespace, source), _FENCE_CLOSE])
        position = block.end
    out.extend(lines[position:])
    return "\n".join(out)


def readme_differences(
    text: str, namespaces: Sequence[Mapping[str, object]], source: str = "README"
) -> list[str]:
    """The names of the marked graphs whose block differs from what is drawn now."""
    lines = text.split("\n")
    return [
        block.name
        for block, namespace in _blocks_with_namespaces(lines, namespaces, source)
        if block.body is None or list(block.body) != _graph_lines(block.name, namespace, source)
    ]


def _readme_command(readme: Path, check: bool) -> int:
    text = readme.read_text(encoding="utf-8")
    if not has_graph_markers(text):
        print(f"{readme}: no graph markers (<!-- graph: NAME --> above a ```mermaid block)")
        return 0
    try:
        namespaces = graph_namespaces(readme)
        if check:
            differing = readme_differences(text, namespaces, str(readme))
        else:
            new_text = render_readme(text, namespaces, str(readme))
    except ReadmeGraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if check:
        if differing:
            print(
                f"{readme}: the graph of {', '.join(differing)} differs from what "
                f"shared.graph draws now; run: python3 -m shared.graph readme {readme}"
            )
            return 1
        print(f"{readme}: graphs up to date")
        return 0
    if new_text != text:
        readme.write_text(new_text, encoding="utf-8")
        print(f"{readme}: graphs rewritten")
    else:
        print(f"{readme}: graphs up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m shared.graph readme PATH... [--check]``; returns the exit status.

    Exit status 1 means a block differs (with ``--check``), 2 a README whose examples or
    markers cannot give a graph. Several READMEs run one subprocess each, since every
    step has its own ``npgrad``.
    """
    parser = argparse.ArgumentParser(prog="python3 -m shared.graph")
    commands = parser.add_subparsers(dest="command", required=True)
    readme = commands.add_parser(
        "readme", help="redraw the marked Mermaid graphs of step READMEs from their examples"
    )
    readme.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    readme.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a graph differs"
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths
    for path in paths:
        if not path.is_file():
            parser.error(f"{path} is not a file")
    if len(paths) == 1:
        return _readme_command(paths[0], args.check)
    # shared.graph must import in each subprocess wherever it runs from.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    status = 0
    for path in paths:
        command = [sys.executable, "-m", "shared.graph", "readme", str(path)]
        if args.check:
            command.append("--check")
        status = max(status, subprocess.run(command, env=env, check=False).returncode)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
