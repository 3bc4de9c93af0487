"""The three sides of the training benchmark, and how each is timed, scored and weighed.

Every side trains the same model (784 -> 64 -> ReLU -> 64 -> ReLU -> 10, float32, mean
cross entropy, SGD) on the same batches, and answers two calls: ``train_batch(x, y)``
(one SGD step; returns the batch loss as a float) and ``predict(x)`` (class labels).

- :class:`NpgradSide`: the step's own ``MLP``, ``cross_entropy`` and ``SGD``; the package
  (and optionally the step's ``train.py`` module) is passed in, never imported here.
- :class:`NumpySide`: :class:`shared.bench.numpy_mlp.NumpyMLP`, the hand-written lower bound.
  It starts from a copy of npgrad's initial weights when both run, so any gap in accuracy
  is the engine's and not the luck of the draw.
- :class:`TorchSide`: ``torch.nn.Linear`` layers with their default initialisation, on the
  batches from our own loader turned into tensors with ``torch.from_numpy`` (no copy).

Timing alternates the sides within each repeat, a chunk of batches at a time (rotating who
goes first), so a slow spell of a noisy machine hits every side alike; each ratio is
computed within one repeat.
Memory is measured in separate short runs (see :func:`memory_slice`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import inspect
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shared.bench.numpy_mlp import NumpyMLP

__all__ = [
    "Batch",
    "EpochResult",
    "MemoryResult",
    "NpgradSide",
    "NumpySide",
    "Side",
    "TorchSide",
    "evaluate",
    "memory_slice",
    "time_alternating",
    "train_epoch",
]

Arr = npt.NDArray[Any]
Batch = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]


class Side(Protocol):
    """One implementation under test."""

    name: str

    def train_batch(self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
        """One SGD step on one batch; the batch's mean loss."""
        ...

    def train_batches(self, batches: Sequence[Batch]) -> float:
        """One SGD step per batch, in order; the mean loss per example."""
        ...

    def predict(self, x: npt.NDArray[np.float32]) -> Arr:
        """The predicted class of each row of ``x``, without recording a graph."""
        ...


