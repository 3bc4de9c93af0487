"""Step 13: the worked example, Newton's method with a Hessian from Hessian-vector products.

``steps/13_higher_order/newton.py`` (imported as ``newton``: the step folder is on
the path) fits a small logistic regression by Newton's method and by gradient
descent: Newton reaches the optimum in a handful of steps, gradient descent
needs hundreds; ``--plot`` draws both losses.
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

from npgrad import Tensor
from shared.steps import step_dir
from shared.testing.parity import require_torch

try:
    import newton
except ModuleNotFoundError:
    # A learner's workspace (--impl DIR) holds the npgrad package only.
    sys.path.append(str(step_dir(13)))
    import newton

pytestmark = pytest.mark.step(13)


def test_the_hessian_from_hvps_matches_pytorch() -> None:
    torch = require_torch()
    features, labels = newton.make_data(n=40)
    loss = newton.logistic_loss(features, labels)
    w = np.array([0.3, -0.2, 0.1])
    ours = newton.hessian(loss, w)

    def torch_loss(t: Any) -> Any:
        scores = torch.from_numpy(features) @ t
        logits = torch.stack([torch.zeros_like(scores), scores], dim=1)
        ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels), reduction="sum")
        return ce / len(labels) + (t * t).sum() * (newton.L2 / 2)

    theirs = torch.autograd.functional.hessian(torch_loss, torch.from_numpy(w)).numpy()
    assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert_allclose(ours, ours.T, rtol=1e-12, atol=0)


def test_newton_reaches_the_optimum_in_a_handful_of_steps_where_descent_needs_hundreds() -> None:
    features, labels = newton.make_data()
    loss = newton.logistic_loss(features, labels)
    start = np.zeros(3)
    w_newton, newton_losses = newton.newton(loss, start, steps=6)
    _, slope = newton.gradient(loss, w_newton)
    assert np.linalg.norm(slope) < 1e-12, "six Newton steps reach the optimum"
    best = newton_losses[-1]
    _, descent_losses = newton.gradient_descent(loss, start, steps=300, lr=1.0)
    gaps = np.array(descent_losses) - best
    assert gaps[6] > 1e-2, "after as many steps gradient descent is still far away"
    needed = int(np.argmax(gaps < 1e-8))
    assert needed > 100, f"gradient descent needs hundreds of steps, took {needed}"
    assert loss(Tensor(w_newton)).item() == pytest.approx(best, rel=1e-15, abs=0)


def test_the_command_prints_both_methods_and_writes_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "losses.png"
    assert newton.main(["--steps", "120", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "newton - best" in out
    assert f"wrote the plot to {plot}" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000


def test_the_command_refuses_zero_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        newton.main(["--steps", "0"])
    assert "--steps and --newton-steps must be at least 1" in capsys.readouterr().err
