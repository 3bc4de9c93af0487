"""``python -m shared.bench`` (what ``nox -s bench`` runs): the side-by-side benchmark.

Four parts, every side on one BLAS thread (and ``torch`` on one thread):

1. training: the step's MLP against the hand-written NumPy lower bound and PyTorch, on the
   same MNIST batches; median time per batch over alternating repeats, time per epoch,
   test accuracy after one full epoch each, and peak memory of a short slice;
2. per-op overhead of one small multiply, forward and forward+backward, against NumPy;
3. deep chains of 10^4 to 10^6 ops: build and backward times, scaling, memory, deletion;
4. conv2d forward+backward against PyTorch on the ResNet's convolution shapes, and the
   ResNet's time per epoch (:mod:`shared.bench.conv`), for ``--conv-step`` (the latest
   step by default). When that is the step measured above (``--step``, which an
   ``--impl`` package stands for), it runs in this process on the package already
   imported, the ``--impl`` one included; otherwise in a child process
   (``python -m shared.bench.conv --step NN``) on ``steps/NN_*``, as one process can import
   only one ``npgrad``. Both paths call :func:`shared.bench.conv.run_conv_on_dataset`.

A summary table ends with PASS/FAIL per target; the exit status is 1 when a target fails
(unless ``--no-fail``). The step's package is imported by :func:`load_step`
(:mod:`shared.bench.packages`), after its folder is put first on ``sys.path``; nothing here
imports ``npgrad`` at module level.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from shared.bench import conv, micro, report, training
from shared.bench.numpy_mlp import NumpyMLP
from shared.bench.packages import import_torch, load_folder, load_step, load_train_module
from shared.data import DATASETS, Dataset, batches, load_dataset, normalised_splits
from shared.steps import TRAINING_STEP, shown, step_dirs

__all__ = [
    "default_step",
    "import_torch",
    "load_folder",
    "load_step",
    "load_train_module",
    "main",
    "parse_args",
]

PARTS = ("train", "op", "chain", "conv")


def default_step(steps: dict[int, Path] | None = None) -> int:
    """Step 08 (the training lesson); else the earliest step with an optimiser, else the latest.

    Later steps train the same MLP, but with more bookkeeping (step 09's
    version counters); ``--step N`` measures any of them.
    """
    steps = step_dirs() if steps is None else steps
    if TRAINING_STEP in steps:
        return TRAINING_STEP
    with_sgd = [n for n, path in steps.items() if (path / "npgrad" / "optim.py").is_file()]
    return min(with_sgd) if with_sgd else max(steps)


@functools.lru_cache(maxsize=1)
def _load_dataset(name: str, data_dir: Path | None) -> Dataset:
    """:func:`shared.data.load_dataset`, once: the training and conv parts share the dataset."""
    return load_dataset(name, data_dir)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.bench",
        description="npgrad against a hand-written NumPy MLP and PyTorch; per-op overhead; "
        "deep chains. Exits 1 when a target fails.",
    )
    parser.add_argument(
        "--step", type=int, default=None, help="step number (default: 08, the training step)"
    )
    parser.add_argument(
        "--impl",
        type=Path,
        default=None,
        metavar="DIR",
        help="benchmark the npgrad package inside DIR (e.g. a modified copy of a step) "
        "instead of the step's own; --step still names the step it stands for",
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: train,op,chain,conv"
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=300, help="timed batches per repeat")
    parser.add_argument(
        "--full-epochs", action="store_true", help="time one full epoch per repeat instead"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--chunk", type=int, default=20, help="batches per turn when the sides alternate"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-accuracy", action="store_true", help="skip the one-epoch accuracy runs"
    )
    parser.add_argument("--memory-batches", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--op-size", type=int, default=16)
    parser.add_argument(
        "--chain-sizes", default="10000,100000,1000000", help="comma-separated chain lengths"
    )
    parser.add_argument("--chain-repeats", type=int, default=3)
    parser.add_argument(
        "--conv-step",
        type=int,
        default=None,
        help="the step whose conv2d and ResNet are timed (default: the latest step); in "
        "this process when it equals --step (so an --impl package is timed when "
        "--conv-step is the step it stands for), else in a child process on steps/NN_*",
    )
    parser.add_argument(
        "--conv-repeats", type=int, default=7, help="conv2d timings per side and shape"
    )
    parser.add_argument(
        "--conv-batches", type=int, default=50, help="timed ResNet batches for its epoch time"
    )
    parser.add_argument("--json", type=Path, default=Path("out/bench.json"))
    parser.add_argument("--plot", type=Path, default=Path("out/bench.png"))
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    args.chain_sizes = [int(s) for s in args.chain_sizes.split(",") if s.strip()]
    return args


def _ratio_stats(num: Sequence[float], den: Sequence[float]) -> dict[str, Any]:
    per_repeat = [a / b for a, b in zip(num, den, strict=True)]
    return {
        "median": float(np.median(per_repeat)),
        "min": min(per_repeat),
        "max": max(per_repeat),
        "per_repeat": per_repeat,
    }


def run_training(
    args: argparse.Namespace,
    npgrad: ModuleType,
    torch: ModuleType | None,
    train: ModuleType | None = None,
) -> dict[str, Any]:
    """Part 1: timing, accuracy and memory of the three sides; a JSON-ready dict."""
    if not training.has_training_api(npgrad):
        return {"skipped": "this step has no MLP, cross_entropy and SGD yet"}
    dataset = _load_dataset(args.dataset, args.data_dir)
    x_train, y_train, x_test, y_test = normalised_splits(dataset, (28 * 28,))  # the MLP's input

    def epoch_batches(seed: int) -> list[training.Batch]:
        rng = np.random.default_rng(seed)
        return list(batches(x_train, y_train, args.batch_size, shuffle=True, rng=rng))

    epoch = epoch_batches(args.seed)
    timed = epoch if args.full_epochs else epoch[: args.batches]

    def make_sides() -> list[training.Side]:
        mine = training.NpgradSide(npgrad, args.seed, args.lr, train)
        sides: list[training.Side] = [
            training.NumpySide(NumpyMLP.from_arrays(mine.initial_arrays()), args.lr),
            mine,
        ]
        if torch is not None:
            sides.append(training.TorchSide(torch, args.seed, args.lr))
        return sides

    print(f"training: timing {args.repeats} x {len(timed)} batches per side ...", flush=True)
    per_batch, cpu_per_batch = training.time_alternating(
        make_sides(), timed, args.repeats, chunk=args.chunk
    )
    medians = training.medians(per_batch)
    cpu_medians = training.medians(cpu_per_batch)
    sides_out: dict[str, dict[str, Any]] = {
        name: {
            "per_batch_s": values,
            "median_batch_s": medians[name],
            "epoch_s": medians[name] * len(epoch),
            "cpu_per_batch_s": cpu_per_batch[name],
            "cpu_median_batch_s": cpu_medians[name],
        }
        for name, values in per_batch.items()
    }
    ratios = {
        f"npgrad/{other}": _ratio_stats(per_batch["npgrad"], per_batch[other])
        for other in per_batch
        if other != "npgrad"
    }
    cpu_ratios = {
        f"npgrad/{other}": _ratio_stats(cpu_per_batch["npgrad"], cpu_per_batch[other])
        for other in cpu_per_batch
        if other != "npgrad"
    }

    if not args.no_accuracy:
        for side in make_sides():
            print(f"training: one full epoch of {side.name} for its test accuracy ...", flush=True)
            result = training.train_epoch(side, epoch_batches(args.seed + 1), x_test, y_test)
            sides_out[side.name].update(
                measured_epoch_s=result.seconds,
                mean_train_loss=result.mean_loss,
                test_accuracy=result.test_accuracy,
            )
    print(f"training: memory of {args.memory_batches} batches per side ...", flush=True)
    for side in make_sides():
        side.train_batch(*timed[0])  # allocate the parameters' gradients once, untraced
        # tracemalloc is blind to torch's C++ allocator: only the RSS peak for torch
        memory = training.memory_slice(
            side, timed[1 : 1 + args.memory_batches], traced=side.name != "torch"
        )
        sides_out[side.name]["memory"] = {
            "traced_peak": memory.traced_peak,
            "rss_peak": memory.rss_peak,
        }
    return {
        "batches_per_repeat": len(timed),
        "full_epochs": args.full_epochs,
        "repeats": args.repeats,
        "epoch_batches": len(epoch),
        "memory_batches": args.memory_batches,
        "accuracy": "each side trains one full epoch from its own fresh model (NumPy "
        "from npgrad's initial weights, torch from nn.Linear's default init) on the same "
        "shuffled batches, then is scored on the 10000 test images",
        "npgrad_loop": "train.py's train_epoch and batch_loss"
        if train is not None
        else "an equivalent loop (the step has no train.py)",
        "sides": sides_out,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "chunk": args.chunk,
    }


def run_chain(args: argparse.Namespace, npgrad: ModuleType, step_path: Path) -> dict[str, Any]:
    """Part 3: deep chains; a JSON-ready dict (``error`` set if a chain raised)."""
    out: dict[str, Any] = {"repeats": args.chain_repeats, "sizes": args.chain_sizes}
    if not args.chain_sizes:
        return out
    largest = max(args.chain_sizes)
    print(f"deep chain: deleting a chain of {largest:,} in a child process ...", flush=True)
    ok, detail = micro.deep_delete_check(step_path, largest)
    out["delete"] = {"n": largest, "ok": ok, "detail": detail}
    sizes = sorted(args.chain_sizes) if ok else [n for n in args.chain_sizes if n < largest]
    print(f"deep chain: timing and memory of {sizes} ...", flush=True)
    try:
        timings, memories = micro.deep_chain(npgrad, sizes, repeat=args.chain_repeats)
    except (RecursionError, AssertionError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    out["timings"] = [t.as_dict() for t in timings]
    out["memory"] = [m.as_dict() for m in memories]
    out["memory_method"] = (
        "tracemalloc, in a run separate from the timing: graph = traced memory after "
        "building minus before; backward peak = traced peak during backward() minus the "
        "same starting point (the graph is alive throughout)"
    )
    return out


def run_conv_part(
    args: argparse.Namespace, step: int, npgrad: ModuleType, torch: ModuleType | None
) -> dict[str, Any]:
    """Part 4 for ``--conv-step``; a JSON-ready dict whose ``step`` is that step.

    In this process on ``npgrad`` when ``--conv-step`` is ``step`` (the step measured, or
    the one an ``--impl`` package stands for); otherwise in a child,
    ``python -m shared.bench.conv``, on ``steps/NN_*``, with the same environment (one
    thread), dataset and torch choice, whose JSON is read back (``error`` set if it failed).
    """
    conv_step = args.conv_step if args.conv_step is not None else max(step_dirs())
    if conv_step == step:
        result = conv.run_conv_on_dataset(
            npgrad,
            torch,
            functools.partial(_load_dataset, args.dataset, args.data_dir),
            repeats=args.conv_repeats,
            timed_batches=args.conv_batches,
            batch_size=args.batch_size,
        )
    else:
        print(f"  step {conv_step:02d}, in a child process", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "conv.json"
            command = [sys.executable, "-m", "shared.bench.conv", "--step", str(conv_step)]
            command += ["--dataset", args.dataset, "--json", str(out)]
            command += ["--repeats", str(args.conv_repeats), "--batches", str(args.conv_batches)]
            command += ["--batch-size", str(args.batch_size)]
            if args.data_dir is not None:
                command += ["--data-dir", str(args.data_dir)]
            if torch is None:
                command.append("--no-torch")
            finished = subprocess.run(command, capture_output=True, text=True, check=False)
            if finished.returncode == 0:
                result = json.loads(out.read_text(encoding="utf-8"))
            else:
                result = {
                    "error": f"python -m shared.bench.conv --step {conv_step} failed "
                    f"(exit status {finished.returncode}): {finished.stderr.strip()}"
                }
    result["step"] = conv_step
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected parts, print the summary, write JSON and PNG; the exit status."""
    args = parse_args(argv)
    step = args.step if args.step is not None else default_step()
    if args.impl is None:
        step_path, npgrad = load_step(step)
    else:
        step_path, npgrad = args.impl.resolve(), load_folder(args.impl)
    train = load_train_module(step_path)
    torch = None if args.no_torch else import_torch()
    blas = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if any(v != "1" for v in blas.values()):
        print(f"warning: BLAS threads not pinned to 1 ({blas}); use `nox -s bench`", flush=True)
    results: dict[str, Any] = {
        "meta": {
            "step": step,
            "step_dir": shown(step_path),
            "dataset": DATASETS[args.dataset].title,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": None if torch is None else torch.__version__,
            "torch_threads": None if torch is None else torch.get_num_threads(),
            "blas_threads": blas.get("OPENBLAS_NUM_THREADS"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": list(sys.argv[1:] if argv is None else argv),
        }
    }
    started = time.perf_counter()
    if "train" in args.parts:
        results["training"] = run_training(args, npgrad, torch, train)
    else:
        results["training"] = {"skipped": "not selected (--parts)"}
    if "op" in args.parts:
        print("per-op overhead ...", flush=True)
        results["per_op_size"] = args.op_size
        results["per_op"] = [
            r.as_dict() for r in micro.per_op_overhead(npgrad, size=args.op_size, torch=torch)
        ]
    if "chain" in args.parts:
        results["deep_chain"] = run_chain(args, npgrad, step_path)
    if "conv" in args.parts:
        print("conv2d and ResNet timings ...", flush=True)
        results["conv"] = run_conv_part(args, step, npgrad, torch)
    results["meta"]["wall_s"] = time.perf_counter() - started

    targets = report.evaluate_targets(results)
    print()
    print(report.format_summary(results, targets))
    report.write_json(results, targets, args.json)
    report.plot_results(results, args.plot)
    print(f"\nwrote {args.json} and {args.plot}")
    failed = [t for t in targets if t.status == "FAIL"]
    if failed and not args.no_fail:
        print(f"{len(failed)} target(s) failed (pass --no-fail to exit 0 anyway)")
        return 1
    return 0
