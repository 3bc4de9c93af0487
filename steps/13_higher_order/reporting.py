"""What the training command writes besides its printed lines: the metrics and the plot.

``write_metrics`` is ``--metrics-json`` and ``write_plot`` is ``--plot``;
``count_epochs`` words an epoch count for both and for the printed settings.
The records they take (``EpochMetrics``, ``Evaluation``, ``PreparedData``)
are defined in ``train.py``, which imports this module.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # train.py imports this module: its types only, for the checker
    from train import EpochMetrics, Evaluation, Labels, PreparedData


GRID_IMAGES = 25  # test images shown in the plot


def write_metrics(
    args: argparse.Namespace, history: Sequence[EpochMetrics], final: Evaluation, wall: float
) -> None:
    """The run as JSON: its settings, one entry per epoch, the final evaluation, wall time."""
    settings: dict[str, Any] = {
        key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
    }
    document = {
        "settings": settings,
        "epochs": [asdict(entry) for entry in history],
        "final": {"test_loss": final.loss, "test_accuracy": final.accuracy},
        "wall_seconds": wall,
    }
    path: Path = args.metrics_json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def write_plot(
    path: Path,
    history: Sequence[EpochMetrics],
    prepared: PreparedData,
    predictions: Labels,
    model_name: str = "MLP",
) -> None:
    """The PNG of ``--plot``: curves per epoch and the first test images with predictions."""
    from shared.plotting import plot_training  # matplotlib is slow to import: only when asked

    shown = slice(0, GRID_IMAGES)
    plot_training(
        [asdict(entry) for entry in history],
        prepared.raw_test_images[shown],
        predictions[shown],
        prepared.test_labels[shown],
        path,
        # MNIST's class names are its digits, which the default titles show already.
        class_names=prepared.classes if prepared.title != "MNIST" else None,
        title=f"npgrad {model_name} on {prepared.title}: {count_epochs(len(history))}",
    )


def count_epochs(n: int) -> str:
    """``"1 epoch"``, ``"5 epochs"``: for the settings line and the plot's title."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"
