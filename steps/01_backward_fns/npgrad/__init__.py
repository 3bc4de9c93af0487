"""npgrad, step 01: backward functions written and chained by hand."""

from npgrad.arrays import Arr
from npgrad.backward_fns import forward_and_back, log_back, multiply_back0, multiply_back1

__all__ = ["Arr", "forward_and_back", "log_back", "multiply_back0", "multiply_back1"]
