"""Sliding windows over images: the sizes and checks of convolution and pooling, pooling's views.

Images are (N, C, H, W): batch, channels, height, width. A kernel of size
(kh, kw) slides over the (zero-)padded image with a stride (sh, sw); each
position is a window. ``window_view`` sees every window at once as a strided view
(no copy, no loop), and ``add_windows`` is its adjoint: it sends each window's
gradient back to the pixels the window came from, summing where windows
overlap. Pooling reads them; convolution keeps its own channels-last
versions of both (``ops/conv.py``), laid out for its matrix product.
"""

import numpy as np

from npgrad.arrays import Arr

Pair = tuple[int, int]


def as_pair(value: int | tuple[int, int], name: str = "size") -> Pair:
    """``3`` as ``(3, 3)``; a pair stays as it is (height first, then width).

    ``name`` names the argument in errors: anything but an int or a pair of ints
    raises ``TypeError``, a tuple or list of another length ``ValueError``.
    """
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (height, width), got {value!r} of length "
                f"{len(value)}; for the same value in both directions pass one int"
            )
        height, width = (_index(item, name, value) for item in value)
        return height, width
    size = _index(value, name, value)
    return size, size


def _index(item: object, name: str, value: object) -> int:
    """``item`` as an int (a NumPy integer too; not a bool or a float), or ``TypeError``."""
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        return int(item)
    raise TypeError(f"{name} must be an int or a pair (height, width) of ints, got {value!r}")


def check_images(name: str, x: Arr) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"{name} needs a batch of images of shape (N, C, H, W), got shape {x.shape}; "
            "add the missing dimensions first (one image: x.reshape(1, C, H, W))"
        )


def conv_output_size(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Pair:
    """(OH, OW): how many windows fit down and across the padded image."""
    return (
        (x.shape[2] + 2 * padding[0] - kernel_size[0]) // stride[0] + 1,
        (x.shape[3] + 2 * padding[1] - kernel_size[1]) // stride[1] + 1,
    )


def check_window(name: str, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> None:
    """Raise ``ValueError`` unless the kernel fits the padded image with positive sizes."""
    check_images(name, x)
    if min(*kernel_size, *stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"{name} needs kernel sizes and strides of at least 1 and padding of at least 0, "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}"
        )
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if padded[0] < kernel_size[0] or padded[1] < kernel_size[1]:
        raise ValueError(
            f"{name}: the kernel {kernel_size} is larger than the padded image {padded} "
            f"(input of shape {x.shape} with padding {padding})"
        )


def window_view(
    x: Arr, kernel_size: Pair, stride: Pair, padding: Pair, pad_value: float = 0.0
) -> Arr:
    """Every ``kernel_size`` window of ``x`` padded by ``padding``, as a strided view.

    Window ``(h, w)`` starts at row ``h * sh`` and column ``w * sw`` of the padded
    image. Nothing is copied except the padding (``np.pad``, when ``padding`` is not
    zero): ``sliding_window_view`` makes a view with one window per pixel, and the
    stride is a slice of it. ``pad_value`` fills the border (``-inf`` for max pooling).
    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW, kh, kw), read-only, where
    ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise ``OW``.
    """
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    every_window = np.lib.stride_tricks.sliding_window_view(x, kernel_size, axis=(2, 3))
    return every_window[:, :, :: stride[0], :: stride[1]]


def reduce_windows(windows: Arr, combine: np.ufunc) -> Arr:
    """Each window combined into one value, shape (N, C, OH, OW): ``np.maximum`` or ``np.add``.

    A loop over the kh * kw offsets inside a kernel, each one a vectorised
    ``combine`` over every window at once: many times faster than NumPy's ``max``
    or ``sum`` over the two tiny last axes of a strided view.
    """
    kh, kw = windows.shape[-2:]
    result = windows[..., 0, 0].copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                combine(result, windows[..., i, j], out=result)
    return result


def add_windows(grad_windows: Arr, x_shape: tuple[int, ...], stride: Pair, padding: Pair) -> Arr:
    """The adjoint of ``window_view``: each window's gradient added back where it came from.

    A pixel that lies in several windows (the stride is smaller than the kernel)
    receives the sum of their gradients. The loop runs over the kh * kw offsets
    inside a kernel, never over pixels: offset ``(i, j)`` of every window at once is
    one strided slice of the padded image, so each iteration is one vectorised add.
    The padding's gradient is dropped at the end.
    Shapes: ``grad_windows`` (N, C, OH, OW, kh, kw); ``x_shape`` (N, C, H, W), the
    shape of the result.
    """
    n, c, oh, ow, kh, kw = grad_windows.shape
    (sh, sw), (ph, pw) = stride, padding
    height, width = x_shape[2], x_shape[3]
    grad = np.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += grad_windows[..., i, j]
    return grad[:, :, ph : ph + height, pw : pw + width]
