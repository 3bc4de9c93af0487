"""Step 11: training the CNN with the step's ``train.py`` (``--model cnn``).

As in step 08's tests, the command runs in-process on a small synthetic dataset written
as IDX files into ``tmp_path``, with every fetching source switched off; only the
``real MNIST`` test reads real MNIST, from the cache, and skips without it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from npgrad import CNN, SGD
from shared import data
from shared.testing.datasets import install_synthetic_mnist, real_mnist_folder
from shared.testing.scripts import load_step_script

pytestmark = pytest.mark.step(11)


train = load_step_script(11, "train", lambda module: "cnn" in getattr(module, "MODEL_DEFAULTS", {}))

REAL_MNIST_DIR = data.cache_root() / "mnist"  # captured before any test moves the cache
N_TRAIN, N_TEST = 320, 100


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four IDX files the dataset table accepts as MNIST; no other source."""
    return install_synthetic_mnist(tmp_path, monkeypatch, N_TRAIN, N_TEST)


def run(capsys: pytest.CaptureFixture[str], folder: Path, *options: str) -> tuple[int, str, str]:
    status = train.main(["--data-dir", str(folder), "--model", "cnn", *options])
    out, err = capsys.readouterr()
    return status, out, err


# --- the options ------------------------------------------------------------------------------


def test_the_cnn_has_its_defaults_and_options_override_them() -> None:
    cnn = train.parse_args(["--model", "cnn"])
    assert (cnn.model, cnn.epochs, cnn.lr) == ("cnn", 1, train.CNN_LR)
    mlp = train.parse_args([])
    assert (mlp.model, mlp.epochs, mlp.lr) == ("mlp", 5, 0.01)
    chosen = train.parse_args(["--model", "cnn", "--epochs", "3", "--lr", "0.1"])
    assert (chosen.epochs, chosen.lr) == (3, 0.1)


@pytest.mark.parametrize(("option", "value"), [("--lr", "nan"), ("--model", "vgg")])
def test_a_bad_model_or_learning_rate_is_rejected(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        train.parse_args([option, value])
    assert option in capsys.readouterr().err


def test_make_model_builds_the_cnn_reproducibly() -> None:
    cnn, description = train.make_model("cnn", np.random.default_rng(0))
    assert isinstance(cnn, CNN)
    n_params = sum(p.array.size for p in cnn.parameters())
    assert description == f"CNN 8-16 ({n_params} parameters)"
    again, _ = train.make_model("cnn", np.random.default_rng(0))
    for name, value in cnn.state_dict().items():
        assert_array_equal(value, again.state_dict()[name], err_msg=name)


# --- the command ----------------------------------------------------------------------------


def test_command_trains_the_cnn(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "metrics.json"
    status, out, err = run(
        capsys, synthetic, "--epochs", "3", "--batch-size", "16", "--metrics-json", str(metrics)
    )
    assert status == 0, err
    assert "CNN 8-16 (" in out
    assert f"SGD lr={train.CNN_LR}, batch size 16, 3 epochs" in out
    document = json.loads(metrics.read_text())
    assert document["settings"]["model"] == "cnn"
    epochs = document["epochs"]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["test_accuracy"] > 0.9  # the synthetic classes are easy


def test_command_save_then_resume_of_the_cnn(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "cnn.npz"
    status, out, err = run(capsys, synthetic, "--epochs", "1", "--save", str(saved))
    assert status == 0, err
    with np.load(saved, allow_pickle=False) as archive:
        assert "features.0.weight" in archive.files
        assert "fc.bias" in archive.files
    accuracy = out.split("final test accuracy ")[1].split("%")[0]

    status, out, err = run(capsys, synthetic, "--epochs", "0", "--resume", str(saved))
    assert status == 0, err
    assert f"test accuracy {accuracy}%" in out


def test_command_mlp_default_header_is_unchanged(
    synthetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = train.main(["--data-dir", str(synthetic), "--epochs", "1"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "MLP 784-64-64-10 (55050 parameters), SGD lr=0.01, batch size 64, 1 epoch, seed 0" in out


# --- real MNIST -------------------------------------------------------------------------------


def test_cnn_on_a_slice_of_real_mnist_learns() -> None:
    folder = real_mnist_folder(REAL_MNIST_DIR.parent)
    ds = data.load_dataset("mnist", folder, download=False, sources=[])
    x_train = data.normalise(ds.train_images[:2560], ds.mean, ds.std).reshape(-1, 1, 28, 28)
    x_test = data.normalise(ds.test_images[:500], ds.mean, ds.std).reshape(-1, 1, 28, 28)
    init_rng, shuffle_rng = train.make_generators(0)
    model, _ = train.make_model("cnn", init_rng)
    optimizer = SGD(model.parameters(), lr=train.CNN_LR)
    batches = data.batches(x_train, ds.train_labels[:2560], 64, shuffle=True, rng=shuffle_rng)
    loss = train.train_epoch(model, optimizer, batches)
    result = train.evaluate(model, x_test, ds.test_labels[:500])
    assert loss < 2.0
    assert result.accuracy > 0.6  # 40 steps from chance (0.1)
