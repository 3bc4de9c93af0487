"""Train the lesson's MLP on MNIST (or Fashion-MNIST) with npgrad alone.

Run from the repository root (``nox -s train`` does exactly this)::

    PYTHONPATH=. python steps/08_training/train.py [--dataset mnist|fashion-mnist]
        [--epochs 5] [--batch-size 64] [--lr 0.01] [--seed 0] [--data-dir DIR]
        [--limit N] [--save model.npz] [--resume model.npz] [--plot curves.png]
        [--metrics-json PATH] [--graph graph.svg]

Each epoch shows a progress bar with the running training loss (on a terminal), then
prints the test loss and accuracy; the total wall time comes last. The loop's pieces,
:func:`train_epoch` and :func:`evaluate`, are plain functions that tests and benchmarks
call directly, as are the checkpoint functions of ``checkpoint.py`` (``--save``,
``--resume``); ``reporting.py`` writes the metrics and the plot.

This file and those two sit beside the ``npgrad`` folder, not inside it: the package
imports NumPy and itself only, while this command also uses ``shared`` (data, plots)
and ``tqdm``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from checkpoint import load_checkpoint, save_checkpoint
from npgrad import MLP, SGD, Module, Tensor, cross_entropy, no_grad
from reporting import count_epochs, write_metrics, write_plot
from shared.data import DATASETS, DatasetError, batches, load_dataset, normalised_splits
from shared.graph import GraphvizNotFoundError, check_drawable, draw

Images = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
Batch = tuple[Images, Labels]

EVAL_BATCH_SIZE = 1000  # evaluation needs no gradients, so larger batches are cheap


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch measured. ``test_accuracy`` is a fraction in [0, 1]."""

    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    seconds: float


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The model on a whole test set: mean loss, accuracy and each prediction."""

    loss: float
    accuracy: float
    predictions: Labels


def batch_loss(model: Module, images: Images, labels: Labels) -> Tensor:
    """The mean cross-entropy of the model on one batch, a 0-d Tensor."""
    return cross_entropy(model(Tensor(images)), labels, reduction="mean")


def train_epoch(model: Module, optimizer: SGD, batches: Iterable[Batch]) -> float:
    """One pass over ``batches``: a gradient step per batch; returns the mean training loss.

    Each step clears the gradients, computes the mean loss of the batch, backpropagates
    and lets ``optimizer`` update the parameters. The returned loss is the mean over every
    example seen (each batch's mean weighted by its size), measured as training went, so
    with the parameters changing along the way. When ``batches`` is a ``tqdm`` progress bar,
    its postfix shows that running mean.
    """
    total, count = 0.0, 0
    progress = batches if isinstance(batches, tqdm) else None
    for images, labels in batches:
        optimizer.zero_grad()
        loss = batch_loss(model, images, labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
        if progress is not None:
            progress.set_postfix(loss=f"{total / count:.4f}", refresh=False)
    if count == 0:
        raise ValueError("train_epoch got no batches: the training set is empty")
    return total / count


def evaluate(
    model: Module, images: Images, labels: Labels, batch_size: int = EVAL_BATCH_SIZE
) -> Evaluation:
    """Mean loss, accuracy and predictions of ``model`` on a whole set, without tracking.

    Runs under ``no_grad()``: nothing is recorded, no gradient is touched, and the
    parameters are not changed (there is no optimizer step here, unlike the exercise this
    lesson is based on, whose evaluation loop ended with a stray ``optimizer.step()``).
    """
    if len(labels) == 0:
        raise ValueError("evaluate got an empty test set")
    total_loss = 0.0
    predictions: list[Labels] = []
    with no_grad():
        for start in range(0, len(labels), batch_size):
            x = images[start : start + batch_size]
            y = labels[start : start + batch_size]
            logits = model(Tensor(x))
            total_loss += float(cross_entropy(logits, y).sum().item())
            predictions.append(logits.argmax(dim=1).array.astype(np.int64))
    predicted = np.concatenate(predictions)
    return Evaluation(
        loss=total_loss / len(labels),
        accuracy=float(np.mean(predicted == labels)),
        predictions=predicted,
    )


@dataclass(frozen=True, eq=False)
class PreparedData:
    """A dataset ready for the MLP: images flattened to (N, 784) and normalised, float32.

    ``raw_test_images`` keeps the uint8 (N, 28, 28) test images for the plot; ``classes``
    names each label and ``title`` the dataset ("MNIST", "Fashion-MNIST").
    """

    train_images: Images
    train_labels: Labels
    test_images: Images
    test_labels: Labels
    raw_test_images: npt.NDArray[np.uint8]
    classes: tuple[str, ...]
    title: str


def prepare(dataset: str, data_dir: Path | None, limit: int | None) -> PreparedData:
    """Load and normalise a dataset; ``limit`` keeps the first N train and N test examples.

    Raises ``DatasetError`` (from ``shared.data``) when the files cannot be obtained.
    """
    ds = load_dataset(dataset, data_dir)
    x_train, y_train, x_test, y_test = normalised_splits(ds, (28 * 28,), limit=limit)
    return PreparedData(
        train_images=x_train,
        train_labels=y_train,
        test_images=x_test,
        test_labels=y_test,
        raw_test_images=ds.test_images[:limit],
        classes=ds.classes,
        title=DATASETS[ds.name].title,
    )


def make_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The two random streams of a run: ``(model initialisation, shuffling)``.

    The shuffling generator is ``np.random.default_rng(seed)``, created once so that its
    state advances from one epoch to the next (a new order each epoch, the same orders on
    every run). The initialisation draws from an independent child stream of the same
    seed, so the weights do not reuse the shuffling's random numbers.
    """
    (init_seed,) = np.random.SeedSequence(seed).spawn(1)
    return np.random.default_rng(init_seed), np.random.default_rng(seed)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train npgrad's MLP (784-64-64-10) with SGD on MNIST or Fashion-MNIST.",
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation and shuffling")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="a folder holding the four IDX files"
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use the first N train and N test"
    )
    parser.add_argument("--save", type=Path, default=None, help="write a .npz checkpoint")
    parser.add_argument("--resume", type=Path, default=None, help="start from a .npz checkpoint")
    parser.add_argument("--plot", type=Path, default=None, help="write curves and predictions")
    parser.add_argument(
        "--metrics-json", type=Path, default=None, help="write per-epoch metrics as JSON"
    )
    parser.add_argument(
        "--graph",
        type=Path,
        default=None,
        help="draw the graph of one training step's loss (.svg or .png; needs Graphviz)",
    )
    args = parser.parse_args(argv)
    if args.graph is not None:
        try:  # before training: a missing Graphviz should not cost a whole run
            check_drawable(args.graph)
        except (ValueError, GraphvizNotFoundError) as exc:
            parser.error(f"--graph: {exc}")
    for name in ("epochs", "seed", "batch_size", "limit"):
        value = getattr(args, name)
        least = 0 if name in ("epochs", "seed") else 1
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    if not (np.isfinite(args.lr) and args.lr >= 0):
        parser.error(f"--lr must be a non-negative number, got {args.lr}")
    if args.plot is not None and args.epochs == 0:
        parser.error("--plot draws curves per epoch: it needs --epochs 1 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 on success, 1 on a data or file error)."""
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        prepared = prepare(args.dataset, args.data_dir, args.limit)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    x_train, y_train = prepared.train_images, prepared.train_labels
    x_test, y_test = prepared.test_images, prepared.test_labels
    print(f"{prepared.title}: {len(y_train)} training and {len(y_test)} test images")

    init_rng, shuffle_rng = make_generators(args.seed)
    model = MLP(rng=init_rng)
    if args.resume is not None:
        try:
            load_checkpoint(model, args.resume)
        except (RuntimeError, ValueError, OSError) as exc:
            # One line: the checks list their problems one per line.
            lines = [line.strip() for line in str(exc).splitlines()]
            print(f"error: cannot resume from {args.resume}: {'; '.join(lines)}", file=sys.stderr)
            return 1
        print(f"resumed from {args.resume}")
    optimizer = SGD(model.parameters(), lr=args.lr)
    n_params = sum(p.array.size for p in model.parameters())
    print(
        f"MLP 784-64-64-10 ({n_params} parameters), SGD lr={args.lr}, batch size "
        f"{args.batch_size}, {count_epochs(args.epochs)}, seed {args.seed}"
    )

    history: list[EpochMetrics] = []
    result: Evaluation | None = None
    n_batches = -(-len(y_train) // args.batch_size)
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        bar = tqdm(
            batches(x_train, y_train, args.batch_size, shuffle=True, rng=shuffle_rng),
            total=n_batches,
            desc=f"epoch {epoch}/{args.epochs}",
            unit="batch",
            leave=False,
            disable=None,  # a bar on a terminal; none in logs and captured output
        )
        with bar:
            train_loss = train_epoch(model, optimizer, bar)
        result = evaluate(model, x_test, y_test)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            test_loss=result.loss,
            test_accuracy=result.accuracy,
            seconds=time.perf_counter() - epoch_start,
        )
        history.append(metrics)
        print(
            f"epoch {epoch}/{args.epochs}: train loss {train_loss:.4f}, test loss "
            f"{result.loss:.4f}, test accuracy {100 * result.accuracy:.2f}% "
            f"({metrics.seconds:.1f} s)",
            flush=True,
        )

    final = result if result is not None else evaluate(model, x_test, y_test)
    if not history:
        print(f"no training: test loss {final.loss:.4f}, test accuracy {100 * final.accuracy:.2f}%")
    wall = time.perf_counter() - started
    print(f"final test accuracy {100 * final.accuracy:.2f}%; wall time {wall:.1f} s")

    try:
        if args.save is not None:
            save_checkpoint(model, args.save)
            print(f"saved the model to {args.save}")
        if args.metrics_json is not None:
            write_metrics(args, history, final, wall)
            print(f"wrote metrics to {args.metrics_json}")
        if args.plot is not None:
            write_plot(args.plot, history, prepared, final.predictions)
            print(f"wrote the plot to {args.plot}")
        if args.graph is not None:
            write_graph(args.graph, model, x_train[: args.batch_size], y_train[: args.batch_size])
            print(f"wrote the graph of one training step's loss to {args.graph}")
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def write_graph(path: Path, model: Module, images: Images, labels: Labels) -> None:
    """The picture of ``--graph``: the recorded graph of ``batch_loss`` on one batch.

    The parameters are named as in ``state_dict`` (``linear1.weight``). Drawn after
    training and saving: the forward pass may change the model's state (batch norm's
    running statistics), which must not touch the run's results.
    """
    draw(batch_loss(model, images, labels), path, names=dict(model.named_parameters()))


if __name__ == "__main__":
    raise SystemExit(main())
