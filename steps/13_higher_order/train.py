"""Train the lesson's MLP, small CNN or small ResNet on MNIST (or Fashion-MNIST) with npgrad.

Run from the repository root (``nox -s train`` does exactly this)::

    PYTHONPATH=. python steps/12_resnet/train.py [--model mlp|cnn|resnet]
        [--dataset mnist|fashion-mnist] [--epochs N] [--batch-size 64] [--lr X]
        [--momentum X] [--weight-decay X] [--seed 0] [--data-dir DIR] [--limit N]
        [--save model.npz] [--resume model.npz] [--plot curves.png] [--metrics-json PATH]
        [--graph graph.svg]

Epochs, learning rate, momentum and weight decay default to the chosen model's own
settings (``MODEL_DEFAULTS``): five epochs of plain SGD for the MLP, one for the CNN,
one epoch of SGD with momentum and weight decay for the ResNet.

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
from npgrad import CNN, MLP, SGD, Module, ResNet, Tensor, cross_entropy, no_grad
from reporting import count_epochs, write_metrics, write_plot
from shared.data import DATASETS, DatasetError, batches, load_dataset, normalised_splits
from shared.graph import GraphvizNotFoundError, check_drawable, draw

Images = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
Batch = tuple[Images, Labels]

EVAL_BATCH_SIZE = 1000  # evaluation needs no gradients, so larger batches are cheap
CNN_CHANNELS = (8, 16)
CNN_LR = 0.05
RESNET_CHANNELS = (16, 32, 64)


@dataclass(frozen=True)
class ModelDefaults:
    """What ``--model`` selects besides the model itself (which ``make_model`` builds).

    The model's name in the plot's title, the shape it takes one image in, and the
    settings it trains with unless the command line says otherwise.
    """

    title: str
    input_shape: tuple[int, ...]
    epochs: int
    lr: float
    momentum: float
    weight_decay: float


MODEL_DEFAULTS = {
    "mlp": ModelDefaults("MLP", (28 * 28,), epochs=5, lr=0.01, momentum=0.0, weight_decay=0.0),
    "cnn": ModelDefaults("CNN", (1, 28, 28), epochs=1, lr=CNN_LR, momentum=0.0, weight_decay=0.0),
    "resnet": ModelDefaults(
        "ResNet", (1, 28, 28), epochs=1, lr=0.05, momentum=0.9, weight_decay=5e-4
    ),
}


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

    The model is put in training mode first (batch normalisation then uses each batch's
    statistics and updates its running ones). Each step clears the gradients, computes
    the mean loss of the batch, backpropagates and lets ``optimizer`` update the
    parameters. The returned loss is the mean over every example seen (each batch's
    mean weighted by its size), measured as training went, so with the parameters
    changing along the way. When ``batches`` is a ``tqdm`` progress bar, its postfix
    shows that running mean.
    """
    model.train()
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
    The model runs in evaluation mode (batch normalisation uses its running statistics
    and leaves them alone), and returns to the mode it was in afterwards.
    """
    if len(labels) == 0:
        raise ValueError("evaluate got an empty test set")
    total_loss = 0.0
    predictions: list[Labels] = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for start in range(0, len(labels), batch_size):
                x = images[start : start + batch_size]
                y = labels[start : start + batch_size]
                logits = model(Tensor(x))
                total_loss += float(cross_entropy(logits, y).sum().item())
                predictions.append(logits.argmax(dim=1).array.astype(np.int64))
    finally:
        model.train(was_training)
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


def make_model(name: str, rng: np.random.Generator) -> tuple[Module, str]:
    """The model called ``name`` (``"mlp"``, ``"cnn"`` or ``"resnet"``) and a one-line description.

    The MLP takes flat images, (N, 784); the CNN and the ResNet (N, 1, 28, 28) (``MODEL_DEFAULTS``).
    """
    model: Module
    if name == "mlp":
        model, title = MLP(rng=rng), "MLP 784-64-64-10"
    elif name == "cnn":
        model = CNN(CNN_CHANNELS, rng=rng)
        title = "CNN " + "-".join(str(c) for c in CNN_CHANNELS)
    elif name == "resnet":
        model = ResNet(RESNET_CHANNELS, rng=rng)
        title = "ResNet " + "-".join(str(c) for c in RESNET_CHANNELS)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_DEFAULTS)}")
    n_params = sum(p.array.size for p in model.parameters())
    return model, f"{title} ({n_params} parameters)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = "; ".join(
        f"{name}: {count_epochs(d.epochs)}, lr {d.lr}, momentum {d.momentum}, weight decay "
        f"{d.weight_decay}"
        for name, d in MODEL_DEFAULTS.items()
    )
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train npgrad's MLP (784-64-64-10), small CNN or small ResNet with SGD on "
        f"MNIST or Fashion-MNIST. Unless given, epochs, lr, momentum and weight decay follow the "
        f"model ({defaults}).",
    )
    parser.add_argument("--model", choices=sorted(MODEL_DEFAULTS), default="mlp")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=None, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=None, help="SGD weight decay")
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
    for name in ("epochs", "lr", "momentum", "weight_decay"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(MODEL_DEFAULTS[args.model], name))
    for name in ("epochs", "seed", "batch_size", "limit"):
        value = getattr(args, name)
        least = 0 if name in ("epochs", "seed") else 1
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
    for name in ("lr", "momentum", "weight_decay"):
        value = getattr(args, name)
        if not (np.isfinite(value) and value >= 0):
            parser.error(f"--{name.replace('_', '-')} must be a non-negative number, got {value}")
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
    shape = MODEL_DEFAULTS[args.model].input_shape  # reshaped as views: the MLP keeps (N, 784)
    x_train, y_train = prepared.train_images.reshape(-1, *shape), prepared.train_labels
    x_test, y_test = prepared.test_images.reshape(-1, *shape), prepared.test_labels
    print(f"{prepared.title}: {len(y_train)} training and {len(y_test)} test images")

    init_rng, shuffle_rng = make_generators(args.seed)
    model, description = make_model(args.model, init_rng)
    if args.resume is not None:
        try:
            load_checkpoint(model, args.resume)
        except (RuntimeError, ValueError, OSError) as exc:
            # One line: the checks list their problems one per line.
            lines = [line.strip() for line in str(exc).splitlines()]
            print(f"error: cannot resume from {args.resume}: {'; '.join(lines)}", file=sys.stderr)
            return 1
        print(f"resumed from {args.resume}")
    optimizer = SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    extras = "".join(
        f" {label}={value}"
        for label, value in (("momentum", args.momentum), ("weight decay", args.weight_decay))
        if value
    )
    print(
        f"{description}, SGD lr={args.lr}{extras}, batch size {args.batch_size}, "
        f"{count_epochs(args.epochs)}, seed {args.seed}"
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
            title = MODEL_DEFAULTS[args.model].title
            write_plot(args.plot, history, prepared, final.predictions, title)
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
