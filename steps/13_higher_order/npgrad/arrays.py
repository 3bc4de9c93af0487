"""The array type shared by every module of the package."""

from typing import Any, TypeAlias

import numpy.typing as npt

# Any dtype: tensors may hold integers or booleans as well as floats.
Arr: TypeAlias = npt.NDArray[Any]
