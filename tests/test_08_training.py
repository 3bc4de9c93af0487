"""Step 08: the SGD optimiser, the training loop, checkpoints and the training command.

The command (``steps/08_training/train.py``, imported as ``train``, and the checkpoint code
beside it, ``checkpoint.py``: the step folder is on ``sys.path``; a learner's workspace
without its own ``train.py`` gets the step's) runs
in-process on a small synthetic dataset written as IDX files into ``tmp_path``, with the
dataset table's checksums pointed at them and every fetching source (network, npm, Debian)
switched off, so these tests never need the network or the cache. Only the ``real_mnist``
tests read real MNIST, and only from the cache (CI fills it first); without it they skip
and say how to fetch it.
"""

import io
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    MLP,
    SGD,
    Module,
    Parameter,
    Tensor,
    cross_entropy,
    is_grad_enabled,
    no_grad,
    tensor,
)
from shared import data, plotting
from shared.steps import step_dir
from shared.testing.datasets import install_synthetic_mnist, real_mnist_folder, synthetic_images
from shared.testing.parity import require_torch, to_numpy

try:
    import train
except ModuleNotFoundError:
    # A learner's workspace (--impl DIR) holds the npgrad package only: test its SGD
    # with the step's own training command, which then imports the workspace's npgrad
    # (and the step's checkpoint.py and reporting.py, unless the workspace has its own).
    sys.path.append(str(step_dir(8)))
    import train
import checkpoint

pytestmark = pytest.mark.step(8)

REPO_ROOT = Path(__file__).resolve().parent.parent
# Captured at import, before any test redirects NPGRAD_DATA, for the real-data tests.
REAL_MNIST_DIR = data.cache_root() / "mnist"

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def param(values: list[float]) -> Parameter:
    return Parameter(tensor(values, dtype=np.float32))


def model_and_data(seed: int = 0, n: int = 50) -> tuple[MLP, F32, I64]:
    rng = np.random.default_rng(seed)
    model = MLP(rng=rng)
    images = rng.standard_normal((n, 784)).astype(np.float32)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return model, images, labels


# --------------------------------------------------------------------------- SGD


def test_sgd_step_matches_hand_computation() -> None:
    p = param([1.0, 2.0, 3.0])
    p.grad = tensor([0.5, -1.0, 2.0], dtype=np.float32)
    before = p.array

    SGD([p], lr=0.1).step()

    # p - lr * grad = [1 - 0.05, 2 + 0.1, 3 - 0.2]
    in_place = (
        "SGD.step must change each parameter's array in place (param.add_(param.grad, "
        "alpha=-lr)): p = p - lr * p.grad only rebinds a local name and leaves the model's "
        "parameter unchanged"
    )
    assert_allclose(p.array, [0.95, 2.1, 2.8], rtol=1e-6, err_msg=in_place)
    assert p.array is before, in_place  # the very same array
    assert p.array.dtype == np.float32


def test_sgd_step_is_seen_through_a_shared_array() -> None:
    weights = Tensor(np.array([[1.0, -1.0]], dtype=np.float32))
    p = Parameter(weights)
    p.grad = Tensor(np.array([[10.0, 10.0]], dtype=np.float32))
    SGD([p], lr=0.01).step()
    assert_allclose(weights.array, [[0.9, -1.1]], rtol=1e-6)


def test_sgd_step_updates_every_parameter_and_skips_those_without_grad() -> None:
    a, b, c = param([1.0]), param([2.0, 2.0]), param([3.0])
    a.grad = tensor([1.0], dtype=np.float32)
    c.grad = tensor([-2.0], dtype=np.float32)
    SGD([a, b, c], lr=0.5).step()
    assert_allclose(a.array, [0.5], rtol=1e-6)
    assert_array_equal(b.array, [2.0, 2.0])  # no gradient: untouched
    assert b.grad is None
    assert_allclose(c.array, [4.0], rtol=1e-6)


def test_sgd_step_leaves_the_gradient_alone() -> None:
    p = param([1.0, 2.0])
    p.grad = tensor([3.0, 4.0], dtype=np.float32)
    SGD([p], lr=0.1).step()
    assert p.grad is not None
    assert_array_equal(p.grad.array, [3.0, 4.0])


def test_sgd_step_records_nothing_and_keeps_tracking_on() -> None:
    model, images, labels = model_and_data()
    optimizer = SGD(model.parameters(), lr=0.1)
    train.batch_loss(model, images, labels).backward()

    optimizer.step()

    assert is_grad_enabled(), (
        "SGD.step must leave grad tracking as it found it: update inside `with no_grad():`, "
        "not after set_grad_enabled(False)"
    )
    for p in model.parameters():
        assert p.is_leaf
        assert p.recipe is None
        assert p.requires_grad


