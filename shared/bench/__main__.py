"""``python -m shared.bench``: one BLAS thread unless told otherwise, then the benchmark.

The thread variables must be set before NumPy is first imported, so they come before the
import of :mod:`shared.bench.cli` (which imports NumPy).
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from shared.bench.cli import main  # noqa: E402  (after the thread settings, on purpose)

raise SystemExit(main())
