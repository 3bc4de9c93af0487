"""Newton's method against gradient descent, on a small logistic regression.

``python newton.py [--steps N] [--plot losses.png]`` fits the same model both
ways and prints the loss per iteration. Newton's method needs the Hessian: here
it is built column by column from Hessian-vector products (``npgrad.hvp``, a
backward pass through a recorded backward pass), never written by hand. With
three weights that is three products per step, and a handful of steps reach the
optimum to machine precision, where gradient descent needs hundreds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from npgrad import Arr, Tensor, concatenate, cross_entropy, grad, hvp, zeros

L2 = 1e-2  # a little weight decay: the optimum is unique and finite, even for separable data


def make_data(n: int = 200, seed: int = 0) -> tuple[Arr, Arr]:
    """``(features, labels)``: two noisy classes in the plane, plus a column of ones (the bias)."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 2))
    chance = 1 / (1 + np.exp(-(1.5 * points[:, 0] - 2.0 * points[:, 1] + 0.5)))
    labels = (rng.uniform(size=n) < chance).astype(np.int64)
    return np.hstack([points, np.ones((n, 1))]), labels


def logistic_loss(features: Arr, labels: Arr) -> Callable[[Tensor], Tensor]:
    """The mean cross-entropy of the model ``p(1) = sigmoid(features @ w)``, plus ``L2 / 2 |w|^2``.

    Two logits per example, ``0`` and ``features @ w``: ``cross_entropy`` of those is the
    logistic loss, computed stably.
    """
    n = len(labels)

    def loss(w: Tensor) -> Tensor:
        scores = (Tensor(features) @ w).reshape(n, 1)
        logits = concatenate([zeros(n, 1), scores], dim=1)
        return cross_entropy(logits, labels).sum() / n + (w * w).sum() * (L2 / 2)

    return loss


def hessian(loss: Callable[[Tensor], Tensor], w: Arr) -> Arr:
    """The Hessian of ``loss`` at ``w``, one Hessian-vector product per column."""
    columns = [hvp(loss, Tensor(w), Tensor(unit))[1].array for unit in np.eye(len(w))]
    return np.stack(columns, axis=1)


def gradient(loss: Callable[[Tensor], Tensor], w: Arr) -> tuple[float, Arr]:
    """``(loss(w), its gradient)``."""
    point = Tensor(w, requires_grad=True)
    value = loss(point)
    (slope,) = grad(value, point)
    return value.item(), slope.array


def newton(loss: Callable[[Tensor], Tensor], w: Arr, steps: int) -> tuple[Arr, list[float]]:
    """``steps`` Newton steps ``w -= H^-1 g`` from ``w``: the final weights and every loss."""
    losses = []
    for _ in range(steps):
        value, slope = gradient(loss, w)
        losses.append(value)
        w = w - np.linalg.solve(hessian(loss, w), slope)
    losses.append(gradient(loss, w)[0])
    return w, losses


def gradient_descent(
    loss: Callable[[Tensor], Tensor], w: Arr, steps: int, lr: float
) -> tuple[Arr, list[float]]:
    """``steps`` full-batch gradient steps ``w -= lr * g``: the final weights and every loss."""
    losses = []
    for _ in range(steps):
        value, slope = gradient(loss, w)
        losses.append(value)
        w = w - lr * slope
    losses.append(gradient(loss, w)[0])
    return w, losses


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="gradient descent steps")
    parser.add_argument("--newton-steps", type=int, default=8, help="Newton steps")
    parser.add_argument("--lr", type=float, default=1.0, help="gradient descent step size")
    parser.add_argument("--plot", type=Path, default=None, help="write the losses as a PNG")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.newton_steps < 1:
        parser.error("--steps and --newton-steps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    features, labels = make_data()
    loss = logistic_loss(features, labels)
    start = np.zeros(features.shape[1])
    _, newton_losses = newton(loss, start, args.newton_steps)
    _, descent_losses = gradient_descent(loss, start, args.steps, args.lr)
    best = min(newton_losses)
    print("iteration  newton - best   descent - best")
    for step in range(max(len(newton_losses), len(descent_losses))):
        shown = [
            f"{losses[step] - best:14.3e}" if step < len(losses) else " " * 14
            for losses in (newton_losses, descent_losses)
        ]
        if step < len(newton_losses) or step % 25 == 0 or step == len(descent_losses) - 1:
            print(f"{step:9d}  {shown[0]}   {shown[1]}")
    if args.plot is not None:
        write_plot(args.plot, newton_losses, descent_losses, best)
        print(f"wrote the plot to {args.plot}")
    return 0


def write_plot(
    path: Path, newton_losses: list[float], descent_losses: list[float], best: float
) -> None:
    """The PNG of ``--plot``: each method's loss above the optimum, per iteration, log scale."""
    from shared.plotting import plot_curves  # matplotlib is slow to import: only when asked

    plot_curves(
        {
            "Newton (Hessian from Hessian-vector products)": [v - best for v in newton_losses],
            "gradient descent": [v - best for v in descent_losses],
        },
        path,
        title="Logistic regression: loss above the optimum",
        ylabel="loss - optimum",
    )


if __name__ == "__main__":
    raise SystemExit(main())
