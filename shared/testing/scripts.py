"""A step's command-line script (``train.py``) as a module, for the tests of that step.

``import train`` finds the script when the step folder is on ``sys.path``. A
learner's workspace (``--impl DIR``) holds the package only; there an earlier
step's tests may already have imported that step's ``train.py`` as ``train``, so
:func:`load_step_script` loads the step's own file under a name of its own, on
top of the workspace's ``npgrad``.
"""

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType

from shared.steps import step_dir


def load_step_script(step: int, script: str, accept: Callable[[ModuleType], bool]) -> ModuleType:
    """``import <script>`` when ``accept`` takes that module, else step ``step``'s file.

    The file is loaded as ``<script>_step_NN``. The modules beside it
    (``checkpoint.py``, ``reporting.py``) are that step's too: its folder comes
    first on ``sys.path`` while the file runs, and the modules of those names
    that were imported before are put back after.
    """
    try:
        module = importlib.import_module(script)
    except ModuleNotFoundError:
        pass
    else:
        if accept(module):
            return module
    folder = step_dir(step)
    name = f"{script}_step_{step:02d}"
    spec = importlib.util.spec_from_file_location(name, folder / f"{script}.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded  # dataclasses look their module up while the file runs
    siblings = [path.stem for path in folder.glob("*.py") if path.stem != script]
    saved = {sibling: sys.modules.pop(sibling) for sibling in siblings if sibling in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(loaded)
    finally:
        sys.path.remove(str(folder))
        for sibling in siblings:
            sys.modules.pop(sibling, None)
        sys.modules.update(saved)
    return loaded
