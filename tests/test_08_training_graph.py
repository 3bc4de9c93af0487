"""The training command's ``--graph PATH``: the recorded graph of one training step's loss.

Runs ``train.main`` in-process on a small synthetic MNIST (as ``test_08_training.py``
does), for the MLP and every model the step's ``--model`` offers (the CNN from step 11,
the ResNet from step 12). Drawing
needs Graphviz's ``dot``; without it those tests skip (CI installs it).
"""

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from numpy.testing import assert_array_equal

from shared.steps import step_dir
from shared.testing.datasets import install_synthetic_mnist

try:
    import train
except ModuleNotFoundError:
    # A learner's workspace holds the package only: use the step's own command.
    sys.path.append(str(step_dir(8)))
    import train

pytestmark = pytest.mark.step(8)

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (apt-get install graphviz); CI installs it",
)
MODELS = ["mlp", *sorted(set(getattr(train, "MODEL_DEFAULTS", {})) - {"mlp"})]


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four IDX files the dataset table accepts as MNIST; no other source."""
    return install_synthetic_mnist(tmp_path, monkeypatch, 64, 32)


def model_options(model: str) -> list[str]:
    return [] if model == "mlp" else ["--model", model]


def parameter_names(model: str) -> list[str]:
    if model == "mlp":
        return ["linear1.weight", "linear1.bias", "linear3.weight", "linear3.bias"]
    if model == "cnn":
        return ["features.0.weight", "features.0.bias", "features.3.weight", "fc.bias"]
    return ["conv1.weight", "bn1.weight", "layer1.conv1.weight", "fc.bias"]


@needs_dot
@pytest.mark.parametrize("model", MODELS)
def test_command_graph_draws_the_loss_of_one_batch_with_named_parameters(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    graph = tmp_path / "pictures" / "graph.svg"
    argv = ["--data-dir", str(synthetic), "--epochs", "0", "--batch-size", "16"]
    status = train.main([*argv, *model_options(model), "--graph", str(graph)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"wrote the graph of one training step's loss to {graph}" in out
    svg = graph.read_text(encoding="utf-8")
    assert svg.startswith("<?xml")
    for name in parameter_names(model):
        assert f"{name}: leaf" in svg, f"the parameter {name} is a named leaf of the graph"
    assert "(16, 10) float32" in svg, "the graph is of one batch of 16: its logits are (16, 10)"
    assert "() float32" in svg, "the graph ends in the batch's mean loss, a 0-d tensor"


@needs_dot
@pytest.mark.parametrize("model", MODELS)
def test_command_graph_changes_nothing_the_run_writes(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str
) -> None:
    saved: list[dict[str, npt.NDArray[np.float32]]] = []
    for extra in ([], ["--graph", str(tmp_path / "graph.png")]):
        checkpoint = tmp_path / f"model{len(saved)}.npz"
        argv = ["--data-dir", str(synthetic), "--epochs", "1", "--batch-size", "32"]
        status = train.main([*argv, *model_options(model), "--save", str(checkpoint), *extra])
        assert status == 0, capsys.readouterr().err
        with np.load(checkpoint) as archive:
            saved.append({name: archive[name] for name in archive.files})
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"
    assert saved[0].keys() == saved[1].keys()
    for name, value in saved[0].items():
        assert_array_equal(saved[1][name], value, err_msg=f"--graph changed {name}")


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The usage message of ``parse_args(argv)``, which must exit with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(argv)
    assert exit_info.value.code == 2
    return " ".join(capsys.readouterr().err.split())


def test_command_graph_refuses_a_suffix_other_than_svg_or_png(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert re.search(
        r"--graph: .*graph\.pdf.*must end in \.svg or \.png",
        usage_error(capsys, ["--graph", "graph.pdf"]),
    )


def test_command_graph_without_dot_fails_before_training_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "")
    assert re.search(
        r"--graph: .*'dot'.*apt-get install graphviz", usage_error(capsys, ["--graph", "g.svg"])
    )
