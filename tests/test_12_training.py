"""Step 12: training the ResNet with the step's ``train.py`` (``--model resnet``).

As in step 08's tests, the command runs in-process on a small synthetic dataset written
as IDX files into ``tmp_path``, with every fetching source switched off; only the
``real MNIST`` test reads real MNIST, from the cache, and skips without it.
"""

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from numpy.testing import assert_array_equal

from npgrad import MLP, SGD, BatchNorm2d, Conv2d, Flatten, Linear, ResNet, Sequential, Tensor
from shared import data
from shared.testing.datasets import install_synthetic_mnist, real_mnist_folder, synthetic_images
from shared.testing.scripts import load_step_script

pytestmark = pytest.mark.step(12)


train = load_step_script(
    12, "train", lambda module: "resnet" in getattr(module, "MODEL_DEFAULTS", {})
)

REAL_MNIST_DIR = data.cache_root() / "mnist"  # captured before any test moves the cache
N_TRAIN, N_TEST = 320, 100


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four IDX files the dataset table accepts as MNIST; no other source."""
    return install_synthetic_mnist(tmp_path, monkeypatch, N_TRAIN, N_TEST)


def run(capsys: pytest.CaptureFixture[str], folder: Path, *options: str) -> tuple[int, str, str]:
    status = train.main(["--data-dir", str(folder), "--model", "resnet", *options])
    out, err = capsys.readouterr()
    return status, out, err


def small_net(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 2, 3, stride=3, rng=rng), BatchNorm2d(2), Flatten(), Linear(162, 10, rng=rng)
    )


def batch(seed: int, n: int = 16) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    images, labels = synthetic_images(np.random.default_rng(seed), n)
    return data.normalise(images, 0.1307, 0.3081).reshape(n, 1, 28, 28), labels


# --- the loop's functions and modes ----------------------------------------------------------


def test_train_epoch_puts_the_model_in_training_mode() -> None:
    model = small_net().eval()
    images, labels = batch(0)
    train.train_epoch(model, SGD(model.parameters(), lr=0.01), [(images, labels)])
    assert all(module.training for module in [model, *model.modules()])


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_uses_running_statistics_and_restores_the_mode(training: bool) -> None:
    model = small_net()
    images, labels = batch(1)
    train.train_epoch(model, SGD(model.parameters(), lr=0.01), [(images, labels)])
    model.train(training)
    state = model.state_dict()

    result = train.evaluate(model, images, labels, batch_size=5)

    assert model.training is training
    assert model[1].training is training
    for name, value in model.state_dict().items():  # running statistics untouched
        assert_array_equal(value, state[name], err_msg=name)
    model.eval()
    expected = model(Tensor(images)).argmax(dim=1).array  # all at once, running statistics
    assert_array_equal(result.predictions, expected)


def test_evaluate_restores_the_mode_after_an_error() -> None:
    model = small_net()
    images, labels = batch(2)
    with pytest.raises(ValueError, match="Linear"):
        train.evaluate(model, images[:, :, :20, :], labels)  # the wrong size for Linear
    assert model.training


def test_each_model_has_its_defaults_and_options_override_them() -> None:
    resnet = train.parse_args(["--model", "resnet"])
    assert (resnet.epochs, resnet.lr, resnet.momentum, resnet.weight_decay) == (1, 0.05, 0.9, 5e-4)
    mlp = train.parse_args([])
    assert (mlp.model, mlp.epochs, mlp.lr, mlp.momentum, mlp.weight_decay) == ("mlp", 5, 0.01, 0, 0)
    chosen = train.parse_args(["--model", "resnet", "--epochs", "3", "--momentum", "0"])
    assert (chosen.epochs, chosen.momentum, chosen.lr) == (3, 0.0, 0.05)


@pytest.mark.parametrize(
    ("option", "value"), [("--momentum", "-0.5"), ("--weight-decay", "nan"), ("--model", "vgg")]
)
def test_bad_model_options_are_rejected(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        train.parse_args([option, value])
    assert option in capsys.readouterr().err


def test_make_model_builds_each_model_reproducibly() -> None:
    resnet, description = train.make_model("resnet", np.random.default_rng(0))
    assert isinstance(resnet, ResNet)
    n_params = sum(p.array.size for p in resnet.parameters())
    assert description == f"ResNet 16-32-64 ({n_params} parameters)"
    mlp, description = train.make_model("mlp", np.random.default_rng(0))
    assert isinstance(mlp, MLP)
    assert description == "MLP 784-64-64-10 (55050 parameters)"
    again, _ = train.make_model("resnet", np.random.default_rng(0))
    for name, value in resnet.state_dict().items():
        assert_array_equal(value, again.state_dict()[name], err_msg=name)


# --- the command ----------------------------------------------------------------------------


def test_command_trains_the_resnet(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "metrics.json"
    status, out, err = run(
        capsys, synthetic, "--epochs", "2", "--batch-size", "32", "--metrics-json", str(metrics)
    )
    assert status == 0, err
    assert "ResNet 16-32-64 (" in out
    assert "SGD lr=0.05 momentum=0.9 weight decay=0.0005, batch size 32, 2 epochs" in out
    document = json.loads(metrics.read_text())
    assert document["settings"]["model"] == "resnet"
    assert document["settings"]["momentum"] == 0.9
    epochs = document["epochs"]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["test_accuracy"] > 0.9  # the synthetic classes are easy


def test_command_save_then_resume_keeps_the_running_statistics(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "resnet.npz"
    status, out, err = run(capsys, synthetic, "--epochs", "1", "--save", str(saved))
    assert status == 0, err
    with np.load(saved, allow_pickle=False) as archive:
        assert "bn1.running_mean" in archive.files
        assert "layer2.shortcut.1.running_var" in archive.files
        assert not np.array_equal(archive["bn1.running_mean"], np.zeros(16))  # trained
    accuracy = out.split("final test accuracy ")[1].split("%")[0]

    status, out, err = run(capsys, synthetic, "--epochs", "0", "--resume", str(saved))
    assert status == 0, err
    assert f"test accuracy {accuracy}%" in out


def test_command_resume_of_an_mlp_checkpoint_names_the_missing_keys(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "mlp.npz"
    train.save_checkpoint(MLP(), saved)
    status, _, err = run(capsys, synthetic, "--epochs", "0", "--resume", str(saved))
    assert status == 1
    assert "missing key 'bn1.running_mean'" in err
    assert "unexpected key 'linear1.weight'" in err


def test_command_plot_of_the_resnet_writes_a_png(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "curves.png"
    status, _, err = run(capsys, synthetic, "--epochs", "1", "--plot", str(plot))
    assert status == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- real MNIST -------------------------------------------------------------------------------


def test_resnet_on_a_slice_of_real_mnist_learns() -> None:
    folder = real_mnist_folder(REAL_MNIST_DIR.parent)
    ds = data.load_dataset("mnist", folder, download=False, sources=[])
    x_train = data.normalise(ds.train_images[:2560], ds.mean, ds.std).reshape(-1, 1, 28, 28)
    x_test = data.normalise(ds.test_images[:500], ds.mean, ds.std).reshape(-1, 1, 28, 28)
    init_rng, shuffle_rng = train.make_generators(0)
    model, _ = train.make_model("resnet", init_rng)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = data.batches(x_train, ds.train_labels[:2560], 64, shuffle=True, rng=shuffle_rng)
    loss = train.train_epoch(model, optimizer, batches)
    result = train.evaluate(model, x_test, ds.test_labels[:500])
    assert loss < 1.5
    # 40 steps from chance (0.1); early on, the running statistics that evaluation
    # uses lag behind the weights, so this is well below the batch-statistics accuracy
    assert result.accuracy > 0.6
