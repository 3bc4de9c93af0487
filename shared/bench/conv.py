"""Convolution and ResNet timings (step 12 on): conv2d against PyTorch, and a ResNet epoch.

Two measurements, both on one BLAS thread and one torch thread (``nox -s bench`` pins
them):

1. :func:`time_conv2d`: ``conv2d`` forward and backward (the input's and the weight's
   gradients) in float32, on the convolution shapes of the step's ResNet for a batch of
   64, against ``torch.nn.functional.conv2d`` on the very same arrays in the same
   process. Each side's figure is the best of ``repeats`` timings (the least disturbed
   run on a noisy machine), and the sides alternate within every repeat, so a slow
   spell hits both; the ratio is npgrad's time over torch's.
2. :func:`time_resnet_epoch`: the step's ``ResNet`` trained with its ``SGD`` (momentum
   and weight decay, as ``train.py --model resnet`` does) on real batches; the median
   time per batch times the number of batches in an epoch, or one full measured epoch.

The step's package is passed in as ``npgrad``; nothing here imports it (or torch) at
module level. Run alone with ``python -m shared.bench.conv [--step NN]``. The JSON-ready
:func:`run_conv_on_dataset` (:func:`run_conv` on a dataset's training set) is what both
that command and the main benchmark's ``--parts conv`` call, so the part measures the
same thing whether it runs in the benchmark's process or in a child.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.bench.packages import import_torch, load_step
from shared.data import DATASETS, Dataset, load_dataset, normalised_splits
from shared.steps import step_dirs

__all__ = [
    "RESNET_CONV_SHAPES",
    "ConvShape",
    "ConvTiming",
    "EpochTiming",
    "format_conv_summary",
    "has_conv_api",
    "main",
    "run_conv",
    "run_conv_on_dataset",
    "time_conv2d",
    "time_resnet_epoch",
]


@dataclass(frozen=True)
class ConvShape:
    """One convolution: input (N, C, H, W), weight (O, C, k, k), stride and padding."""

    batch: int
    in_channels: int
    size: int
    out_channels: int
    kernel: int
    stride: int
    padding: int

    def label(self) -> str:
        return (
            f"{self.batch}x{self.in_channels}x{self.size}x{self.size} -> {self.out_channels}, "
            f"{self.kernel}x{self.kernel}/{self.stride} pad {self.padding}"
        )


# The convolutions of ResNet((16, 32, 64)) on 28x28 images, batch 64 (each listed once).
RESNET_CONV_SHAPES: tuple[ConvShape, ...] = (
    ConvShape(64, 1, 28, 16, 3, 1, 1),  # stem
    ConvShape(64, 16, 14, 16, 3, 1, 1),  # layer1 (twice)
    ConvShape(64, 16, 14, 32, 3, 2, 1),  # layer2.conv1
    ConvShape(64, 32, 7, 32, 3, 1, 1),  # layer2.conv2
    ConvShape(64, 16, 14, 32, 1, 2, 0),  # layer2 shortcut
    ConvShape(64, 32, 7, 64, 3, 2, 1),  # layer3.conv1
    ConvShape(64, 64, 4, 64, 3, 1, 1),  # layer3.conv2
    ConvShape(64, 32, 7, 64, 1, 2, 0),  # layer3 shortcut
)


@dataclass(frozen=True)
class ConvTiming:
    """Milliseconds for one forward+backward of one shape; ``ratio`` = npgrad / torch."""

    shape: str
    npgrad_ms: float
    torch_ms: float | None
    ratio: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochTiming:
    """The ResNet's training speed: per batch (median), and per epoch of ``epoch_batches``."""

    channels: tuple[int, ...]
    batch_size: int
    timed_batches: int
    median_batch_s: float
    epoch_batches: int
    epoch_s: float
    measured_full_epoch: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def has_conv_api(npgrad: ModuleType) -> bool:
    """True when the step's package has what these timings need (step 12 on: the ResNet)."""
    return all(hasattr(npgrad, name) for name in ("conv2d", "ResNet", "SGD", "cross_entropy"))


