"""npgrad, step 02: backward functions that undo broadcasting."""

from npgrad.arrays import Arr
from npgrad.backward_fns import (
    forward_and_back,
    log_back,
    multiply_back0,
    multiply_back1,
    unbroadcast,
)

__all__ = ["Arr", "forward_and_back", "log_back", "multiply_back0", "multiply_back1", "unbroadcast"]
