"""Step 12: the convolution benchmark (shared.bench.conv) with the ResNet runs and reports sensibly.

Tiny shapes and few repeats: these tests check the plumbing, not the speed.
"""

import argparse
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

import npgrad
from shared import data
from shared.bench import cli, conv, report
from shared.testing.datasets import real_mnist_folder

pytestmark = pytest.mark.step(12)

TINY = (conv.ConvShape(2, 2, 6, 3, 3, 1, 1), conv.ConvShape(2, 3, 5, 2, 1, 2, 0))


def test_the_listed_shapes_are_the_resnets_convolutions() -> None:
    model = npgrad.ResNet()
    layers = [m for m in all_modules(model) if isinstance(m, npgrad.Conv2d)]
    listed = {
        (s.in_channels, s.out_channels, s.kernel, s.stride, s.padding)
        for s in conv.RESNET_CONV_SHAPES
    }
    found = {
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in layers
    }
    assert listed == found


def all_modules(module: npgrad.Module) -> list[npgrad.Module]:
    found = [module]
    for child in module.modules():
        found += all_modules(child)
    return found


@pytest.mark.parametrize("timed_batches", [3, None])
def test_time_resnet_epoch_trains_and_times(timed_batches: int | None) -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(10, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 10).astype(np.int64)
    epoch = conv.time_resnet_epoch(
        npgrad, images, labels, batch_size=4, timed_batches=timed_batches, channels=(2, 2, 2)
    )
    assert epoch.epoch_batches == 3
    assert epoch.timed_batches == (3 if timed_batches is None else timed_batches)
    assert epoch.median_batch_s > 0
    assert epoch.measured_full_epoch is (timed_batches is None)
    if timed_batches is not None:
        assert epoch.epoch_s == pytest.approx(epoch.median_batch_s * 3)


def test_run_conv_reports_and_formats() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 8).astype(np.int64)
    result = conv.run_conv(npgrad, None, images, labels, repeats=1, timed_batches=1, batch_size=4)
    assert len(result["conv2d"]) == len(conv.RESNET_CONV_SHAPES)
    assert result["conv2d_ratio_total"] is None  # no torch
    assert result["resnet_epoch"]["epoch_batches"] == 2
    text = conv.format_conv_summary(result)
    assert "conv2d forward+backward" in text
    assert "ResNet 16-32-64, batch 4" in text


def test_run_conv_skips_a_step_without_convolution() -> None:
    older = types.ModuleType("npgrad")
    result = conv.run_conv(older, None, None, None)
    assert "skipped" in result
    assert "skipped" in conv.format_conv_summary(result)


def test_the_summary_shows_the_conv_part_and_a_crash_is_a_failed_target() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 4).astype(np.int64)
    result = conv.run_conv(npgrad, None, images, labels, repeats=1, timed_batches=1, batch_size=4)
    meta = {
        "step": 8,
        "step_dir": "steps/08_training",
        "dataset": "MNIST",
        "batch_size": 64,
        "lr": 0.01,
        "seed": 0,
        "python": "3.11",
        "numpy": np.__version__,
        "torch": None,
        "blas_threads": "1",
        "torch_threads": None,
    }
    results = {"meta": meta, "conv": {**result, "step": 12}}
    targets = report.evaluate_targets(results)
    assert "step 12: conv2d forward+backward" in report.format_summary(results, targets)
    assert not [t for t in targets if t.status == "FAIL"]

    crashed = {"meta": meta, "conv": {"error": "shared.bench.conv --step 12 failed: boom"}}
    targets = report.evaluate_targets(crashed)
    assert [t.name for t in targets if t.status == "FAIL"] == ["conv2d and ResNet timings run"]
    assert "conv2d / ResNet: FAILED: shared.bench.conv" in report.format_summary(crashed, targets)


def conv_result(ratios: list[float]) -> dict[str, object]:
    """A conv part's result with these npgrad/torch ratios, torch at 1 ms per shape."""
    timings = [
        {"shape": f"shape {i}", "npgrad_ms": ratio, "torch_ms": 1.0, "ratio": ratio}
        for i, ratio in enumerate(ratios)
    ]
    total = sum(ratios)
    return {
        "conv2d": timings,
        "conv2d_total_ms": {"npgrad": total, "torch": float(len(ratios))},
        "conv2d_ratio_total": total / len(ratios),
    }


