"""Undoing broadcasting in a gradient: what every binary operation's backward needs."""

from npgrad.arrays import Arr


def unbroadcast(broadcasted: Arr, original: Arr) -> Arr:
    """Sum ``broadcasted`` back down to the shape of ``original``.

    Broadcasting copies an input along the dimensions it was stretched over, so
    the gradient of that input is the sum over those dimensions: first the
    dimensions NumPy prepended, then (keeping them) each dimension where
    ``original`` has size 1 and ``broadcasted`` does not.
    Shapes: ``original`` must broadcast to ``broadcasted.shape``; the result has
    ``original.shape``.
    """
    if broadcasted.shape == original.shape:
        return broadcasted  # nothing was broadcast, the usual case: skip the search
    n_prepended = broadcasted.ndim - original.ndim
    if n_prepended < 0:
        raise ValueError(
            f"cannot unbroadcast shape {broadcasted.shape} to {original.shape}: "
            "the gradient has fewer dimensions than the input it belongs to"
        )
    if n_prepended > 0:
        broadcasted = broadcasted.sum(axis=tuple(range(n_prepended)))
    stretched = tuple(
        axis
        for axis, (before, after) in enumerate(zip(original.shape, broadcasted.shape, strict=True))
        if before == 1 and after != 1
    )
    if stretched:
        broadcasted = broadcasted.sum(axis=stretched, keepdims=True)
    if broadcasted.shape != original.shape:
        raise ValueError(
            f"cannot unbroadcast to shape {original.shape}: "
            f"shape {original.shape} does not broadcast to the gradient's shape"
        )
    return broadcasted
