"""Step 08: the benchmark's NumPy lower bound (shared.bench.numpy_mlp) is a correct MLP.

The benchmark compares npgrad's training speed with this hand-written model, so its
gradients must be right: each one is checked against central differences of its own loss,
in float64 on a small model. Also the memory slice and the step lookup of the harness,
and that the harness's modules import one another without a cycle. No npgrad is imported
here.
"""

import ast
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from shared.bench import cli
from shared.bench.numpy_mlp import NumpyMLP, cross_entropy_mean, init_params
from shared.bench.training import NumpySide, memory_slice
from shared.steps import REPO_ROOT
from shared.testing.gradients import numeric_vjp

pytestmark = pytest.mark.step(8)


def small_model(seed: int) -> tuple[NumpyMLP, np.ndarray, np.ndarray]:
    """A float64 MLP 5 -> 4 -> 3 -> 3 and a batch of 6 examples with integer labels."""
    rng = np.random.default_rng(seed)
    model = NumpyMLP(init_params(rng, (5, 4, 3, 3), dtype=np.float64))
    x = rng.standard_normal((6, 5))
    labels = rng.integers(0, 3, size=6)
    return model, x, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_mlp_gradients_match_central_differences(seed: int) -> None:
    model, x, labels = small_model(seed)
    _, grads = model.loss_and_grads(x, labels)
    assert len(grads) == len(model.params) == 6
    for index, param in enumerate(model.params):

        def loss_of(value: np.ndarray, index: int = index) -> np.ndarray:
            trial = NumpyMLP([value if i == index else p for i, p in enumerate(model.params)])
            return np.asarray(trial.loss_and_grads(x, labels)[0])

        expected = numeric_vjp(loss_of, [param], 0, np.ones(()))
        assert grads[index].shape == param.shape
        assert_allclose(grads[index], expected, rtol=1e-5, atol=1e-7)


def test_cross_entropy_is_stable_for_large_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    loss, grad = cross_entropy_mean(logits, np.array([0, 2]))
    assert np.isfinite(loss)
    assert loss == pytest.approx(500.0)
    assert_allclose(grad, [[0.0, 0.0, 0.0], [0.0, 0.5, -0.5]], atol=1e-12)


def test_train_step_lowers_the_loss_and_keeps_float32() -> None:
    rng = np.random.default_rng(0)
    model = NumpyMLP.create(rng)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    labels = rng.integers(0, 10, size=64)
    first = model.train_step(x, labels, lr=0.1)
    for _ in range(20):
        last = model.train_step(x, labels, lr=0.1)
    assert last < first
    assert all(p.dtype == np.float32 for p in model.params)
    assert model.predict(x).shape == (64,)


def test_memory_slice_traces_only_when_asked() -> None:
    rng = np.random.default_rng(0)
    side = NumpySide(NumpyMLP.create(rng), lr=0.1)
    batch = (rng.standard_normal((64, 784)).astype(np.float32), rng.integers(0, 10, size=64))
    traced = memory_slice(side, [batch, batch])
    assert traced.traced_peak is not None
    assert traced.traced_peak > 0
    assert memory_slice(side, [batch, batch], traced=False).traced_peak is None  # as for torch


@pytest.mark.parametrize(("step", "message"), [(99, "there is no step 99"), (3, "no backward")])
def test_load_step_refuses_a_missing_or_too_early_step(step: int, message: str) -> None:
    with pytest.raises(LookupError, match=message):
        cli.load_step(step)


BENCH = REPO_ROOT / "shared" / "bench"
BENCH_MODULES = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "__main__")


def bench_imports(module: str) -> set[str]:
    """The ``shared.bench`` modules that ``module`` imports anywhere, inside functions too."""
    tree = ast.parse((BENCH / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "shared.bench" if node.level else (node.module or "")
            if node.level and node.module:
                base += "." + node.module
            # "from shared.bench import conv" names a module; "from shared.bench.conv import
            # x" names one through its path.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["shared", "bench"] and len(parts) > 2 and parts[2] in BENCH_MODULES:
                found.add(parts[2])
    return found - {module}


def test_bench_modules_import_one_another_without_a_cycle() -> None:
    graph = {module: bench_imports(module) for module in BENCH_MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail(f"import cycle in shared.bench: {' -> '.join(cycle)}")
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in BENCH_MODULES:
        visit(module, [])


@pytest.mark.parametrize("module", BENCH_MODULES)
def test_each_bench_module_imports_alone_in_a_fresh_process(module: str) -> None:
    # A fresh interpreter: a module that works only after another one was imported fails.
    name = "shared.bench" if module == "__init__" else f"shared.bench.{module}"
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"import {name} failed:\n{result.stderr}"
