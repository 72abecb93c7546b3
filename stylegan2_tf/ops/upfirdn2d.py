"""Upsample, FIR-filter and downsample NHWC images: the resampling of StyleGAN2.

`upfirdn2d` has a pure-TensorFlow reference (`impl="ref"`, the specification)
and a compiled op (`impl="custom"`, C++ on CPU, CUDA on GPU) with the same
signature. The gradient of upfirdn2d is upfirdn2d again (up and down swapped,
filter flipped, padding recomputed), so gradients of every order exist on both.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.ops import native

_LIBRARY = "_upfirdn2d.so"


def _parse_scaling(scaling, name):
    """int or [x, y] -> (x, y), each an int >= 1."""
    if isinstance(scaling, (int, np.integer)):
        scaling = [scaling, scaling]
    values = list(scaling) if isinstance(scaling, (list, tuple)) else None
    if (
        values is None
        or len(values) != 2
        or not all(isinstance(v, (int, np.integer)) and 1 <= v < 2**31 for v in values)
    ):
        raise ValueError(
            f"upfirdn2d: {name} must be an int in [1, 2**31) or [x, y] of them, got {scaling!r}"
        )
    return int(values[0]), int(values[1])


def _parse_padding(padding):
    """int, [x, y] or [x0, x1, y0, y1] -> (x0, x1, y0, y1) ints; negative crops."""
    if isinstance(padding, (int, np.integer)):
        padding = [padding, padding]
    values = list(padding) if isinstance(padding, (list, tuple)) else None
    if values is None or len(values) not in (2, 4) or not all(
        isinstance(v, (int, np.integer)) and abs(v) < 2**31 for v in values
    ):
        raise ValueError(
            f"upfirdn2d: padding must be an int, [x, y] or [x0, x1, y0, y1] of ints (|p| < 2**31), "
            f"got {padding!r}"
        )
    if len(values) == 2:
        values = [values[0], values[0], values[1], values[1]]
    return tuple(int(v) for v in values)


def _filter_array(f):
    """None, list, np.ndarray or constant tensor -> float32 np.ndarray of rank 1 or 2."""
    if f is None:
        return np.ones([1, 1], dtype=np.float32)
    if isinstance(f, (tf.Tensor, tf.Variable)):
        f = tf.get_static_value(f)
        if f is None:
            raise ValueError("upfirdn2d: the filter must be a constant (numpy array or list)")
    f = np.asarray(f, dtype=np.float32)
    if f.ndim not in (1, 2) or f.size == 0:
        raise ValueError(
            f"upfirdn2d: filter must be a non-empty 1-D (separable) or 2-D array, got shape {f.shape}"
        )
    if not np.all(np.isfinite(f)):
        raise ValueError("upfirdn2d: filter contains non-finite values")
    return f


def filter_size(f):
    """(width, height) of a filter given as None, 1-D or 2-D array."""
    f = _filter_array(f)
    return (f.shape[-1], f.shape[0])


def setup_filter(f, normalize=True, flip_filter=False, gain=1, separable=None):
    """Builds a float32 filter for upfirdn2d.

    Args:
        f: None (identity), a scalar, a 1-D list of taps or a 2-D array.
        normalize: divide by the sum of the taps so the filter keeps the mean.
        flip_filter: flip the filter (pass the same value to upfirdn2d to undo).
        gain: overall gain; a separable filter carries sqrt(gain) per axis.
        separable: keep a 1-D filter separable; None means 1-D filters of >= 8 taps
            stay separable and shorter ones become their 2-D outer product.

    Returns:
        np.ndarray float32 of shape [taps] (separable) or [height, width].
    """
    if f is None:
        f = 1
    f = np.asarray(f, dtype=np.float32)
    if f.ndim == 0:
        f = f[np.newaxis]
    if f.ndim not in (1, 2) or f.size == 0:
        raise ValueError(f"setup_filter: expected a 1-D or 2-D filter, got shape {f.shape}")
    if separable is None:
        separable = f.ndim == 1 and f.size >= 8
    if f.ndim == 1 and not separable:
        f = np.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError(f"setup_filter: a {f.ndim}-D filter cannot be separable={separable}")
    if normalize:
        total = f.sum()
        if total == 0:
            raise ValueError("setup_filter: cannot normalize a filter whose taps sum to 0")
        f = f / total
    if flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return np.ascontiguousarray(f, dtype=np.float32)


def _checked_input(x, name):
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(f"{name}: x must be a rank-4 NHWC tensor, got shape {x.shape}")
    if not x.dtype.is_floating:
        raise TypeError(f"{name}: x must be a floating-point tensor, got {x.dtype.name}")
    return x


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl=None):
    """Pad, upsample, filter and downsample a batch of NHWC images.

    Per spatial axis:
      1. Upsample by inserting `up - 1` zeros after every pixel.
      2. Pad with zeros (negative padding crops).
      3. Convolve with the FIR filter `f` (correlate when `flip_filter`).
      4. Downsample by keeping every `down`-th pixel.

    Args:
        x: float tensor [N, H, W, C] (float16, float32; the reference also float64).
        f: filter as built by `setup_filter`: [taps] (separable), [fh, fw], or None (identity).
        up: int or [x, y] upsampling factor.
        down: int or [x, y] downsampling factor.
        padding: int, [x, y] or [x0, x1, y0, y1], in upsampled pixels.
        flip_filter: correlate instead of convolve.
        gain: overall scaling of the signal magnitude.
        impl: "auto", "ref" (pure TF), "custom" (compiled op), or None (the default): the
            current setting, stylegan2_tf.ops.current_impl().

    Returns:
        [N, out_h, out_w, C], out = (in * up + pad0 + pad1 - taps) // down + 1.
    """
    x = _checked_input(x, "upfirdn2d")
    f = _filter_array(f)
    upx, upy = _parse_scaling(up, "up")
    downx, downy = _parse_scaling(down, "down")
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = f.shape[-1], f.shape[0]
    for axis, size, u, d, p0, p1, taps in (
        ("height", x.shape[1], upy, downy, pady0, pady1, fh),
        ("width", x.shape[2], upx, downx, padx0, padx1, fw),
    ):
        if size is not None and size * u + p0 + p1 < taps:
            raise ValueError(
                f"upfirdn2d: empty output along {axis}: input {size} * up {u} + padding "
                f"{p0} + {p1} is shorter than the filter ({taps} taps)"
            )
    # An unknown H or W is fine along an axis without downsampling (see _grad_padding_end).
    sizes_ok = (x.shape[1] is not None or downy == 1) and (x.shape[2] is not None or downx == 1)
    supported = x.dtype in (tf.float16, tf.float32) and sizes_ok and x.shape[3] is not None
    reason = (f"supports float16/float32 with a static C, and static H, W along axes that "
              f"downsample (got {x.dtype.name}, shape {x.shape}, down {downx}, {downy})")
    if native.use_custom(impl, _LIBRARY, "upfirdn2d", supported, reason):
        return _upfirdn2d_custom(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1,
                                 flip_filter, gain)
    return _upfirdn2d_ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1,
                          flip_filter, gain)


def _upfirdn2d_ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """Pure-TF upfirdn2d: zero insertion, tf.pad / slicing, depthwise convolution."""
    channels = x.shape[3]
    if channels is None:
        raise ValueError("upfirdn2d: the channel dimension of x must be static")
    if channels == 0 or x.shape[0] == 0:  # TF's depthwise conv mishandles empty tensors
        out_h = (tf.shape(x)[1] * upy + pady0 + pady1 - f.shape[0]) // downy + 1
        out_w = (tf.shape(x)[2] * upx + padx0 + padx1 - f.shape[-1]) // downx + 1
        return tf.zeros([tf.shape(x)[0], out_h, out_w, channels], dtype=x.dtype)
    shape = tf.shape(x)
    batch, in_h, in_w = shape[0], shape[1], shape[2]  # explicit: -1 is ambiguous for 0 elements

    # 1. Upsample: [N, H, 1, W, 1, C] padded with zeros -> [N, H * upy, W * upx, C].
    if upx > 1 or upy > 1:
        x = tf.reshape(x, [batch, in_h, 1, in_w, 1, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, upy - 1], [0, 0], [0, upx - 1], [0, 0]])
        x = tf.reshape(x, [batch, in_h * upy, in_w * upx, channels])

    # 2. Pad, then crop for negative padding.
    x = tf.pad(x, [[0, 0], [max(pady0, 0), max(pady1, 0)], [max(padx0, 0), max(padx1, 0)], [0, 0]])
    if min(padx0, padx1, pady0, pady1) < 0:
        padded = tf.shape(x)
        x = x[:, max(-pady0, 0) : padded[1] - max(-pady1, 0), max(-padx0, 0) : padded[2] - max(-padx1, 0), :]

    # 3. Filter: convolution = correlation with the flipped filter; one depthwise
    # conv (2-D filter) or two (separable). 4. Downsample through the strides.
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))

    def depthwise(x, taps, stride_y, stride_x):  # taps: [fh, fw]
        kernel = tf.constant(np.tile(taps[:, :, np.newaxis, np.newaxis], [1, 1, channels, 1]), dtype=x.dtype)
        strides = [1, stride_y, stride_x, 1] if stride_x == stride_y else [1, 1, 1, 1]
        y = tf.nn.depthwise_conv2d(x, kernel, strides=strides, padding="VALID")
        if stride_x != stride_y:
            y = y[:, ::stride_y, ::stride_x, :]
        return y

    if f.ndim == 2:
        return depthwise(x, f, downy, downx)
    x = depthwise(x, f[np.newaxis, :], 1, downx)
    return depthwise(x, f[:, np.newaxis], downy, 1)


# Below this many channels a rank-one 2-D filter runs as two 1-D passes: the 2-D kernel
# vectorizes over channels, both passes over whole rows (measured on RGB: 1.6x faster, before
# the horizontal pass got its whole-row loop). The same bound as kUpfirdn2dFewChannels, which
# picks that loop, in custom_ops/upfirdn2d/upfirdn2d_kernel.h.
_FEW_CHANNELS = 8


def _rank_one_factors(f):
    """(column, row) taps with f = outer(column, row) for a rank-one 2-D filter, else None."""
    u, s, vt = np.linalg.svd(f.astype(np.float64))
    column, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    if np.max(np.abs(np.outer(column, row) - f)) > 1e-7 * np.max(np.abs(f)):
        return None
    return column.astype(np.float32), row.astype(np.float32)


def _upfirdn2d_custom(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """Compiled upfirdn2d; a separable filter (or a rank-one 2-D one on few channels) runs as a
    horizontal then a vertical pass."""
    factors = (f, f) if f.ndim == 1 else None
    if f.ndim == 2 and x.shape[3] < _FEW_CHANNELS and min(f.shape) > 1:
        factors = _rank_one_factors(f)
    if factors is None:
        return _upfirdn2d_pass(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1,
                               flip_filter, gain)
    column, row = factors
    axis_gain = float(np.sqrt(gain))
    x = _upfirdn2d_pass(x, row[np.newaxis, :], upx, 1, downx, 1, padx0, padx1, 0, 0,
                        flip_filter, axis_gain)
    return _upfirdn2d_pass(x, column[:, np.newaxis], 1, upy, 1, downy, 0, 0, pady0, pady1,
                           flip_filter, axis_gain)


def _upfirdn2d_pass(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    """One StyleGAN2>Upfirdn2d op with a 2-D filter [fh, fw]."""
    return _upfirdn2d_op(
        x, tf.constant(f, dtype=tf.float32),
        up_x=upx, up_y=upy, down_x=downx, down_y=downy,
        pad_x0=padx0, pad_x1=padx1, pad_y0=pady0, pad_y1=pady1,
        flip_filter=bool(flip_filter), gain=float(gain),
    )


def _grad_padding_end(in_size, out_size, up, down, pad0, pad1, taps):
    """Trailing padding of the gradient op along one axis: its output must be the input size.

    With both sizes known: in * up - out * down + pad0 - up + 1. With either unknown the op
    was allowed only without downsampling, or is itself the gradient of an op that upsamples
    by `down` (its length in * up + pad0 + pad1 - taps is then a multiple of down): both
    reduce to taps - pad1 - down - up + 1, which needs no size.
    """
    if in_size is not None and out_size is not None:
        return in_size * up - out_size * down + pad0 - up + 1
    return taps - pad1 - down - up + 1


@tf.RegisterGradient("StyleGAN2>Upfirdn2d")
def _upfirdn2d_grad(op, dy):
    """dx = upfirdn2d(dy) with up and down swapped, the filter flipped, padding recomputed."""
    attr = op.get_attr
    upx, upy, downx, downy = attr("up_x"), attr("up_y"), attr("down_x"), attr("down_y")
    padx0, pady0 = attr("pad_x0"), attr("pad_y0")
    x, f = op.inputs
    fh, fw = f.shape
    dx = _upfirdn2d_op(
        dy, f,
        up_x=downx, up_y=downy, down_x=upx, down_y=upy,
        pad_x0=fw - padx0 - 1,
        pad_x1=_grad_padding_end(x.shape[2], op.outputs[0].shape[2], upx, downx, padx0,
                                 attr("pad_x1"), fw),
        pad_y0=fh - pady0 - 1,
        pad_y1=_grad_padding_end(x.shape[1], op.outputs[0].shape[1], upy, downy, pady0,
                                 attr("pad_y1"), fh),
        flip_filter=not attr("flip_filter"),
        gain=attr("gain"),
    )
    return dx, None


def _upfirdn2d_op(x, f, **attrs):
    """The compiled StyleGAN2>Upfirdn2d op; `attrs` as registered in upfirdn2d_op.cc."""
    return native.load_library(_LIBRARY).style_gan2_upfirdn2d(x, f, **attrs)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl=None):
    """Filters NHWC images with `f`, padded so the output keeps the input size (plus `padding`)."""
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Upsamples NHWC images by `up` with the FIR filter `f`: [N, H*upy, W*upx, C] for padding 0."""
    upx, upy = _parse_scaling(up, "up")
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = filter_size(f)
    p = [
        padx0 + (fw + upx - 1) // 2,
        padx1 + (fw - upx) // 2,
        pady0 + (fh + upy - 1) // 2,
        pady1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter,
                     gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl=None):
    """Downsamples NHWC images by `down` with the FIR filter `f`: [N, H//downy, W//downx, C]."""
    downx, downy = _parse_scaling(down, "down")
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = filter_size(f)
    p = [
        padx0 + (fw - downx + 1) // 2,
        padx1 + (fw - downx) // 2,
        pady0 + (fh - downy + 1) // 2,
        pady1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter,
                     gain=gain, impl=impl)
