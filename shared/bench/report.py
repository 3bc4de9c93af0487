"""Turning the benchmark's results into targets, a summary table, JSON and a bar chart.

The results are one JSON-ready dict (see :mod:`shared.bench.cli` for how it is filled):
``meta``, ``training`` (or ``{"skipped": reason}``), ``per_op``, ``deep_chain``, ``conv``.
This module reads that dict only; it imports NumPy, matplotlib (Agg, no pyplot), the
standard library and :mod:`shared.bench.conv` (for its summary lines), never ``npgrad``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shared.bench.conv import format_conv_summary

__all__ = [
    "MAX_ACCURACY_GAP",
    "MAX_CHAIN_MEMORY",
    "MAX_CONV_RATIO",
    "MAX_CONV_SHAPE_RATIO",
    "MAX_EPOCH_RATIO",
    "Target",
    "evaluate_targets",
    "format_summary",
    "plot_results",
    "write_json",
]

MAX_EPOCH_RATIO: Final = 1.5  # npgrad time per epoch / NumPy's
MAX_CONV_RATIO: Final = 1.5  # conv2d forward+backward, npgrad / torch, summed over the shapes
MAX_CONV_SHAPE_RATIO: Final = 2.0  # the same for each shape on its own
MAX_ACCURACY_GAP: Final = 0.005  # |npgrad - NumPy| test accuracy, as a fraction
MAX_CHAIN_MEMORY: Final = 2.0  # backward's traced peak / the forward graph's memory
CHAIN_SLACK: Final = 1.2  # t(10n)/t(n) may be at most 1.2 * 10: "linear" with 20% slack

Results = Mapping[str, Any]


@dataclass(frozen=True)
class Target:
    """One checked target: ``status`` is "PASS", "FAIL" or "SKIP"."""

    name: str
    status: str
    value: str
    detail: str = ""


def _status(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def evaluate_targets(results: Results) -> list[Target]:
    """Check every target; a part that did not run gives SKIP, not FAIL."""
    targets: list[Target] = []
    training = results.get("training", {})
    if "ratios" in training:
        ratio = training["ratios"]["npgrad/numpy"]
        targets.append(
            Target(
                f"npgrad time per epoch <= {MAX_EPOCH_RATIO:g}x the NumPy lower bound",
                _status(ratio["median"] <= MAX_EPOCH_RATIO),
                f"{ratio['median']:.2f}x",
                f"median of {len(ratio['per_repeat'])} repeats, "
                f"range {ratio['min']:.2f}-{ratio['max']:.2f}x",
            )
        )
    else:
        targets.append(
            Target("npgrad time per epoch", "SKIP", "-", training.get("skipped", "not run"))
        )
    sides = training.get("sides", {})
    acc = {name: side.get("test_accuracy") for name, side in sides.items()}
    if acc.get("npgrad") is not None and acc.get("numpy") is not None:
        gap = abs(acc["npgrad"] - acc["numpy"])
        targets.append(
            Target(
                f"test accuracy within {MAX_ACCURACY_GAP * 100:g} pp of NumPy",
                _status(gap <= MAX_ACCURACY_GAP),
                f"{gap * 100:.2f} pp",
                f"npgrad {acc['npgrad']:.2%}, NumPy {acc['numpy']:.2%} after one epoch",
            )
        )
    else:
        targets.append(Target("test accuracy vs NumPy", "SKIP", "-", "accuracy not measured"))

    chain = results.get("deep_chain", {})
    timings = chain.get("timings", [])
    if "error" in chain:
        targets.append(Target("deep chain completes", "FAIL", "error", chain["error"]))
    elif timings:
        largest = timings[-1]
        targets.append(
            Target(
                f"a chain of {largest['n']:,} ops builds and backpropagates",
                "PASS",
                f"{largest['total_s']:.1f} s",
                "no RecursionError; leaf gradient checked",
            )
        )
    if len(timings) >= 2:
        small, big = timings[-2], timings[-1]
        limit = CHAIN_SLACK * big["n"] / small["n"]
        ratio = big["cpu_total_s"] / small["cpu_total_s"]
        targets.append(
            Target(
                f"t({big['n']:.0e})/t({small['n']:.0e}) <= {limit:g} (linear scaling, CPU time)",
                _status(ratio <= limit),
                f"{ratio:.2f}",
                f"build {big['cpu_build_s'] / small['cpu_build_s']:.2f}, backward "
                f"{big['cpu_backward_s'] / small['cpu_backward_s']:.2f}; wall-clock "
                f"{big['total_s'] / small['total_s']:.2f}",
            )
        )
    memory = chain.get("memory", [])
    if memory:
        largest_mem = memory[-1]
        ratio = largest_mem["peak_over_graph"]
        targets.append(
            Target(
                f"backward peak <= {MAX_CHAIN_MEMORY:g}x the forward graph "
                f"({largest_mem['n']:.0e} ops)",
                _status(ratio <= MAX_CHAIN_MEMORY),
                f"{ratio:.2f}x",
                f"graph {largest_mem['graph'] / 2**20:.0f} MiB, backward peak "
                f"{largest_mem['backward_peak'] / 2**20:.0f} MiB (tracemalloc)",
            )
        )
    delete = chain.get("delete")
    if delete is not None:
        targets.append(
            Target(
                f"deleting a chain of {delete['n']:,} ops",
                _status(delete["ok"]),
                "ok" if delete["ok"] else "crashed",
                delete["detail"],
            )
        )
    conv = results.get("conv", {})
    if "error" in conv:
        targets.append(Target("conv2d and ResNet timings run", "FAIL", "error", conv["error"]))
    targets += _conv_targets(conv)
    return targets


def _conv_targets(conv: Mapping[str, Any]) -> list[Target]:
    """conv2d against torch: over all the shapes, and the slowest shape; none without torch."""
    total = conv.get("conv2d_ratio_total")
    if total is None:
        return []
    totals = conv["conv2d_total_ms"]
    timings = [t for t in conv["conv2d"] if t["ratio"] is not None]
    worst = max(timings, key=lambda t: t["ratio"])
    return [
        Target(
            f"conv2d forward+backward <= {MAX_CONV_RATIO:g}x PyTorch over the ResNet's shapes",
            _status(total <= MAX_CONV_RATIO),
            f"{total:.2f}x",
            f"npgrad {totals['npgrad']:.1f} ms, torch {totals['torch']:.1f} ms",
        ),
        Target(
            f"conv2d forward+backward <= {MAX_CONV_SHAPE_RATIO:g}x PyTorch for every shape",
            _status(worst["ratio"] <= MAX_CONV_SHAPE_RATIO),
            f"{worst['ratio']:.2f}x",
            f"the slowest: {worst['shape']}",
        ),
    ]


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _training_lines(training: Mapping[str, Any]) -> list[str]:
    if "skipped" in training:
        return [f"Training: skipped ({training['skipped']})"]
    budget = (
        "one full epoch" if training["full_epochs"] else f"{training['batches_per_repeat']} batches"
    )
    lines = [
        f"Training: {training['repeats']} repeats x {budget} per side, sides alternating every "
        f"{training['chunk']} batches; median over repeats; "
        f"epoch = {training['epoch_batches']} batches",
        f"  {'side':<8}{'ms/batch':>10}{'min-max':>16}{'s/epoch':>10}{'epoch run s':>13}"
        f"{'test acc':>10}{'traced MiB':>12}{'RSS MiB':>9}",
    ]
    for name, side in training["sides"].items():
        per_batch = side["per_batch_s"]
        accuracy = side.get("test_accuracy")
        lines.append(
            f"  {name:<8}{side['median_batch_s'] * 1e3:>10.3f}"
            f"{f'{min(per_batch) * 1e3:.3f}-{max(per_batch) * 1e3:.3f}':>16}"
            f"{side['epoch_s']:>10.2f}"
            f"{side.get('measured_epoch_s', math.nan):>13.2f}"
            f"{'-' if accuracy is None else f'{accuracy:.2%}':>10}"
            f"{_mib(side.get('memory', {}).get('traced_peak')):>12}"
            f"{_mib(side.get('memory', {}).get('rss_peak')):>9}"
        )
    for name, ratio in training["ratios"].items():
        cpu = training["cpu_ratios"][name]
        lines.append(
            f"  {name}: {ratio['median']:.2f}x (per repeat: min {ratio['min']:.2f}, "
            f"max {ratio['max']:.2f}); in CPU time {cpu['median']:.2f}x "
            f"({cpu['min']:.2f}-{cpu['max']:.2f})"
        )
    lines.append(
        "  s/epoch = median ms/batch x epoch batches; 'epoch run' = the one full epoch "
        "trained for the test accuracy; memory over "
        f"{training['memory_batches']} batches (traced: tracemalloc, blind to torch's "
        "allocator; RSS: rise of peak resident set)"
    )
    return lines


def format_summary(results: Results, targets: Sequence[Target]) -> str:
    """The readable summary: settings, the three parts, then PASS/FAIL per target."""
    meta = results["meta"]
    lines = [
        f"npgrad benchmark: step {meta['step']:02d} ({meta['step_dir']}), "
        f"{meta['dataset']}, MLP 784-64-64-10, batch {meta['batch_size']}, lr {meta['lr']}, "
        f"float32, seed {meta['seed']}",
        f"  Python {meta['python']}, NumPy {meta['numpy']}, torch {meta['torch'] or 'absent'}, "
        f"BLAS threads {meta['blas_threads']}, torch threads {meta['torch_threads']}",
        "",
    ]
    lines += _training_lines(results.get("training", {"skipped": "not run"}))
    lines.append("")
    per_op = results.get("per_op")
    if per_op:
        lines.append(
            f"Per-op overhead: x * y, two float32 arrays of {results['per_op_size']} elements "
            "(best of 7 timeit repeats)"
        )
        for row in per_op:
            lines.append(
                f"  {row['case']:<28}{row['microseconds']:>9.2f} us"
                f"{row['ratio_to_numpy']:>9.1f}x NumPy"
            )
        lines.append("")
    chain = results.get("deep_chain", {})
    if chain.get("timings"):
        lines.append(
            f"Deep chain: y = y * 1.0001, n times, then y.backward() (median of "
            f"{chain['repeats']} interleaved runs; memory in a separate tracemalloc run)"
        )
        lines.append(
            f"  {'n':>9}{'build s':>9}{'backward s':>12}{'free s':>8}{'us/op':>8}"
            f"{'CPU us/op':>11}{'graph MiB':>11}{'bwd peak MiB':>14}{'peak/graph':>12}"
        )
        memory = {m["n"]: m for m in chain.get("memory", [])}
        for row in chain["timings"]:
            mem = memory.get(row["n"])
            lines.append(
                f"  {row['n']:>9,}{row['build_s']:>9.2f}{row['backward_s']:>12.2f}"
                f"{row['free_s']:>8.2f}{row['total_s'] / row['n'] * 1e6:>8.2f}"
                f"{row['cpu_total_s'] / row['n'] * 1e6:>11.2f}"
                + (
                    f"{mem['graph'] / 2**20:>11.1f}{mem['backward_peak'] / 2**20:>14.1f}"
                    f"{mem['peak_over_graph']:>12.2f}"
                    if mem
                    else ""
                )
            )
        lines.append("")
    elif "error" in chain:
        lines += [f"Deep chain: FAILED: {chain['error']}", ""]
    conv = results.get("conv")
    if conv is not None:
        if "error" in conv:
            lines += [f"conv2d / ResNet: FAILED: {conv['error']}", ""]
        else:
            step = f"step {conv['step']:02d}: " if "step" in conv else ""
            lines += [step + format_conv_summary(conv), ""]
    lines.append("Targets:")
    for target in targets:
        detail = f"  ({target.detail})" if target.detail else ""
        lines.append(f"  {target.status:<5}{target.name}: {target.value}{detail}")
    return "\n".join(lines)


def write_json(results: Results, targets: Sequence[Target], path: Path) -> None:
    """Write the results and the targets to ``path`` (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**results, "targets": [asdict(t) for t in targets]}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def plot_results(results: Results, path: Path) -> None:
    """A PNG with up to four bar charts: epoch time, ratios, per-op cost, deep chain."""
    figure = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    training = results.get("training", {})
    ax = axes[0][0]
    if "sides" in training:
        names = list(training["sides"])
        sides = [training["sides"][n] for n in names]
        epochs = [s["epoch_s"] for s in sides]
        batches = training["epoch_batches"]
        low = [s["epoch_s"] - min(s["per_batch_s"]) * batches for s in sides]
        high = [max(s["per_batch_s"]) * batches - s["epoch_s"] for s in sides]
        ax.bar(names, epochs, yerr=[low, high], capsize=4, color=["C0", "C1", "C2"][: len(names)])
        for i, side in enumerate(sides):
            if side.get("test_accuracy") is not None:
                ax.annotate(
                    f"test acc.\n{side['test_accuracy']:.2%}",
                    (i, epochs[i] / 2),
                    ha="center",
                    va="center",
                    color="white",
                )
        ax.set_ylabel("seconds per epoch (median; bars: min-max)")
        ax.set_title("Training time per epoch (extrapolated from the timed batches)")

        ax = axes[0][1]
        ratio_names = list(training["ratios"])
        ratios = [training["ratios"][n] for n in ratio_names]
        ax.bar(
            ratio_names,
            [r["median"] for r in ratios],
            yerr=[
                [r["median"] - r["min"] for r in ratios],
                [r["max"] - r["median"] for r in ratios],
            ],
            capsize=4,
            color="C3",
        )
        ax.axhline(MAX_EPOCH_RATIO, color="k", linestyle="--", label="target for npgrad/numpy")
        ax.set_ylabel("time ratio (median; bars: min-max over repeats)")
        ax.set_title("npgrad relative to the others")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "training not run", ha="center", va="center")
        ax.axis("off")
        axes[0][1].axis("off")

    ax = axes[1][0]
    per_op = results.get("per_op", [])
    if per_op:
        ax.barh([r["case"] for r in per_op], [r["microseconds"] for r in per_op], color="C4")
        ax.set_xscale("log")
        ax.set_xlabel("microseconds per call (log scale)")
        ax.set_title(f"One multiply of {results['per_op_size']} float32 elements")
        ax.invert_yaxis()
    else:
        ax.axis("off")
    ax = axes[1][1]
    timings = results.get("deep_chain", {}).get("timings", [])
    if timings:
        labels = [f"{t['n']:.0e}" for t in timings]
        positions = list(range(len(timings)))
        width = 0.4
        ax.bar(
            [p - width / 2 for p in positions],
            [t["cpu_build_s"] / t["n"] * 1e6 for t in timings],
            width,
            label="build",
        )
        ax.bar(
            [p + width / 2 for p in positions],
            [t["cpu_backward_s"] / t["n"] * 1e6 for t in timings],
            width,
            label="backward",
        )
        ax.set_xticks(positions, labels)
        ax.set_xlabel("chain length (ops)")
        ax.set_ylabel("CPU microseconds per op (flat = linear scaling)")
        ax.set_title("Deep chain y = y * 1.0001")
        ax.legend()
    else:
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
