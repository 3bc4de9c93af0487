"""Where the step snapshots live, how their folders are named, and how messages show paths."""

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = REPO_ROOT / "steps"
_STEP_FOLDER = re.compile(r"^(\d{2})_[a-z0-9_]+$")

# The lesson whose MLP is the main job: `nox -s train` runs its train.py, and the
# benchmark's targets are about it.
TRAINING_STEP = 8


def step_dirs(steps_dir: Path = STEPS_DIR) -> dict[int, Path]:
    """Every step folder by number, in order: ``{1: steps/01_backward_fns, ...}``."""
    found: dict[int, Path] = {}
    for path in sorted(steps_dir.iterdir()):
        match = _STEP_FOLDER.match(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return found


def step_dir(step: int, steps_dir: Path = STEPS_DIR) -> Path:
    """The folder of one step; a step that does not exist raises ``LookupError``."""
    dirs = step_dirs(steps_dir)
    if step not in dirs:
        known = ", ".join(f"{n:02d}" for n in dirs)
        raise LookupError(f"there is no step {step:02d}; the steps are {known}")
    return dirs[step]


def previous_step_dir(step: int, steps_dir: Path = STEPS_DIR) -> Path | None:
    """The folder of the step before ``step`` (the largest smaller number); None for the first."""
    dirs = step_dirs(steps_dir)
    earlier = [number for number in dirs if number < step]
    return dirs[max(earlier)] if earlier else None


def shown(path: Path) -> str:
    """A path as messages show it: relative to the repository root when it is inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
