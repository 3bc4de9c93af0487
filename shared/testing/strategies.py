"""Hypothesis strategies shared by the whole suite.

Inputs stay away from kinks (log near 0, relu at 0, ties in maximum) unless a
test is about the kink, so central differences are a fair reference.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Arr = npt.NDArray[Any]
Shape = tuple[int, ...]

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def float_arrays(
    shape: Shape | st.SearchStrategy[Shape],
    *,
    min_value: float = -3.0,
    max_value: float = 3.0,
) -> st.SearchStrategy[Arr]:
    """float64 arrays of ``shape`` with finite values in ``[min_value, max_value]``."""
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, shape, elements=elements)


def positive_arrays(shape: Shape | st.SearchStrategy[Shape]) -> st.SearchStrategy[Arr]:
    """float64 arrays in ``[0.5, 4]``: safely inside the domain of log and division."""
    return float_arrays(shape, min_value=0.5, max_value=4.0)


@st.composite
def broadcastable_shape_pairs(draw: st.DrawFn, max_dims: int = 3) -> tuple[Shape, Shape]:
    """Two shapes that broadcast together, with prepended and size-1 dimensions."""
    drawn = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=max_dims, max_side=4)
    )
    first, second = drawn.input_shapes
    return first, second


@st.composite
def broadcast_to_shape_pairs(draw: st.DrawFn, max_dims: int = 3) -> tuple[Shape, Shape]:
    """``(original, broadcasted)``: ``original`` broadcasts to ``broadcasted``."""
    original = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=4))
    extra = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    stretched = tuple(draw(st.integers(1, 4)) if side == 1 else side for side in original)
    return original, extra + stretched


def nonzero_arrays(
    shape: Shape | st.SearchStrategy[Shape], *, min_magnitude: float = 0.1, max_value: float = 3.0
) -> st.SearchStrategy[Arr]:
    """float64 arrays whose values lie in ``[min_magnitude, max_value]`` in size, either sign.

    Away from relu's kink at 0, so central differences are a fair reference.
    """
    magnitudes = st.floats(min_magnitude, max_value, allow_nan=False, allow_infinity=False)
    elements = st.one_of(magnitudes, magnitudes.map(lambda value: -value))
    return hnp.arrays(np.float64, shape, elements=elements)


def grid_arrays(
    shape: Shape | st.SearchStrategy[Shape], *, offset: float
) -> st.SearchStrategy[Arr]:
    """float64 arrays of values ``k / 2 + offset`` for integers ``k`` in ``[-6, 6]``.

    Two arrays drawn with offsets 0 and 0.25 never tie anywhere (every pair
    differs by at least 0.25): inputs for ``maximum`` away from its kink. With
    equal offsets ties are frequent, for tests about the kink.
    """
    elements = st.integers(-6, 6).map(lambda k: k / 2 + offset)
    return hnp.arrays(np.float64, shape, elements=elements)
