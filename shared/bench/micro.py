"""Engine micro-benchmarks: the cost of one small operation, and graphs a million nodes deep.

Both parts need only what step 05 teaches (``Tensor``, ``multiply`` and ``backward``), so
they run against any step from 05 on. The step's package is passed in as ``npgrad`` (a
module object); this module never imports it.

Per-op overhead (:func:`per_op_overhead`): one elementwise multiply of two small float32
arrays, forward alone and forward+backward, against the bare NumPy calls doing the same
arithmetic. Each figure is the best of several ``timeit`` repeats (the least-disturbed
run on a noisy machine), in microseconds per call.

Deep chain (:func:`deep_chain`): ``y = y * 1.0001`` applied ``n`` times to a one-element
leaf, then ``y.backward()``. Timed without tracemalloc; memory is measured in a separate
run of the same chain with tracemalloc on (it slows allocation several-fold, so it never
overlaps a timing). Deleting a deep chain frees it node by node through nested
deallocation; :func:`deep_delete_check` does that in a child process, so a crash there
(a C stack overflow would kill the process) is reported instead of ending the benchmark.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "ChainMemory",
    "ChainTiming",
    "OpTiming",
    "build_chain",
    "deep_chain",
    "deep_delete_check",
    "per_op_overhead",
]

FACTOR: Final = 1.0001


@dataclass(frozen=True)
class OpTiming:
    """Microseconds per call of one case, and its ratio to the matching bare-NumPy case."""

    case: str
    microseconds: float
    ratio_to_numpy: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _best_us(func: Callable[[], object], repeat: int, min_time: float) -> float:
    """Best of ``repeat`` timeit runs, each long enough (``min_time`` s), in us per call."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(1, int(number * min_time / 0.2))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def per_op_overhead(
    npgrad: Any, *, size: int = 16, repeat: int = 7, min_time: float = 0.2, torch: Any = None
) -> list[OpTiming]:
    """Time ``x * y`` for two float32 arrays of ``size`` elements, in several costumes.

    Cases: bare NumPy forward (``np.multiply``); npgrad forward with no input requiring
    grad (no recipe recorded); npgrad forward recording a recipe; bare NumPy
    forward+backward (the product and both input gradients, ``g * y`` and ``g * x``);
    npgrad forward+backward (``out.backward(g)``, with ``.grad`` reset each call so every
    call does the same work). With ``torch`` (the module) given, the same two torch cases.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal(size).astype(np.float32)
    b = rng.standard_normal(size).astype(np.float32)
    g = np.ones(size, dtype=np.float32)
    plain_a, plain_b = npgrad.Tensor(a), npgrad.Tensor(b)
    ta = npgrad.Tensor(a, requires_grad=True)
    tb = npgrad.Tensor(b, requires_grad=True)
    multiply = npgrad.multiply

    def numpy_forward_backward() -> object:
        np.multiply(a, b)
        return np.multiply(g, b), np.multiply(g, a)

    def npgrad_forward_backward() -> None:
        ta.grad = None
        tb.grad = None
        multiply(ta, tb).backward(g)

    numpy_fwd = _best_us(lambda: np.multiply(a, b), repeat, min_time)
    numpy_fb = _best_us(numpy_forward_backward, repeat, min_time)
    results = [
        OpTiming("numpy forward", numpy_fwd, 1.0),
        OpTiming(
            "npgrad forward, untracked",
            u := _best_us(lambda: multiply(plain_a, plain_b), repeat, min_time),
            u / numpy_fwd,
        ),
        OpTiming(
            "npgrad forward, tracked",
            u := _best_us(lambda: multiply(ta, tb), repeat, min_time),
            u / numpy_fwd,
        ),
        OpTiming("numpy forward+backward", numpy_fb, 1.0),
        OpTiming(
            "npgrad forward+backward",
            u := _best_us(npgrad_forward_backward, repeat, min_time),
            u / numpy_fb,
        ),
    ]
    if torch is not None:
        xa = torch.from_numpy(a).requires_grad_(True)
        xb = torch.from_numpy(b).requires_grad_(True)
        tg = torch.from_numpy(g)

        def torch_forward_backward() -> None:
            xa.grad = None
            xb.grad = None
            torch.mul(xa, xb).backward(tg)

        results += [
            OpTiming(
                "torch forward, tracked",
                u := _best_us(lambda: torch.mul(xa, xb), repeat, min_time),
                u / numpy_fwd,
            ),
            OpTiming(
                "torch forward+backward",
                u := _best_us(torch_forward_backward, repeat, min_time),
                u / numpy_fb,
            ),
        ]
    return results


def build_chain(npgrad: Any, n: int) -> tuple[Any, Any]:
    """``(leaf, y)`` with ``y = leaf * 1.0001 * ... * 1.0001`` (``n`` multiplies), float64."""
    leaf = npgrad.Tensor(np.ones(1), requires_grad=True)
    y = leaf
    for _ in range(n):
        y = y * FACTOR
    return leaf, y


def _check_grad(leaf: Any, n: int) -> None:
    expected = FACTOR**n
    got = float(leaf.grad.array[0])
    if not np.isclose(got, expected, rtol=1e-6):
        raise AssertionError(f"chain of {n}: d y / d leaf is {got}, expected {expected}")


@dataclass(frozen=True)
class ChainTiming:
    """Median seconds to build a chain of ``n`` ops, to backpropagate it, and to free it.

    ``build_s``, ``backward_s`` and ``free_s`` are wall-clock; ``cpu_build_s`` and
    ``cpu_backward_s`` are CPU time of this process (``time.process_time``), which leaves
    out the time spent waiting for a core while other processes ran.
    """

    n: int
    build_s: float
    backward_s: float
    free_s: float
    cpu_build_s: float
    cpu_backward_s: float

    @property
    def total_s(self) -> float:
        """Build plus backward, wall-clock."""
        return self.build_s + self.backward_s

    @property
    def cpu_total_s(self) -> float:
        """Build plus backward, CPU time."""
        return self.cpu_build_s + self.cpu_backward_s

    def as_dict(self) -> dict[str, Any]:
        """The fields (and the totals) as a JSON-ready dict."""
        return {**asdict(self), "total_s": self.total_s, "cpu_total_s": self.cpu_total_s}


@dataclass(frozen=True)
class ChainMemory:
    """tracemalloc figures for a chain of ``n`` ops, in bytes.

    ``graph`` is what the built graph holds (traced memory after building minus before);
    ``backward_peak`` is the traced peak while ``backward()`` runs, counted from the same
    starting point, so it includes the graph, which stays alive during backward;
    ``backward_extra`` is what backward needs on top of the graph.
    """

    n: int
    graph: int
    backward_peak: int
    backward_extra: int

    @property
    def peak_over_graph(self) -> float:
        """``backward_peak / graph``: the target is at most 2."""
        return self.backward_peak / self.graph

    def as_dict(self) -> dict[str, Any]:
        """The fields (and the ratio) as a JSON-ready dict."""
        return {**asdict(self), "peak_over_graph": self.peak_over_graph}


def _time_chain(npgrad: Any, n: int) -> ChainTiming:
    gc.collect()  # start each run from the same heap, not with a previous run's garbage
    start, cpu_start = time.perf_counter(), time.process_time()
    leaf, y = build_chain(npgrad, n)
    built, cpu_built = time.perf_counter(), time.process_time()
    y.backward()
    done, cpu_done = time.perf_counter(), time.process_time()
    _check_grad(leaf, n)
    del y
    freed = time.perf_counter()
    return ChainTiming(
        n, built - start, done - built, freed - done, cpu_built - cpu_start, cpu_done - cpu_built
    )


def _measure_chain_memory(npgrad: Any, n: int) -> ChainMemory:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        leaf, y = build_chain(npgrad, n)
        graph = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        y.backward()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    _check_grad(leaf, n)
    del y
    return ChainMemory(n, graph, peak, peak - graph)


def deep_chain(
    npgrad: Any, sizes: Sequence[int], *, repeat: int = 3, memory: bool = True
) -> tuple[list[ChainTiming], list[ChainMemory]]:
    """Time (median of ``repeat`` runs) and, separately, measure memory of each chain size.

    The sizes are interleaved (all sizes once, then all again, ...) so that a busy spell
    of the machine does not land on one size only. Every run checks the leaf's gradient
    against ``1.0001 ** n``. A RecursionError (or any other error) propagates.
    """
    runs: dict[int, list[ChainTiming]] = {n: [] for n in sizes}
    for _ in range(repeat):
        for n in sizes:
            runs[n].append(_time_chain(npgrad, n))
    timings = [
        ChainTiming(
            n,
            *(
                statistics.median(getattr(r, field) for r in runs[n])
                for field in ("build_s", "backward_s", "free_s", "cpu_build_s", "cpu_backward_s")
            ),
        )
        for n in sizes
    ]
    memories = [_measure_chain_memory(npgrad, n) for n in sizes] if memory else []
    return timings, memories


_DELETE_SCRIPT: Final = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import npgrad
leaf = npgrad.Tensor(np.ones(1), requires_grad=True)
y = leaf
for _ in range(int(sys.argv[2])):
    y = y * 1.0001
y.backward()
del y
import gc
gc.collect()
print("deleted")
"""


def deep_delete_check(step_path: Path, n: int, timeout: float = 600.0) -> tuple[bool, str]:
    """Build, backpropagate and delete a chain of ``n`` ops in a child process.

    Returns ``(ok, detail)``: ``ok`` when the child printed that it deleted the chain and
    exited with status 0; otherwise ``detail`` holds the exit status and the end of its
    error output (a segmentation fault shows as status -11).
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DELETE_SCRIPT, str(step_path), str(n)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:g} s"
    if proc.returncode == 0 and "deleted" in proc.stdout:
        return True, "deleted without error"
    tail = proc.stderr.strip().splitlines()[-3:]
    return False, f"exit status {proc.returncode}: {' | '.join(tail)}"