class NumpySide:
    """The hand-written NumPy model: the lower bound for any engine on NumPy."""

    name = "numpy"

    def __init__(self, model: NumpyMLP, lr: float) -> None:
        self.model = model
        self.lr = lr

    def train_batch(self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
        """One SGD step with the explicit gradient formulas."""
        return self.model.train_step(x, y, self.lr)

    def train_batches(self, batches: Sequence[Batch]) -> float:
        """One SGD step per batch, in order; the mean loss per example."""
        return _loop(self, batches)

    def predict(self, x: npt.NDArray[np.float32]) -> Arr:
        """Argmax of the logits."""
        return self.model.predict(x)


class TorchSide:
    """PyTorch on the CPU: ``nn.Linear`` default init, ``F.cross_entropy``, ``optim.SGD``."""

    name = "torch"

    def __init__(self, torch: ModuleType, seed: int, lr: float) -> None:
        self.torch = torch
        nn = torch.nn
        torch.manual_seed(seed)
        self.model = nn.Sequential(
            nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss_fn = nn.functional.cross_entropy

    def train_batch(self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
        """zero_grad, forward, mean cross entropy, backward, step."""
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def train_batches(self, batches: Sequence[Batch]) -> float:
        """One SGD step per batch, in order; the mean loss per example."""
        return _loop(self, batches)

    def predict(self, x: npt.NDArray[np.float32]) -> Arr:
        """Argmax of the logits, under ``torch.no_grad()``."""
        with self.torch.no_grad():
            result: Arr = self.model(self.torch.from_numpy(x)).argmax(dim=1).numpy()
        return result


def _loop(side: Side, batches: Sequence[Batch]) -> float:
    total, count = 0.0, 0
    for x, y in batches:
        total += side.train_batch(x, y) * len(y)
        count += len(y)
    return total / count


def _find(package: ModuleType, name: str, *modules: str) -> Any:
    """``package.name``, or ``package.<module>.name`` for the first module that has it."""
    if hasattr(package, name):
        return getattr(package, name)
    for module in modules:
        sub = getattr(package, module, None)
        if sub is not None and hasattr(sub, name):
            return getattr(sub, name)
    raise AttributeError(f"npgrad has no {name} (looked in npgrad and npgrad.{modules})")


def has_training_api(npgrad: ModuleType) -> bool:
    """True when the step's package has what training needs: MLP, cross_entropy, SGD."""
    try:
        for name, modules in (("MLP", ("nn",)), ("cross_entropy", ("nn", "ops")), ("SGD", ())):
            _find(npgrad, name, *modules, "optim")
    except AttributeError:
        return False
    return True


class NpgradSide:
    """The step's own engine, trained the way the step's training command trains it.

    With the step's ``train.py`` module given (``train``), the model is built from
    ``train.make_generators(seed)``'s initialisation stream, :meth:`train_batches` is
    ``train.train_epoch`` itself and one step's loss is ``train.batch_loss``. Without it,
    the equivalent loop: ``zero_grad``, the mean of ``cross_entropy``, ``backward``,
    ``step``. :meth:`initial_arrays` hands copies of the initial weights to the NumPy side.
    """

    name = "npgrad"

    def __init__(
        self, npgrad: ModuleType, seed: int, lr: float, train: ModuleType | None = None
    ) -> None:
        self.npgrad = npgrad
        self.train = train
        mlp = _find(npgrad, "MLP", "nn")
        takes_rng = "rng" in inspect.signature(mlp).parameters
        if train is not None and hasattr(train, "make_generators"):
            rng = train.make_generators(seed)[0]
        else:
            rng = np.random.default_rng(seed)
            np.random.seed(seed)  # for a step whose Linear draws from the global generator
        self.model = mlp(rng=rng) if takes_rng else mlp()
        self.cross_entropy = _find(npgrad, "cross_entropy", "nn", "ops")
        self.optimizer = _find(npgrad, "SGD", "optim")(self.model.parameters(), lr)
        self.no_grad = _find(npgrad, "no_grad", "grad_mode", "nn")
        self.Tensor = npgrad.Tensor

    def initial_arrays(self) -> list[Arr]:
        """Copies of the parameters' arrays in ``parameters()`` order: W1, b1, W2, ..."""
        return [np.array(p.array, copy=True) for p in self.model.parameters()]

    def loss(self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> Any:
        """The mean cross entropy of one batch, as a 0-d Tensor with its graph."""
        if self.train is not None and hasattr(self.train, "batch_loss"):
            return self.train.batch_loss(self.model, x, y)
        per_example = self.cross_entropy(self.model(self.Tensor(x)), y)
        return per_example.sum() / len(y)

    def train_batch(self, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
        """zero_grad, forward, mean cross entropy, backward, step."""
        self.optimizer.zero_grad()
        loss = self.loss(x, y)
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def train_batches(self, batches: Sequence[Batch]) -> float:
        """``train.train_epoch(model, optimizer, batches)`` when there is a ``train.py``."""
        if self.train is not None and hasattr(self.train, "train_epoch"):
            return float(self.train.train_epoch(self.model, self.optimizer, batches))
        return _loop(self, batches)

    def predict(self, x: npt.NDArray[np.float32]) -> Arr:
        """Argmax of the logits, with tracking off."""
        with self.no_grad():
            logits = self.model(self.Tensor(x))
        result: Arr = np.asarray(logits.array).argmax(axis=1)
        return result


# --------------------------------------------------------------------------- timing


def time_alternating(
    sides: Sequence[Side],
    batches: Sequence[Batch],
    repeats: int,
    *,
    warmup: int = 5,
    chunk: int = 20,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per batch of each side, one figure per repeat: wall clock and CPU time.

    Every side first trains ``warmup`` untimed batches. In each repeat every side trains on
    all of ``batches``, taking turns ``chunk`` batches at a time (the order of the sides
    rotates each repeat), so a slow spell of a busy machine lands on every side about
    equally; a side's time in a repeat is the sum over its chunks. CPU time
    (``time.process_time``) leaves out the time the process waited for a core.
    Returns ``({side: [wall s per batch, one per repeat]}, {side: [CPU s per batch, ...]})``.
    """
    for side in sides:
        side.train_batches(batches[:warmup])
    wall: dict[str, list[float]] = {side.name: [] for side in sides}
    cpu: dict[str, list[float]] = {side.name: [] for side in sides}
    for repeat in range(repeats):
        shift = repeat % len(sides)
        order = [*sides[shift:], *sides[:shift]]
        spent_wall = dict.fromkeys(wall, 0.0)
        spent_cpu = dict.fromkeys(cpu, 0.0)
        for start in range(0, len(batches), chunk):
            part = batches[start : start + chunk]
            for side in order:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                side.train_batches(part)
                spent_wall[side.name] += time.perf_counter() - wall_start
                spent_cpu[side.name] += time.process_time() - cpu_start
        for name in wall:
            wall[name].append(spent_wall[name] / len(batches))
            cpu[name].append(spent_cpu[name] / len(batches))
    return wall, cpu


@dataclass(frozen=True)
class EpochResult:
    """One full epoch of one side: wall time, mean training loss (per example, measured as
    training went) and test accuracy."""

    seconds: float
    batches: int
    mean_loss: float
    test_accuracy: float


def evaluate(side: Side, images: npt.NDArray[np.float32], labels: Arr, chunk: int = 1000) -> float:
    """Fraction of ``images`` whose predicted class equals the label."""
    correct = 0
    for start in range(0, len(images), chunk):
        predicted = side.predict(images[start : start + chunk])
        correct += int((predicted == labels[start : start + chunk]).sum())
    return correct / len(images)


def train_epoch(
    side: Side,
    epoch_batches: Sequence[Batch],
    test_images: npt.NDArray[np.float32],
    test_labels: Arr,
) -> EpochResult:
    """Train ``side`` on every batch once (timed), then score it on the test set (untimed)."""
    start = time.perf_counter()
    mean_loss = side.train_batches(epoch_batches)
    seconds = time.perf_counter() - start
    accuracy = evaluate(side, test_images, test_labels)
    return EpochResult(seconds, len(epoch_batches), mean_loss, accuracy)


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of a short training slice, in bytes; None where it cannot be measured.

    ``traced_peak``: tracemalloc's peak above the traced memory at the start of the slice.
    It sees Python objects and NumPy's data buffers (NumPy reports its allocations to
    tracemalloc), so it covers npgrad and the NumPy side completely, but not PyTorch's
    own C++ allocator (None for torch). ``rss_peak``: the rise of the process's peak
    resident set (VmHWM, reset through ``/proc/self/clear_refs`` after ``malloc_trim``)
    above the resident set at the start; coarser (page granularity, allocator caching)
    but it sees every allocator, torch's included. Linux only.
    """

    traced_peak: int | None
    rss_peak: int | None


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _rss_peak_delta(run: Callable[[], None]) -> int | None:
    try:
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            ctypes.CDLL(libc_name).malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _status_kb("VmRSS")
    except (OSError, LookupError, AttributeError):
        return None
    run()
    return max(0, _status_kb("VmHWM") - before) * 1024


def memory_slice(side: Side, batches: Sequence[Batch], *, traced: bool = True) -> MemoryResult:
    """Peak memory of training ``side`` on ``batches``: RSS, then tracemalloc, in two runs.

    With ``traced`` false (for torch, whose allocator tracemalloc cannot see) the traced
    run is left out and ``traced_peak`` is None.
    """

    def run() -> None:
        side.train_batches(batches)

    gc.collect()
    rss = _rss_peak_delta(run)
    traced_peak: int | None = None
    if traced:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            run()
            traced_peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    return MemoryResult(traced_peak, rss)


def medians(per_batch: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of each side's per-repeat figures."""
    return {name: float(np.median(values)) for name, values in per_batch.items()}
