"""The largest relative error of each operation's Hessian-vector product against PyTorch.

``python3 -m shared.tools.hvp_report [--step 13] [--seeds 5]`` runs every case of
``tests/test_13_hvp.py`` against the step's package (one process: the step is put
first on ``sys.path``) for several seeds and prints one row per operation: the
largest relative error (largest absolute difference over the largest reference
value) of its first gradients and of its Hessian-vector products.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from shared.bench.packages import load_folder
from shared.steps import step_dir
from shared.testing.gradcheck_cases import load_test_module


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--step", type=int, default=13, help="the step to measure (13 or later)")
    parser.add_argument("--seeds", type=int, default=5, help="random inputs per operation")
    args = parser.parse_args(argv)
    try:
        load_folder(step_dir(args.step))
    except ImportError as error:
        parser.error(f"{error}; run the report in a fresh interpreter")
    module = load_test_module("test_13_hvp.py")
    print(f"{'operation':<22}{'first gradient':>16}{'HVP':>12}   ({args.seeds} seeds, float64)")
    for case in module.CASES:
        errors = [module.hvp_errors(case, seed) for seed in range(args.seeds)]
        first = max(error[0] for error in errors)
        second = max(error[1] for error in errors)
        print(f"{case.name:<22}{first:>16.1e}{second:>12.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