def _seconds(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def time_conv2d(
    npgrad: ModuleType,
    torch: ModuleType | None,
    shapes: Sequence[ConvShape] = RESNET_CONV_SHAPES,
    repeats: int = 7,
    seed: int = 0,
) -> list[ConvTiming]:
    """Forward+backward of ``conv2d`` per shape, npgrad against torch, best of ``repeats``.

    Both sides get the same float32 arrays and the same incoming gradient, compute the
    output and the gradients of the input and the weight (no bias, as in the ResNet),
    and drop the gradients before the next repeat. npgrad and torch alternate within
    each repeat.
    """
    rng = np.random.default_rng(seed)
    return [_time_one_shape(npgrad, torch, shape, rng, repeats) for shape in shapes]


def _time_one_shape(
    npgrad: ModuleType,
    torch: ModuleType | None,
    shape: ConvShape,
    rng: np.random.Generator,
    repeats: int,
) -> ConvTiming:
    x = rng.standard_normal((shape.batch, shape.in_channels, shape.size, shape.size))
    w = rng.standard_normal((shape.out_channels, shape.in_channels, shape.kernel, shape.kernel))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    ours_x = npgrad.Tensor(x32, requires_grad=True)
    ours_w = npgrad.Tensor(w32, requires_grad=True)
    out_shape = npgrad.conv2d(ours_x, ours_w, None, shape.stride, shape.padding).shape
    grad = rng.standard_normal(out_shape).astype(np.float32)

    def ours() -> None:
        ours_x.grad = ours_w.grad = None
        npgrad.conv2d(ours_x, ours_w, None, shape.stride, shape.padding).backward(grad)

    sides: list[tuple[str, Callable[[], None]]] = [("npgrad", ours)]
    if torch is not None:
        theirs_x = torch.from_numpy(x32.copy()).requires_grad_(True)
        theirs_w = torch.from_numpy(w32.copy()).requires_grad_(True)
        torch_grad = torch.from_numpy(grad)

        def theirs() -> None:
            theirs_x.grad = theirs_w.grad = None
            out = torch.nn.functional.conv2d(theirs_x, theirs_w, None, shape.stride, shape.padding)
            out.backward(torch_grad)

        sides.append(("torch", theirs))
    for _, func in sides:
        func()  # warm up (allocations, torch's kernels)
    best = {name: float("inf") for name, _ in sides}
    for _ in range(repeats):
        for name, func in sides:
            best[name] = min(best[name], _seconds(func))
    torch_ms = best["torch"] * 1e3 if "torch" in best else None
    return ConvTiming(
        shape=shape.label(),
        npgrad_ms=best["npgrad"] * 1e3,
        torch_ms=torch_ms,
        ratio=None if torch_ms is None else best["npgrad"] * 1e3 / torch_ms,
    )


def time_resnet_epoch(
    npgrad: ModuleType,
    images: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    batch_size: int = 64,
    timed_batches: int | None = 50,
    channels: tuple[int, int, int] = (16, 32, 64),
    seed: int = 0,
) -> EpochTiming:
    """Train the step's ResNet on ``images`` (N, 1, 28, 28) and time it.

    One SGD step per batch (lr 0.05, momentum 0.9, weight decay 5e-4, as ``train.py
    --model resnet``), in training mode. With ``timed_batches`` set, that many batches
    are timed after one warm-up batch and the epoch time is their median times the
    number of batches in ``images``; with None, one full epoch is timed as it runs.
    """
    rng = np.random.default_rng(seed)
    model = npgrad.ResNet(channels, rng=rng)
    model.train()
    optimizer = npgrad.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    order = rng.permutation(len(labels))
    starts = range(0, len(labels), batch_size)
    epoch_batches = len(starts)

    def step(start: int) -> float:
        """One SGD step on the batch at ``start``; its wall time in seconds."""
        began = time.perf_counter()
        index = order[start : start + batch_size]
        optimizer.zero_grad()
        logits = model(npgrad.Tensor(images[index]))
        loss = npgrad.cross_entropy(logits, labels[index]).sum() / len(index)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - began

    gc.collect()
    if timed_batches is None:
        per_batch = [step(start) for start in starts]
        epoch_s = sum(per_batch)
    else:
        step(starts[0])  # warm-up
        chosen = [starts[i % epoch_batches] for i in range(1, timed_batches + 1)]
        per_batch = [step(start) for start in chosen]
        epoch_s = statistics.median(per_batch) * epoch_batches
    return EpochTiming(
        channels=channels,
        batch_size=batch_size,
        timed_batches=len(per_batch),
        median_batch_s=statistics.median(per_batch),
        epoch_batches=epoch_batches,
        epoch_s=epoch_s,
        measured_full_epoch=timed_batches is None,
    )


def run_conv(
    npgrad: ModuleType,
    torch: ModuleType | None,
    images: npt.NDArray[np.float32] | None,
    labels: npt.NDArray[np.int64] | None,
    *,
    repeats: int = 7,
    timed_batches: int | None = 50,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Both measurements as a JSON-ready dict; skipped (with the reason) before step 12.

    ``images`` (N, 1, 28, 28) float32 and ``labels`` are the training set for the epoch
    timing (normalised MNIST in the benchmark); None skips that part.
    """
    if not has_conv_api(npgrad):
        return {"skipped": "this step has no conv2d, ResNet and SGD yet"}
    timings = time_conv2d(npgrad, torch, repeats=repeats)
    ratios = [t.ratio for t in timings if t.ratio is not None]
    result: dict[str, Any] = {
        "conv2d": [t.as_dict() for t in timings],
        "conv2d_total_ms": {
            "npgrad": sum(t.npgrad_ms for t in timings),
            "torch": None if not ratios else sum(t.torch_ms or 0.0 for t in timings),
        },
        "conv2d_ratio_median": statistics.median(ratios) if ratios else None,
        "method": "float32 forward + backward (input and weight gradients), best of "
        f"{repeats} alternating repeats per side, one thread each",
    }
    totals = result["conv2d_total_ms"]
    result["conv2d_ratio_total"] = totals["npgrad"] / totals["torch"] if totals["torch"] else None
    if images is not None and labels is not None:
        epoch = time_resnet_epoch(
            npgrad, images, labels, batch_size=batch_size, timed_batches=timed_batches
        )
        result["resnet_epoch"] = epoch.as_dict()
    return result


def run_conv_on_dataset(
    npgrad: ModuleType,
    torch: ModuleType | None,
    dataset: Callable[[], Dataset],
    *,
    repeats: int = 7,
    timed_batches: int | None = 50,
    batch_size: int = 64,
) -> dict[str, Any]:
    """:func:`run_conv` with a dataset's training set for the ResNet's epoch.

    ``dataset`` returns the loaded dataset (e.g. MNIST from :func:`shared.data.load_dataset`);
    it is called only for a step that has the convolution API, so a skipped step loads
    nothing. Its training images are normalised with its own statistics and shaped
    (N, 1, 28, 28), the ResNet's input.
    """
    if not has_conv_api(npgrad):
        return run_conv(npgrad, torch, None, None)  # the skipped result, loading nothing
    splits = normalised_splits(dataset(), (1, 28, 28))  # one channel: the ResNet's input
    return run_conv(
        npgrad,
        torch,
        splits.x_train,
        splits.y_train,
        repeats=repeats,
        timed_batches=timed_batches,
        batch_size=batch_size,
    )


def format_conv_summary(result: dict[str, Any]) -> str:
    """The part's lines of the benchmark summary, as plain text."""
    if "skipped" in result:
        return f"conv2d / ResNet: skipped ({result['skipped']})"
    lines = ["conv2d forward+backward, float32 (ms; npgrad / torch):"]
    for timing in result["conv2d"]:
        torch_text = "-" if timing["torch_ms"] is None else f"{timing['torch_ms']:8.2f}"
        ratio = "-" if timing["ratio"] is None else f"{timing['ratio']:.2f}x"
        lines.append(f"  {timing['shape']:<38} {timing['npgrad_ms']:8.2f} {torch_text} {ratio}")
    if result.get("conv2d_ratio_total") is not None:
        totals = result["conv2d_total_ms"]
        lines.append(
            f"  all shapes: npgrad {totals['npgrad']:.1f} ms, torch {totals['torch']:.1f} ms, "
            f"ratio {result['conv2d_ratio_total']:.2f}x (median per shape "
            f"{result['conv2d_ratio_median']:.2f}x)"
        )
    epoch = result.get("resnet_epoch")
    if epoch is not None:
        how = (
            "measured"
            if epoch["measured_full_epoch"]
            else (f"median of {epoch['timed_batches']} batches x {epoch['epoch_batches']}")
        )
        lines.append(
            f"ResNet {'-'.join(str(c) for c in epoch['channels'])}, batch {epoch['batch_size']}: "
            f"{epoch['median_batch_s'] * 1e3:.0f} ms per batch, {epoch['epoch_s']:.0f} s per "
            f"epoch ({how})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.bench.conv``: both timings for one step, printed and as JSON."""
    parser = argparse.ArgumentParser(prog="python -m shared.bench.conv", description=__doc__)
    parser.add_argument("--step", type=int, default=None, help="default: the latest step")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batches", type=int, default=50, help="timed ResNet batches")
    parser.add_argument("--full-epoch", action="store_true", help="time one whole epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    _, npgrad = load_step(args.step if args.step is not None else max(step_dirs()))
    torch = None if args.no_torch else import_torch()
    if torch is None and not args.no_torch:
        print("torch is not installed: timing npgrad alone")
    result = run_conv_on_dataset(
        npgrad,
        torch,
        lambda: load_dataset(args.dataset, args.data_dir),
        repeats=args.repeats,
        timed_batches=None if args.full_epoch else args.batches,
        batch_size=args.batch_size,
    )
    print(format_conv_summary(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
