"""Step 09: random programs mixing views and in-place operations, against PyTorch.

Each program builds a small graph from three leaves with out-of-place operations,
views (a slice, a transpose, a reshape) and in-place operations (``add_``,
``relu_``) on results and views, then backpropagates the sum of one result. The
same program runs in npgrad and in PyTorch: either both refuse at the same
instruction, or both raise in backward, or both give the same leaf gradients.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import npgrad
from shared.testing.parity import require_torch

pytestmark = [pytest.mark.step(9), pytest.mark.parity]

SHAPE = (2, 2)
N_LEAVES = 3


@dataclass(frozen=True)
class Instruction:
    """``pool.append(op(pool[a], pool[b]))``, or an in-place op on ``pool[a]``."""

    op: str
    a: int
    b: int = 0


BINARY = ("mul", "add", "sub", "div_leaf")
UNARY = ("exp_small", "slice_row", "transpose", "reshape", "full_slice")
INPLACE = ("add_", "relu_")


def random_program(rng: np.random.Generator, length: int) -> list[Instruction]:
    """``length`` instructions; every operand refers to an earlier pool entry."""
    program: list[Instruction] = []
    size = N_LEAVES
    for _ in range(length):
        kind = rng.choice(["binary", "unary", "inplace"], p=[0.4, 0.3, 0.3])
        a, b = (int(i) for i in rng.integers(0, size, size=2))
        if kind == "binary":
            program.append(Instruction(str(rng.choice(BINARY)), a, b))
            size += 1
        elif kind == "unary":
            program.append(Instruction(str(rng.choice(UNARY)), a))
            size += 1
        else:  # mostly on results: on a leaf, both libraries refuse at once
            if size > N_LEAVES and rng.random() < 0.9:
                a = int(rng.integers(N_LEAVES, size))
            program.append(Instruction(str(rng.choice(INPLACE)), a, b))
    return program


# ("refused", index), ("overlap", index), ("backward raised", None) or ("grads", list)
Outcome = tuple[str, Any]


def run(program: list[Instruction], leaves: list[np.ndarray], lib: str) -> Outcome:
    """Run ``program`` in npgrad or torch; what happened."""
    if lib == "torch":
        import torch

        def make(value: np.ndarray) -> Any:
            return torch.tensor(value, requires_grad=True)

        def relu_(x: Any) -> Any:
            return x.relu_()

        def to_array(t: Any) -> np.ndarray | None:
            return None if t.grad is None else t.grad.detach().numpy()

        errors: tuple[type[Exception], ...] = (RuntimeError,)
    else:

        def make(value: np.ndarray) -> Any:
            return npgrad.Tensor(value.copy(), requires_grad=True)

        def relu_(x: Any) -> Any:
            return npgrad.relu(x, inplace=True)

        def to_array(t: Any) -> np.ndarray | None:
            return None if t.grad is None else t.grad.array

        errors = (RuntimeError, ValueError)

    pool: list[Any] = [make(value) for value in leaves]
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "mul": lambda x, y: x * y,
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "div_leaf": lambda x, y: x / pool[2],  # leaf 2 is positive and never changed
        "exp_small": lambda x, y: (x * 0.1).exp(),
        "slice_row": lambda x, y: x[0:1],
        "transpose": lambda x, y: x.T,
        "reshape": lambda x, y: x.reshape(2, 2) if x.shape == SHAPE else x.reshape(1, 2),
        "full_slice": lambda x, y: x[:],
    }
    for index, instruction in enumerate(program):
        x, y = pool[instruction.a], pool[instruction.b]
        try:
            if instruction.op == "add_":
                if np.broadcast_shapes(tuple(x.shape), tuple(y.shape)) != tuple(x.shape):
                    continue  # not an in-place operation either library allows
                x.add_(y)
            elif instruction.op == "relu_":
                relu_(x)
            else:
                pool.append(ops[instruction.op](x, y))
        except errors as error:
            if "single memory location" in str(error):
                # PyTorch refuses to add a tensor into a view of itself (memory overlap);
                # NumPy buffers the operands, so npgrad computes it: not comparable.
                return ("overlap", index)
            return ("refused", index)
    try:
        pool[-1].sum().backward()
    except errors:
        return ("backward raised", None)
    return ("grads", [to_array(leaf) for leaf in pool[:N_LEAVES]])


def same_outcome(ours: Outcome, theirs: Outcome) -> bool:
    if ours[0] != theirs[0]:
        return False
    if ours[0] != "grads":
        return bool(ours[1] == theirs[1])
    for mine, reference in zip(ours[1], theirs[1], strict=True):
        if (mine is None) != (reference is None):
            return False
        if mine is not None and not np.allclose(mine, reference, rtol=1e-9, atol=1e-12):
            return False
    return True


def compare(seed: int, n_programs: int) -> tuple[int, int, list[str]]:
    """Run ``n_programs`` random programs both ways: (compared, differing, descriptions)."""
    rng = np.random.default_rng(seed)
    compared = 0
    differing: list[str] = []
    for _ in range(n_programs):
        leaves = [
            rng.uniform(0.3, 1.5, size=SHAPE) * rng.choice([-1.0, 1.0], size=SHAPE),
            rng.uniform(0.3, 1.5, size=SHAPE) * rng.choice([-1.0, 1.0], size=SHAPE),
            rng.uniform(0.5, 1.5, size=SHAPE),
        ]
        program = random_program(rng, int(rng.integers(2, 9)))
        theirs = run(program, leaves, "torch")
        if theirs[0] == "overlap":
            continue
        if theirs[0] == "grads" and not all(
            grad is None or np.isfinite(grad).all() for grad in theirs[1]
        ):
            continue
        ours = run(program, leaves, "npgrad")
        compared += 1
        if not same_outcome(ours, theirs):
            differing.append(f"{program}: npgrad {ours[0]}, torch {theirs[0]}")
    return compared, len(differing), differing


def test_random_in_place_programs_behave_like_pytorch() -> None:
    require_torch()
    compared, n_differing, differing = compare(seed=0, n_programs=400)
    assert compared > 350, "too few programs were compared"
    assert n_differing == 0, "programs that differ from PyTorch:\n" + "\n".join(differing[:5])


def test_the_generator_reaches_every_instruction_and_all_outcomes() -> None:
    require_torch()
    rng = np.random.default_rng(0)
    seen = {instruction.op for _ in range(200) for instruction in random_program(rng, 8)}
    assert seen == set(BINARY) | set(UNARY) | set(INPLACE)
    rng = np.random.default_rng(1)
    kinds: set[str] = set()
    for _ in range(300):
        leaves = [rng.uniform(0.5, 1.5, size=SHAPE) for _ in range(N_LEAVES)]
        kinds.add(run(random_program(rng, 6), leaves, "npgrad")[0])
    assert kinds == {"refused", "backward raised", "grads"}, kinds


if __name__ == "__main__":  # the closing figure: python tests/test_09_inplace_programs.py N
    import sys

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    n_compared, n_diff, descriptions = compare(seed=12345, n_programs=total)
    print(f"{n_compared} programs compared with PyTorch, {n_diff} differ")
    for line in descriptions[:10]:
        print(line)
    sys.exit(1 if n_diff else 0)