def test_sgd_step_inside_no_grad_leaves_tracking_off() -> None:
    p = param([1.0])
    p.grad = tensor([1.0], dtype=np.float32)
    with no_grad():
        SGD([p], lr=1.0).step()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert_array_equal(p.array, [0.0])


def test_zero_grad_sets_every_gradient_to_none() -> None:
    model, images, labels = model_and_data()
    optimizer = SGD(model.parameters(), lr=0.1)
    train.batch_loss(model, images, labels).backward()
    assert all(p.grad is not None for p in model.parameters())

    optimizer.zero_grad()

    grads = [p.grad for p in model.parameters()]
    assert len(grads) == 6
    assert grads == [None] * 6


def test_without_zero_grad_the_step_uses_the_sum_of_both_gradients() -> None:
    # Why zero_grad exists: backward accumulates, so a forgotten zero_grad doubles here.
    p = param([1.0, 1.0])
    for _ in range(2):
        (p * Tensor(np.array([2.0, 3.0], dtype=np.float32))).sum().backward()
    SGD([p], lr=0.1).step()
    assert_allclose(p.array, [1.0 - 0.1 * 4.0, 1.0 - 0.1 * 6.0], rtol=1e-6)


def test_sgd_reads_a_generator_of_parameters_once() -> None:
    model = MLP(rng=np.random.default_rng(0))
    optimizer = SGD(model.parameters(), lr=0.01)
    assert [id(p) for p in optimizer.params] == [id(p) for p in model.parameters()]
    assert optimizer.lr == 0.01


def test_sgd_repr_shows_the_learning_rate_and_the_parameter_count() -> None:
    optimizer = SGD(MLP(rng=np.random.default_rng(0)).parameters(), lr=0.01)
    assert repr(optimizer) == "SGD(lr=0.01, 6 parameters)"


def test_sgd_rejects_an_empty_parameter_list() -> None:
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


def test_sgd_of_a_single_tensor_raises_saying_what_to_pass() -> None:
    p = param([1.0, 2.0])
    with pytest.raises(TypeError, match=r"single Tensor: pass model\.parameters\(\) or a list"):
        SGD(cast(Any, p), lr=0.5)  # a Tensor where a list belongs, on purpose


def test_sgd_of_something_that_is_not_a_tensor_raises_naming_its_position() -> None:
    with pytest.raises(TypeError, match=r"got a ndarray at position 1"):
        SGD([param([1.0]), np.ones(2)], lr=0.5)  # type: ignore[list-item]  # on purpose


def test_sgd_warns_about_a_duplicate_and_updates_it_once_per_step() -> None:
    p, q = param([1.0, 2.0]), param([3.0])
    # Recorded rather than pytest.warns: an exception inside pytest.warns is reported
    # as "DID NOT WARN", which would hide a learner's NotImplementedError.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer = SGD([p, q, p], lr=0.5)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any(re.search(r"duplicate parameters \(1 repeated\)", m) for m in messages), (
        f"SGD given the same parameter twice must warn (UserWarning); got {messages}"
    )
    assert [id(x) for x in optimizer.params] == [id(p), id(q)]
    p.grad = tensor([1.0, 1.0], dtype=np.float32)
    optimizer.step()
    assert_array_equal(p.array, [0.5, 1.5])  # one step of 0.5, not two


@pytest.mark.parametrize("lr", [-0.1, math.nan, math.inf])
def test_sgd_rejects_a_bad_learning_rate(lr: float) -> None:
    with pytest.raises(ValueError, match="learning rate must be a non-negative number"):
        SGD([param([1.0])], lr=lr)


@pytest.mark.parity
def test_sgd_matches_torch_over_several_steps() -> None:
    torch = require_torch()
    rng = np.random.default_rng(1)
    start = [rng.standard_normal(shape).astype(np.float32) for shape in [(3, 4), (4,)]]
    ours = [Parameter(Tensor(a.copy())) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    optimizer, reference = SGD(ours, lr=0.05), torch.optim.SGD(theirs, lr=0.05)

    for _ in range(3):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in start]
        optimizer.zero_grad()
        reference.zero_grad()
        for p, t, g in zip(ours, theirs, grads, strict=True):
            p.grad = Tensor(g.copy())
            t.grad = torch.tensor(g.copy())
        optimizer.step()
        reference.step()

    for p, t in zip(ours, theirs, strict=True):
        assert_allclose(p.array, to_numpy(t), rtol=1e-6, atol=1e-7)
    optimizer.zero_grad()
    reference.zero_grad()
    assert [p.grad for p in ours] == [None, None]
    assert [t.grad for t in theirs] == [None, None]  # torch's default too: set_to_none


