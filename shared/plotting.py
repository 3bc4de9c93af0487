"""Pictures of a training run: loss and accuracy curves, and a grid of test predictions.

:func:`plot_training` writes one PNG. It draws on matplotlib's Agg backend directly (a
``Figure`` with a ``FigureCanvasAgg``), never through ``pyplot``: no window opens, no
global backend is switched, and it works on a machine without a display.

This module imports NumPy and matplotlib only; never ``npgrad``. The training command
(``steps/08_training/train.py``) hands it plain numbers and arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["METRIC_KEYS", "plot_curves", "plot_training"]

# What every epoch's entry of ``metrics`` must hold. Accuracy is a fraction in [0, 1].
METRIC_KEYS: Final = ("train_loss", "test_loss", "test_accuracy")

RIGHT: Final = "tab:green"
WRONG: Final = "tab:red"


def _check_inputs(
    metrics: Sequence[Mapping[str, float]],
    images: npt.NDArray[Any],
    predictions: npt.NDArray[Any],
    labels: npt.NDArray[Any],
) -> None:
    if not metrics:
        raise ValueError("plot_training needs the metrics of at least one epoch, got none")
    for epoch, entry in enumerate(metrics, start=1):
        missing = [key for key in METRIC_KEYS if key not in entry]
        if missing:
            raise ValueError(
                f"the metrics of epoch {epoch} lack {', '.join(missing)}; every epoch needs "
                f"{', '.join(METRIC_KEYS)}"
            )
    if len(images) == 0:
        raise ValueError("plot_training needs at least one test image for the grid, got none")
    if not len(images) == len(predictions) == len(labels):
        raise ValueError(
            f"images, predictions and labels must have the same length, got "
            f"{len(images)}, {len(predictions)} and {len(labels)}"
        )
    square = images.ndim == 2 and math.isqrt(images.shape[1]) ** 2 == images.shape[1]
    if images.ndim != 3 and not square:
        raise ValueError(
            f"images must have shape (N, height, width) or flattened squares such as "
            f"(N, 784), got {images.shape}"
        )


def plot_training(
    metrics: Sequence[Mapping[str, float]],
    images: npt.NDArray[Any],
    predictions: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    path: Path | str,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "Training",
) -> Path:
    """Write one PNG with the training curves and a grid of test images; return its path.

    Args:
        metrics: one mapping per epoch, in order, each with ``train_loss`` (mean loss over
            the epoch's batches), ``test_loss`` and ``test_accuracy`` (a fraction in
            [0, 1]); other keys (``seconds``, ...) are ignored.
        images: the test images to show, shape (N, 28, 28) or flattened (N, 784), any
            dtype (raw uint8 or normalised floats; each is drawn in grey levels).
            Up to 25 are shown, in a square grid.
        predictions, labels: shape (N,): the predicted and true class of each image.
        path: where to write the PNG (parent folders are created).
        class_names: names of the classes for the titles (default: the class numbers).
        title: the figure's title.

    Left: the train and test loss per epoch, and the test accuracy per epoch. Right:
    the grid, each image titled "predicted (true)"; mistakes in red with a red frame,
    correct ones in green.

    Raises:
        ValueError: no epochs, an epoch without one of the keys above, no images, or
            images, predictions and labels of different lengths.
    """
    _check_inputs(metrics, images, predictions, labels)
    path = Path(path)
    shown = min(len(images), 25)
    side = math.isqrt(shown - 1) + 1  # the smallest square grid that holds them all
    pictures = images[:shown]
    if pictures.ndim == 2:
        width = math.isqrt(pictures.shape[1])
        pictures = pictures.reshape(shown, width, width)

    def name(label: Any) -> str:
        index = int(label)
        return class_names[index] if class_names is not None else str(index)

    epochs = np.arange(1, len(metrics) + 1)
    figure = Figure(figsize=(13, 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontweight="bold")
    halves = figure.add_gridspec(1, 2, width_ratios=(1, 1.15))
    left, right = figure.add_subfigure(halves[0]), figure.add_subfigure(halves[1])

    loss_axes, accuracy_axes = left.subplots(2, 1, sharex=True)
    loss_axes.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train (epoch mean)")
    loss_axes.plot(epochs, [m["test_loss"] for m in metrics], "s-", label="test")
    loss_axes.set_ylabel("cross-entropy loss")
    loss_axes.set_title("Loss per epoch")
    loss_axes.legend()
    loss_axes.grid(alpha=0.3)

    accuracy = [100 * m["test_accuracy"] for m in metrics]
    accuracy_axes.plot(epochs, accuracy, "o-", color="tab:purple")
    for epoch, value in zip(epochs, accuracy, strict=True):
        accuracy_axes.annotate(
            f"{value:.2f}%",
            (float(epoch), value),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    accuracy_axes.margins(x=0.08, y=0.2)
    bottom, top = accuracy_axes.get_ylim()
    accuracy_axes.set_ylim(bottom, min(top, 100.5))  # no accuracy scale beyond 100%
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("test accuracy (%)")
    accuracy_axes.set_title("Test accuracy per epoch")
    accuracy_axes.set_xticks(epochs)
    accuracy_axes.grid(alpha=0.3)

    cells = right.subplots(side, side, squeeze=False)
    mistakes = 0
    for i, axes in enumerate(cells.flat):
        axes.set_xticks([])
        axes.set_yticks([])
        if i >= shown:
            axes.set_axis_off()
            continue
        axes.imshow(pictures[i], cmap="gray")
        correct = bool(predictions[i] == labels[i])
        mistakes += not correct
        colour = RIGHT if correct else WRONG
        axes.set_title(f"{name(predictions[i])} ({name(labels[i])})", color=colour, fontsize=8)
        for spine in axes.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(1 if correct else 3)
    right.suptitle(f"Test images, predicted (true): {mistakes} of {shown} wrong, in red")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    path: Path | str,
    *,
    title: str,
    ylabel: str = "loss",
) -> Path:
    """Write one PNG with a line per named curve (values per iteration); return its path.

    The y axis is logarithmic, for values that fall by orders of magnitude (a loss
    minus its optimum); values that are not positive are left out.
    """
    if not curves or not all(len(values) for values in curves.values()):
        raise ValueError("plot_curves needs at least one curve, each with at least one value")
    path = Path(path)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, values in curves.items():
        ys = np.asarray(values, dtype=np.float64)
        xs = np.arange(len(ys))
        keep = ys > 0
        axes.plot(xs[keep], ys[keep], "o-" if len(ys) <= 30 else "-", label=label)
    axes.set_yscale("log")
    axes.set_title(title)
    axes.set_xlabel("iteration")
    axes.set_ylabel(ylabel)
    axes.legend()
    axes.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
