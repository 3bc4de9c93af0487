"""Learner and maintainer tooling that works on every step folder, present and future.

- ``shared.tools.source``: the definitions (functions, classes, methods) of a
  step's modules, found with ``ast``, and the text each is compared by;
- ``shared.tools.diff``: the change from one step to the next (``nox -s diff-NN``);
- ``shared.tools.lesson``: a step README's Exercises table and Hints, which
  ``pytest --exercise NAME`` (``nox -s test-NN -- --impl DIR --exercise NAME``)
  and the workspace follow;
- ``shared.tools.exercise``: a learner's workspace with the new code stubbed out
  (``nox -s exercise-NN -- DIR``), and ``--restore NAME`` to put the solution back;
- ``shared.tools.drift``: neighbouring steps agree except where a README says
  otherwise (``nox -s drift``);
- ``shared.tools.propagate``: carries a fix in one step into every later step
  (``nox -s propagate -- NN``).

Nothing here imports ``npgrad``: whatever needs a step's package running
(which functions run while it imports) does so in a subprocess.
"""