@pytest.mark.parity
def test_training_steps_match_torch() -> None:
    torch = require_torch()
    model, images, labels = model_and_data(seed=2, n=64)
    layers = [model.linear1, model.linear2, model.linear3]
    reference = torch.nn.Sequential(
        torch.nn.Linear(784, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    with torch.no_grad():
        for ours, theirs in zip(layers, reference[::2], strict=True):
            assert ours.bias is not None
            theirs.weight.copy_(torch.from_numpy(ours.weight.array))
            theirs.bias.copy_(torch.from_numpy(ours.bias.array))
    optimizer = SGD(model.parameters(), lr=0.1)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)

    for start in (0, 32):
        x, y = images[start : start + 32], labels[start : start + 32]
        optimizer.zero_grad()
        loss = train.batch_loss(model, x, y)
        loss.backward()
        optimizer.step()
        reference_optimizer.zero_grad()
        expected = torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(x)), torch.from_numpy(y)
        )
        expected.backward()
        reference_optimizer.step()
        assert_allclose(loss.item(), expected.item(), rtol=1e-5)

    for ours_param, theirs_param in zip(model.parameters(), reference.parameters(), strict=True):
        assert_allclose(ours_param.array, to_numpy(theirs_param), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- the loop


def test_batch_loss_is_the_mean_of_the_per_example_losses() -> None:
    model, images, labels = model_and_data(n=7)
    loss = train.batch_loss(model, images, labels)
    per_example = cross_entropy(model(Tensor(images)), labels)
    assert loss.shape == ()
    assert_allclose(loss.item(), per_example.array.mean(), rtol=1e-6)


def test_train_epoch_lowers_the_loss_on_a_learnable_problem() -> None:
    images, labels = separable_data(np.random.default_rng(3), 400)
    model = MLP(rng=np.random.default_rng(4))
    optimizer = SGD(model.parameters(), lr=0.05)
    before = train.evaluate(model, images, labels)
    rng = np.random.default_rng(0)

    first = train.train_epoch(
        model, optimizer, data.batches(images, labels, 32, shuffle=True, rng=rng)
    )
    second = train.train_epoch(
        model, optimizer, data.batches(images, labels, 32, shuffle=True, rng=rng)
    )
    after = train.evaluate(model, images, labels)

    assert second < first
    assert after.loss < 0.5 * before.loss
    assert after.accuracy > 0.9


def test_train_epoch_returns_the_mean_over_examples_not_over_batches() -> None:
    # lr=0 freezes the model, so the epoch's mean loss is the whole set's mean loss; a
    # last partial batch (50 = 3 * 16 + 2) must weigh 2 examples, not a whole batch.
    model, images, labels = model_and_data(n=50)
    optimizer = SGD(model.parameters(), lr=0.0)
    mean = train.train_epoch(model, optimizer, data.batches(images, labels, 16, shuffle=False))
    assert_allclose(mean, train.evaluate(model, images, labels).loss, rtol=1e-5)


def test_train_epoch_clears_the_gradients_before_each_step() -> None:
    # lr=0 freezes the model, so after the epoch each .grad must be the last batch's
    # gradient alone; without zero_grad it is the sum over all three batches.
    model, images, labels = model_and_data(n=48)
    optimizer = SGD(model.parameters(), lr=0.0)
    train.train_epoch(model, optimizer, data.batches(images, labels, 16, shuffle=False))
    after_epoch = {name: p.grad for name, p in model.named_parameters()}
    optimizer.zero_grad()
    train.batch_loss(model, images[32:], labels[32:]).backward()
    for name, p in model.named_parameters():
        got, last_batch = after_epoch[name], p.grad
        assert got is not None
        assert last_batch is not None
        assert_allclose(
            got.array,
            last_batch.array,
            rtol=1e-5,
            atol=1e-7,
            err_msg=f"{name}: train_epoch must call optimizer.zero_grad() before each "
            "backward, or each step uses the sum of every batch's gradient so far",
        )


def test_train_epoch_without_batches_raises() -> None:
    model = MLP(rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="no batches"):
        train.train_epoch(model, SGD(model.parameters(), lr=0.1), iter([]))


class Recording(Module):
    """Wraps a model and keeps every output it produced, to inspect their recipes."""

    def __init__(self, inner: Module) -> None:
        super().__init__()
        self.inner = inner
        self.outputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        out = self.inner(x)
        self.outputs.append(out)
        return out


def test_evaluate_changes_nothing_and_records_nothing() -> None:
    model, images, labels = model_and_data(n=30)
    train.batch_loss(model, images, labels).backward()  # some gradients, as after training
    weights = model.state_dict()
    grads = [p.grad.array.copy() for p in model.parameters() if p.grad is not None]
    recording = Recording(model)

    train.evaluate(recording, images, labels, batch_size=8)

    assert len(recording.outputs) == 4  # 8 + 8 + 8 + 6
    assert all(out.recipe is None and not out.requires_grad for out in recording.outputs)
    assert is_grad_enabled()
    for name, value in model.state_dict().items():
        assert_array_equal(value, weights[name], err_msg=name)
    after = [p.grad.array for p in model.parameters() if p.grad is not None]
    assert len(after) == len(grads) == 6
    for new, old in zip(after, grads, strict=True):
        assert_array_equal(new, old)


def test_evaluate_reports_loss_accuracy_and_predictions() -> None:
    model, images, labels = model_and_data(n=23)
    result = train.evaluate(model, images, labels, batch_size=10)
    logits = model(Tensor(images)).array
    expected = np.argmax(logits, axis=1)
    assert_array_equal(result.predictions, expected)
    assert result.predictions.dtype == np.int64
    assert result.accuracy == np.mean(expected == labels)
    losses = cross_entropy(Tensor(logits), labels).array
    assert_allclose(result.loss, losses.mean(), rtol=1e-5)


def test_make_generators_are_reproducible_and_independent() -> None:
    init_a, shuffle_a = train.make_generators(0)
    init_b, shuffle_b = train.make_generators(0)
    assert_array_equal(shuffle_a.permutation(100), np.random.default_rng(0).permutation(100))
    assert_array_equal(shuffle_b.permutation(100), np.random.default_rng(0).permutation(100))
    first, second = init_a.random(5), init_b.random(5)
    assert_array_equal(first, second)
    assert not np.array_equal(first, np.random.default_rng(0).random(5))


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model, images, labels = model_and_data(seed=5)
    optimizer = SGD(model.parameters(), lr=0.1)
    train.train_epoch(model, optimizer, data.batches(images, labels, 10, shuffle=False))
    path = tmp_path / "model.npz"

    checkpoint.save_checkpoint(model, path)
    other = MLP(rng=np.random.default_rng(99))
    params_before = list(other.parameters())
    checkpoint.load_checkpoint(other, path)

    assert [id(p) for p in other.parameters()] == [id(p) for p in params_before]  # in place
    assert_array_equal(other(Tensor(images)).array, model(Tensor(images)).array)
    assert_array_equal(
        train.evaluate(other, images, labels).predictions,
        train.evaluate(model, images, labels).predictions,
    )


def test_checkpoint_is_a_plain_npz_of_the_state_dict(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    path = tmp_path / "plain.ckpt"  # the name is used as given: no ".npz" appended
    checkpoint.save_checkpoint(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["plain.ckpt"]
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(model.state_dict())
        for name, value in model.state_dict().items():
            assert archive[name].dtype == np.float32
            assert_array_equal(archive[name], value)


def bigger_first_layer(model: MLP) -> dict[str, npt.NDArray[np.float32]]:
    state = model.state_dict()
    state["linear1.weight"] = np.zeros((32, 784), dtype=np.float32)
    return state


def test_checkpoint_of_another_shape_names_the_parameter(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    path = tmp_path / "other.npz"
    np.savez(path, allow_pickle=False, **bigger_first_layer(model))
    before = model.state_dict()

    with pytest.raises(RuntimeError, match=r"shape mismatch for 'linear1\.weight'.*\(32, 784\)"):
        checkpoint.load_checkpoint(model, path)

    for name, value in model.state_dict().items():
        assert_array_equal(value, before[name], err_msg=name)  # nothing half-loaded


def test_checkpoint_with_a_missing_parameter_names_it(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    state = model.state_dict()
    del state["linear3.bias"]
    path = tmp_path / "partial.npz"
    np.savez(path, allow_pickle=False, **state)
    with pytest.raises(RuntimeError, match=r"missing key 'linear3\.bias'"):
        checkpoint.load_checkpoint(model, path)


def test_checkpoint_that_needs_pickle_is_refused(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    state: dict[str, object] = dict(model.state_dict())
    state["linear1.bias"] = np.array([{"not": "an array"}], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, allow_pickle=True, **state)  # type: ignore[arg-type]  # an object array, on purpose
    with pytest.raises(ValueError, match="allow_pickle"):
        checkpoint.load_checkpoint(model, path)


def npy_bytes(array: npt.NDArray[np.generic]) -> bytes:
    """``array`` as the bytes of an ``.npy`` file, as ``np.savez`` stores each member."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    """The header alone of an ``.npy`` file of ``shape`` and ``dtype``."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


ZipMember = tuple[str, int, bytes, int, int]  # name, method, stored bytes, CRC, inflated size


def stored(name: str, content: bytes) -> ZipMember:
    return (name, zipfile.ZIP_STORED, content, zlib.crc32(content), len(content))


def write_zip(path: Path, members: list[ZipMember]) -> None:
    """A zip archive written byte by byte, so a member's data can be anything we like."""
    body, directory = bytearray(), bytearray()
    date = (1 << 5) | 1  # 1 January 1980
    for name, method, content, crc, size in members:
        encoded = name.encode()
        fields = (0, method, 0, date, crc, len(content), size, len(encoded))
        # central directory: no extra field, comment or attributes; the local header's offset
        directory += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, *fields, 0, 0, 0, 0, 0, len(body)
        )
        directory += encoded
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, *fields, 0) + encoded + content
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    path.write_bytes(bytes(body + directory + end))


GIB = 1 << 30


def inflating_member(name: str, header: bytes) -> ZipMember:
    """A deflated member of about 1 MB that inflates to ``header`` and 1 GiB of zeros.

    Built from one compressed MiB of zeros repeated: each piece ends in a full flush
    (byte-aligned, no reference to earlier data), so the pieces join into one valid
    stream. Its CRC is left 0: the member must be refused before anything reads it.
    """
    start = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = (
        start.compress(header)
        + start.flush(zlib.Z_FULL_FLUSH)
        + (piece.compress(bytes(1 << 20)) + piece.flush(zlib.Z_FULL_FLUSH)) * 1024
        + zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # the final, empty block
    )
    return (name, zipfile.ZIP_DEFLATED, data, 0, len(header) + GIB)


def checkpoint_members(model: Module) -> list[ZipMember]:
    return [stored(f"{name}.npy", npy_bytes(value)) for name, value in model.state_dict().items()]


def test_the_hand_written_zip_is_a_checkpoint(tmp_path: Path) -> None:
    """The helpers above write what ``np.savez`` writes: it loads like a saved model."""
    source, target = MLP(rng=np.random.default_rng(1)), MLP(rng=np.random.default_rng(2))
    path = tmp_path / "by_hand.npz"
    write_zip(path, checkpoint_members(source))
    checkpoint.load_checkpoint(target, path)
    for name, value in target.state_dict().items():
        assert_array_equal(value, source.state_dict()[name], err_msg=name)


def test_a_compressed_or_fortran_ordered_checkpoint_loads_too(tmp_path: Path) -> None:
    source, target = MLP(rng=np.random.default_rng(1)), MLP(rng=np.random.default_rng(2))
    state = {name: np.asfortranarray(value) for name, value in source.state_dict().items()}
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, allow_pickle=False, **state)
    checkpoint.load_checkpoint(target, path)
    for name, value in target.state_dict().items():
        assert_array_equal(value, source.state_dict()[name], err_msg=name)


def test_an_inflating_member_is_refused_before_it_is_read(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    before = model.state_dict()
    path = tmp_path / "bomb.npz"
    extra = inflating_member("extra.npy", npy_header((GIB // 8,), "<f8"))
    write_zip(path, [*checkpoint_members(MLP(rng=np.random.default_rng(1))), extra])
    assert path.stat().st_size < 2 * 2**20

    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match=r"unexpected key 'extra'"):
            checkpoint.load_checkpoint(model, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak} bytes allocated"
    for name, value in model.state_dict().items():
        assert_array_equal(value, before[name], err_msg=name)


def test_a_parameter_member_larger_than_its_header_is_refused_unread(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    members = checkpoint_members(model)
    members[-1] = inflating_member("linear3.bias.npy", npy_header((10,), "<f4"))
    path = tmp_path / "bomb.npz"
    write_zip(path, members)
    tracemalloc.start()
    try:
        with pytest.raises(
            checkpoint.CheckpointError,
            match=r"'linear3\.bias\.npy' is 1073741952 bytes, but its header",
        ):
            checkpoint.load_checkpoint(model, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak} bytes allocated"


def test_a_header_declaring_an_absurd_shape_is_refused_naming_it(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    members = checkpoint_members(model)
    members[0] = stored("linear1.weight.npy", npy_header((10**9, 10**9), "<f4") + bytes(16))
    path = tmp_path / "absurd.npz"
    write_zip(path, members)
    with pytest.raises(
        RuntimeError,
        match=r"shape mismatch for 'linear1\.weight': the checkpoint has shape "
        r"\(1000000000, 1000000000\), the model's has shape \(64, 784\)",
    ):
        checkpoint.load_checkpoint(model, path)


@pytest.mark.parametrize("dtype", ["<i4", "|b1", "<c16", "<U3", "<M8[D]"])
def test_a_checkpoint_of_non_float_values_is_refused_naming_them(
    tmp_path: Path, dtype: str
) -> None:
    model = MLP(rng=np.random.default_rng(0))
    state = model.state_dict()
    state["linear3.bias"] = np.zeros(10, dtype=dtype)
    path = tmp_path / "typed.npz"
    np.savez(path, allow_pickle=False, **state)
    with pytest.raises(RuntimeError, match=r"dtype mismatch for 'linear3\.bias'"):
        checkpoint.load_checkpoint(model, path)


def test_a_checkpoint_with_nan_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    before = model.state_dict()
    state = MLP(rng=np.random.default_rng(1)).state_dict()
    state["linear3.bias"][4] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, allow_pickle=False, **state)
    with pytest.raises(RuntimeError, match=r"non-finite values for 'linear3\.bias': 1 of 10"):
        checkpoint.load_checkpoint(model, path)
    for name, value in model.state_dict().items():
        assert_array_equal(value, before[name], err_msg=name)


BAD_FILES = {
    "empty": (b"", r"is empty, not an \.npz checkpoint"),
    "pickle": (pickle.dumps({"linear1.weight": [1.0]}), r"is not an \.npz checkpoint"),
    "text": (b"not an archive", r"is not an \.npz checkpoint"),
    "npy": (npy_bytes(np.zeros(3)), r"holds a single \.npy array, not an \.npz archive"),
    "truncated zip": (b"PK\x03\x04" + bytes(40), r"is not an \.npz checkpoint"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_file_that_is_no_checkpoint_is_refused_saying_why(tmp_path: Path, kind: str) -> None:
    content, pattern = BAD_FILES[kind]
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match=pattern):
        checkpoint.load_checkpoint(MLP(rng=np.random.default_rng(0)), path)


def test_a_member_that_is_not_npy_is_refused(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    members = checkpoint_members(model)
    members[2] = stored("linear2.weight.npy", b"hello, world")
    path = tmp_path / "odd.npz"
    write_zip(path, members)
    with pytest.raises(
        checkpoint.CheckpointError, match=r"'linear2\.weight\.npy' is not a plain \.npy"
    ):
        checkpoint.load_checkpoint(model, path)


def test_a_member_whose_data_is_corrupt_is_refused(tmp_path: Path) -> None:
    model = MLP(rng=np.random.default_rng(0))
    members = checkpoint_members(model)
    name, method, data, crc, size = members[1]
    members[1] = (name, method, data[:-4] + b"\xff\xff\xff\xff", crc, size)  # CRC no longer fits
    path = tmp_path / "corrupt.npz"
    write_zip(path, members)
    with pytest.raises(checkpoint.CheckpointError, match=r"damaged or unsupported zip archive"):
        checkpoint.load_checkpoint(model, path)


def test_a_missing_checkpoint_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        checkpoint.load_checkpoint(MLP(rng=np.random.default_rng(0)), tmp_path / "nowhere.npz")


# --------------------------------------------------------------------------- the command


def separable_data(rng: np.random.Generator, n: int) -> tuple[F32, I64]:
    """Normalised-looking (n, 784) inputs whose class is easy to learn."""
    images, labels = synthetic_images(rng, n)
    return data.normalise(images, 0.1307, 0.3081, flatten=True), labels


N_TRAIN, N_TEST = 600, 200


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four IDX files the dataset table accepts as MNIST; no other source."""
    return install_synthetic_mnist(tmp_path, monkeypatch, N_TRAIN, N_TEST)


def run(capsys: pytest.CaptureFixture[str], folder: Path, *options: str) -> tuple[int, str, str]:
    status = train.main(
        ["--data-dir", str(folder), "--epochs", "2", "--batch-size", "32", *options]
    )
    out, err = capsys.readouterr()
    return status, out, err


def test_command_trains_and_writes_the_metrics(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "out" / "metrics.json"
    status, out, err = run(capsys, synthetic, "--metrics-json", str(metrics), "--lr", "0.05")

    assert status == 0, err
    assert f"MNIST: {N_TRAIN} training and {N_TEST} test images" in out
    assert "SGD lr=0.05, batch size 32, 2 epochs, seed 0" in out
    assert "epoch 1/2: train loss" in out
    assert "epoch 2/2: train loss" in out
    assert "test accuracy" in out
    assert "wall time" in out
    document = json.loads(metrics.read_text())
    epochs = document["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for entry in epochs:
        assert set(entry) == {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"}
        assert 0.0 <= entry["test_accuracy"] <= 1.0
        assert entry["seconds"] > 0
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["test_accuracy"] > 0.9  # the synthetic classes are easy
    assert document["final"]["test_accuracy"] == epochs[-1]["test_accuracy"]
    assert document["settings"]["lr"] == 0.05
    assert document["settings"]["batch_size"] == 32
    assert document["wall_seconds"] > 0


def test_command_runs_exactly_the_training_loop(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The saved weights equal one epoch of train_epoch from the same seed: no extra
    # optimizer.step() after evaluation (the exercise's stray step), no other update.
    saved = tmp_path / "model.npz"
    status, _, err = run(capsys, synthetic, "--epochs", "1", "--seed", "3", "--save", str(saved))
    assert status == 0, err

    prepared = train.prepare("mnist", synthetic, None)
    init_rng, shuffle_rng = train.make_generators(3)
    model = MLP(rng=init_rng)
    batches = data.batches(
        prepared.train_images, prepared.train_labels, 32, shuffle=True, rng=shuffle_rng
    )
    train.train_epoch(model, SGD(model.parameters(), lr=0.01), batches)

    with np.load(saved, allow_pickle=False) as archive:
        for name, value in model.state_dict().items():
            assert_array_equal(archive[name], value, err_msg=name)


def test_command_same_seed_same_run_other_seed_differs(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    losses = []
    for seed, name in [(0, "a"), (0, "b"), (1, "c")]:
        path = tmp_path / f"{name}.json"
        status, _, err = run(capsys, synthetic, "--seed", str(seed), "--metrics-json", str(path))
        assert status == 0, err
        losses.append([e["train_loss"] for e in json.loads(path.read_text())["epochs"]])
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_command_plot_writes_a_png(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "curves.png"
    status, out, err = run(capsys, synthetic, "--plot", str(plot))
    assert status == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000
    assert f"wrote the plot to {plot}" in out


def test_command_save_then_resume_gives_the_same_evaluation(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved, first, second = tmp_path / "m.npz", tmp_path / "1.json", tmp_path / "2.json"
    status, _, err = run(capsys, synthetic, "--save", str(saved), "--metrics-json", str(first))
    assert status == 0, err
    # Another seed would initialise other weights: the checkpoint must replace them all.
    status, out, err = run(
        capsys,
        synthetic,
        "--epochs",
        "0",
        "--seed",
        "5",
        "--resume",
        str(saved),
        "--metrics-json",
        str(second),
    )
    assert status == 0, err
    assert f"resumed from {saved}" in out
    assert "no training: test loss" in out
    trained, resumed = (json.loads(p.read_text()) for p in (first, second))
    assert resumed["epochs"] == []
    assert resumed["final"] == trained["final"]


def test_command_resume_of_another_shape_fails_naming_the_parameter(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wide.npz"
    np.savez(path, allow_pickle=False, **bigger_first_layer(MLP(rng=np.random.default_rng(0))))
    status, _, err = run(capsys, synthetic, "--resume", str(path))
    assert status == 1
    assert f"error: cannot resume from {path}" in err
    assert "'linear1.weight'" in err


def test_command_resume_of_a_file_that_is_no_checkpoint_fails_clearly(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("not an archive")
    status, _, err = run(capsys, synthetic, "--resume", str(path))
    assert status == 1
    assert f"error: cannot resume from {path}" in err


def write_bad_checkpoint(path: Path, kind: str) -> None:
    """A file ``--resume`` must refuse in one line: see ``test_command_resume_...``."""
    model = MLP(rng=np.random.default_rng(0))
    if kind in BAD_FILES:
        path.write_bytes(BAD_FILES[kind][0])
    elif kind == "absurd shape":
        members = checkpoint_members(model)
        members[0] = stored("linear1.weight.npy", npy_header((10**9, 10**9), "<f4") + bytes(16))
        write_zip(path, members)
    elif kind == "inflating member":
        extra = inflating_member("extra.npy", npy_header((GIB // 8,), "<f8"))
        write_zip(path, [*checkpoint_members(model), extra])
    elif kind == "nan":
        state = model.state_dict()
        state["linear2.bias"][0] = np.nan
        np.savez(path, allow_pickle=False, **state)
    elif kind == "int32":
        state = {k: v.astype(np.int32) for k, v in model.state_dict().items()}
        np.savez(path, allow_pickle=False, **state)
    # "missing": no file at all


@pytest.mark.parametrize(
    "kind", [*BAD_FILES, "absurd shape", "inflating member", "nan", "int32", "missing"]
)
def test_command_resume_of_a_bad_file_fails_in_one_line(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "bad.npz"
    write_bad_checkpoint(path, kind)
    status, out, err = run(capsys, synthetic, "--resume", str(path))
    assert status == 1
    assert err.startswith(f"error: cannot resume from {path}: ")
    assert err.count("\n") == 1, err
    assert "epoch" not in out


def test_command_limit_keeps_the_first_examples(
    synthetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, synthetic, "--limit", "100", "--epochs", "1")
    assert status == 0, err
    assert "MNIST: 100 training and 100 test images" in out
    assert "batch size 32, 1 epoch, seed 0" in out  # one epoch, not "1 epochs"


def test_command_without_data_says_what_was_tried(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run(capsys, empty)
    assert status == 1
    assert "error: could not obtain the MNIST file" in err
    assert "Sources tried, in order" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--epochs", "-1", "--epochs must be at least 0"),
        ("--seed", "-1", "--seed must be at least 0"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--limit", "0", "--limit must be at least 1"),
        ("--lr", "-0.5", "--lr must be a non-negative number"),
        ("--dataset", "cifar", "invalid choice"),
    ],
)
def test_command_rejects_bad_options(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        train.main([option, value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_command_plot_needs_an_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        train.main(["--epochs", "0", "--plot", "x.png"])
    assert info.value.code == 2
    assert "--plot draws curves per epoch" in capsys.readouterr().err


# --------------------------------------------------------------------------- plotting


METRICS = [
    {"train_loss": 0.9, "test_loss": 0.5, "test_accuracy": 0.85, "seconds": 1.0},
    {"train_loss": 0.4, "test_loss": 0.3, "test_accuracy": 0.91, "seconds": 1.0},
]


def test_plot_training_takes_flat_images_and_class_names(tmp_path: Path) -> None:
    images, labels = synthetic_images(np.random.default_rng(0), 7)
    predictions = labels.copy()
    predictions[0] = (labels[0] + 1) % 10
    path = plotting.plot_training(
        METRICS,
        images.reshape(7, 784),
        predictions,
        labels,
        tmp_path / "sub" / "plot.png",
        class_names=[f"class {k}" for k in range(10)],
    )
    assert path == tmp_path / "sub" / "plot.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_training_names_a_missing_metric(tmp_path: Path) -> None:
    images, labels = synthetic_images(np.random.default_rng(0), 3)
    incomplete = [METRICS[0], {"train_loss": 0.4, "test_loss": 0.3}]
    with pytest.raises(ValueError, match="epoch 2 lack test_accuracy"):
        plotting.plot_training(incomplete, images, labels, labels, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    ("metrics", "count", "message"),
    [
        ([], 3, "at least one epoch"),
        (METRICS, 0, "at least one test image"),
    ],
)
def test_plot_training_needs_epochs_and_images(
    tmp_path: Path, metrics: list[dict[str, float]], count: int, message: str
) -> None:
    images, labels = synthetic_images(np.random.default_rng(0), count)
    with pytest.raises(ValueError, match=message):
        plotting.plot_training(metrics, images, labels, labels, tmp_path / "p.png")


def test_plot_training_rejects_mismatched_lengths(tmp_path: Path) -> None:
    images, labels = synthetic_images(np.random.default_rng(0), 5)
    with pytest.raises(ValueError, match="same length, got 5, 4 and 5"):
        plotting.plot_training(METRICS, images, labels[:4], labels, tmp_path / "p.png")


# --------------------------------------------------------------------------- real MNIST


def real_mnist() -> data.Dataset:
    folder = real_mnist_folder(REAL_MNIST_DIR.parent)
    return data.load_dataset("mnist", folder, download=False, sources=[])


def test_training_on_a_slice_of_real_mnist_learns() -> None:
    ds = real_mnist()
    n = 2000
    images = data.normalise(ds.train_images[:n], ds.mean, ds.std, flatten=True)
    test_images = data.normalise(ds.test_images[:n], ds.mean, ds.std, flatten=True)
    init_rng, shuffle_rng = train.make_generators(0)
    model = MLP(rng=init_rng)
    optimizer = SGD(model.parameters(), lr=0.05)
    before = train.evaluate(model, test_images, ds.test_labels[:n])

    batches = data.batches(images, ds.train_labels[:n], 16, shuffle=True, rng=shuffle_rng)
    train_loss = train.train_epoch(model, optimizer, batches)
    after = train.evaluate(model, test_images, ds.test_labels[:n])

    assert before.accuracy < 0.25  # an untrained model guesses
    assert after.loss < 0.5 * before.loss
    assert train_loss < before.loss
    assert after.accuracy > 0.6  # chance is 0.1; about 0.8 is typical


def test_the_command_runs_as_a_script_on_real_mnist(tmp_path: Path) -> None:
    real_mnist()
    metrics = tmp_path / "metrics.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NPGRAD_DATA": str(REAL_MNIST_DIR.parent),
    }
    script = Path(train.__file__)  # the very command imported above, run as a script
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--limit",
            "1000",
            "--epochs",
            "1",
            "--lr",
            "0.05",
            "--batch-size",
            "16",
            "--metrics-json",
            str(metrics),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "MNIST: 1000 training and 1000 test images" in result.stdout
    assert json.loads(metrics.read_text())["epochs"][0]["test_accuracy"] > 0.5
