"""The benchmark harness (``nox -s bench``, or ``python -m shared.bench``).

- :mod:`shared.bench.numpy_mlp`: the step-08 MLP with hand-written gradients, the lower
  bound for any engine on NumPy;
- :mod:`shared.bench.training`: the npgrad, NumPy and PyTorch sides, timing, accuracy and
  memory of training;
- :mod:`shared.bench.micro`: per-op overhead and deep chains (any step from 05 on);
- :mod:`shared.bench.conv`: conv2d against PyTorch and the ResNet's time per epoch (step
  12 on), also runnable alone as ``python -m shared.bench.conv``;
- :mod:`shared.bench.report`: targets, the summary table, JSON and the bar chart;
- :mod:`shared.bench.packages`: importing a step's ``npgrad`` and ``train.py``, and torch;
- :mod:`shared.bench.cli`: the command line that ties them together.

The imports go one way: ``cli`` uses every other module, ``report`` uses ``conv``'s
summary lines, ``conv`` uses ``packages``; no module imports ``cli``.

Nothing here imports ``npgrad`` at module level: the command line imports the selected
step's package once, and the parts receive it as an argument (the conv part of another
step runs in a child process, which imports that step's package).
"""
