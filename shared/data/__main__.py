"""``python -m shared.data [--dataset mnist|fashion-mnist] [--data-dir DIR]``: fill the cache."""

from shared.data.loading import main

raise SystemExit(main())