@pytest.mark.parametrize(
    ("ratios", "failed"),
    [
        ([1.0, 1.9, 1.4], []),
        ([1.0, 2.1, 0.9], ["every shape"]),
        ([1.6, 1.9, 1.6], ["over the ResNet's shapes"]),
    ],
)
def test_conv_targets_bound_the_total_and_every_shape(
    ratios: list[float], failed: list[str]
) -> None:
    targets = report.evaluate_targets({"conv": conv_result(ratios)})
    conv_targets = [t for t in targets if t.name.startswith("conv2d forward+backward")]
    assert len(conv_targets) == 2
    names = [t.name for t in conv_targets if t.status == "FAIL"]
    assert len(names) == len(failed)
    for name, part in zip(names, failed, strict=True):
        assert part in name
    if failed == ["every shape"]:
        assert "the slowest: shape 1" in conv_targets[1].detail


def test_the_benchmark_times_the_conv_step_in_a_child_process() -> None:
    # `nox -s bench` measures step 08's MLP in its own process; step 12's conv2d runs in a
    # child, as one process imports one npgrad. Real MNIST, as the child loads it itself.
    real_mnist_folder(data.cache_root())
    args = cli.parse_args(
        ["--parts", "conv", "--conv-step", "12", "--conv-repeats", "1", "--conv-batches", "2"]
    )
    assert isinstance(args, argparse.Namespace)
    older = types.ModuleType("npgrad")  # stands for the step measured in this process
    result = cli.run_conv_part(args, 8, older, None)
    assert "error" not in result, result.get("error")
    assert result["step"] == 12
    assert len(result["conv2d"]) == len(conv.RESNET_CONV_SHAPES)
    assert all(t["npgrad_ms"] > 0 and t["torch_ms"] is None for t in result["conv2d"])
    assert result["resnet_epoch"]["timed_batches"] == 2
    assert result["resnet_epoch"]["epoch_batches"] == 938  # 60000 images in batches of 64


def tiny_mnist(n: int = 8) -> data.Dataset:
    """A stand-in for MNIST: ``n`` random training images, so no download is needed."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return data.Dataset("mnist", images, labels, images, labels, 0.13, 0.31, tuple("0123456789"))


@pytest.mark.parametrize("impl", [False, True])
def test_the_conv_part_runs_in_process_when_its_step_is_the_measured_one(
    impl: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With --impl the package stands for --step: still timed here, never in a child.
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: tiny_mnist())
    monkeypatch.setattr(subprocess, "run", no_child_process)
    argv = ["--parts", "conv", "--conv-step", "12", "--conv-repeats", "1", "--conv-batches", "1"]
    argv += ["--batch-size", "4", *(["--impl", str(tmp_path)] if impl else [])]
    args = cli.parse_args(argv)
    result = cli.run_conv_part(args, 12, npgrad, None)
    assert "error" not in result, result.get("error")
    assert result["step"] == 12
    assert len(result["conv2d"]) == len(conv.RESNET_CONV_SHAPES)
    assert result["resnet_epoch"]["epoch_batches"] == 2  # 8 images in batches of 4


def test_the_conv_part_of_a_step_without_convolution_is_skipped_with_its_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_dataset(name: str, data_dir: Path | None) -> data.Dataset:
        raise AssertionError("a skipped conv part loaded the dataset")

    monkeypatch.setattr(cli, "_load_dataset", no_dataset)
    monkeypatch.setattr(subprocess, "run", no_child_process)
    args = cli.parse_args(["--parts", "conv", "--conv-step", "8"])
    result = cli.run_conv_part(args, 8, types.ModuleType("npgrad"), None)
    assert "skipped" in result
    assert result["step"] == 8


def test_a_failed_conv_child_names_its_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_child(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="Traceback ...\nboom")

    monkeypatch.setattr(subprocess, "run", failing_child)
    args = cli.parse_args(["--parts", "conv", "--conv-step", "12"])
    result = cli.run_conv_part(args, 8, types.ModuleType("npgrad"), None)
    assert result["step"] == 12
    assert result["error"].startswith("python -m shared.bench.conv --step 12 failed")
    assert "exit status 1" in result["error"]
    assert result["error"].endswith("boom")


def no_child_process(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise AssertionError("the conv part started a child process")
