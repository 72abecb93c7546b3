"""Geometric augmentations: pixel blitting and general geometric transformations.

Follows stylegan2-ada-pytorch `training/augment.py` (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data", appendix B.1-B.2): one inverse matrix G_inv per image
maps output pixels to input pixels (centred pixel coordinates), composed of the x-flip, 90 degree
rotations, integer translation, isotropic scaling, pre-rotation, anisotropic scaling,
post-rotation and fractional translation. Every image is resampled the reference's way: reflect
padding of the margin its transformed corners need, 2x upsampling with the sym6 wavelet filter,
bilinear sampling, sym6 downsampling and cropping back to the input size.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.augment.draws import gate
from stylegan2_tf.augment.matrices import matmul, rotate2d, scale2d, translate2d
from stylegan2_tf.ops import bilinear_sample, downsample2d, setup_filter, upsample2d

# Low-pass decomposition filter of the Symlet-6 wavelet (Daubechies, "Ten Lectures on
# Wavelets", 1992; the table of PyWavelets' 'sym6').
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)
GEOM_FILTER = setup_filter(SYM6)  # separable [12], normalized to sum 1
HZ_PAD = len(SYM6) // 4  # border, in input pixels, around the resampled image
TRANSFORMS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")


def inverse_matrix(draws, options, p, width, height):
    """G_inv [N, 3, 3] float32 of the enabled geometric transforms, or None if none is enabled.

    Args:
        draws: raw draws (see draws.py) of the enabled transforms.
        options: the pipeline's options (probability multipliers, ranges).
        p: float32 scalar, the overall probability multiplier.
        width, height: float32 scalars, the image size in pixels.
    """
    factors = []
    if options["xflip"] > 0:
        i = gate(draws, "xflip", options["xflip"] * p, tf.floor(draws["xflip"] * 2), 0)
        factors.append(scale2d(1 / (1 - 2 * i), 1))
    if options["rotate90"] > 0:
        i = gate(draws, "rotate90", options["rotate90"] * p, tf.floor(draws["rotate90"] * 4), 0)
        factors.append(rotate2d(np.pi / 2 * i))
    if options["xint"] > 0:
        t = (draws["xint"] * 2 - 1) * options["xint_max"]
        t = gate(draws, "xint", options["xint"] * p, t, 0)
        factors.append(translate2d(-tf.round(t[:, 0] * width), -tf.round(t[:, 1] * height)))
    if options["scale"] > 0:
        s = tf.pow(2.0, draws["scale"] * options["scale_std"])
        s = gate(draws, "scale", options["scale"] * p, s, 1)
        factors.append(scale2d(1 / s, 1 / s))
    # Pre- and post-rotation each with probability p_rot: P(pre or post) = rotate * p.
    p_rot = 1 - tf.sqrt(tf.clip_by_value(1 - options["rotate"] * p, 0, 1))
    if options["rotate"] > 0:
        theta = (draws["rotate_pre"] * 2 - 1) * np.pi * options["rotate_max"]
        factors.append(rotate2d(gate(draws, "rotate_pre", p_rot, theta, 0)))
    if options["aniso"] > 0:
        s = tf.pow(2.0, draws["aniso"] * options["aniso_std"])
        s = gate(draws, "aniso", options["aniso"] * p, s, 1)
        factors.append(scale2d(1 / s, s))
    if options["rotate"] > 0:
        theta = (draws["rotate_post"] * 2 - 1) * np.pi * options["rotate_max"]
        factors.append(rotate2d(gate(draws, "rotate_post", p_rot, theta, 0)))
    if options["xfrac"] > 0:
        t = gate(draws, "xfrac", options["xfrac"] * p, draws["xfrac"] * options["xfrac_std"], 0)
        factors.append(translate2d(-t[:, 0] * width, -t[:, 1] * height))
    if not factors:
        return None
    g_inv = factors[0]
    for factor in factors[1:]:
        g_inv = matmul(g_inv, factor)
    return g_inv


def _margins(g_inv, width, height):
    """Reflect padding [x0, y0, x1, y1] (int32) that the transformed corners need, as the reference.

    g_inv: [N, 3, 3]; width, height: scalars of g_inv's dtype. The margin is the batch's largest
    overshoot of the corners plus 2 * HZ_PAD pixels, clipped to [0, size - 1].
    """
    cx, cy = (width - 1) / 2, (height - 1) / 2
    one = tf.ones_like(cx)
    corners = tf.stack([tf.stack([-cx, cx, cx, -cx]), tf.stack([-cy, -cy, cy, cy]), tf.stack([one] * 4)])
    points = matmul(g_inv, corners)  # [N, xyz, corner]
    x, y = tf.reshape(points[:, 0], [-1]), tf.reshape(points[:, 1], [-1])
    margin = tf.stack([tf.reduce_max(-x), tf.reduce_max(-y), tf.reduce_max(x), tf.reduce_max(y)])
    margin += tf.stack([2 * HZ_PAD - cx, 2 * HZ_PAD - cy] * 2)
    margin = tf.clip_by_value(margin, 0, tf.stack([width - 1, height - 1] * 2))
    return tf.cast(tf.math.ceil(margin), tf.int32)


def _window(size, start, stop):
    """Float mask [size] of the indices in [start, stop)."""
    index = tf.range(size)
    return tf.cast((index >= start) & (index < stop), tf.float32)


def _mask(images, y_range, x_range):
    """images [N, H, W, C] with zeros outside the rectangle y_range x x_range (start, stop)."""
    shape = tf.shape(images)
    mask = _window(shape[1], *y_range)[:, tf.newaxis] * _window(shape[2], *x_range)[tf.newaxis, :]
    return images * tf.cast(mask, images.dtype)[tf.newaxis, :, :, tf.newaxis]


def _positions(g_inv, height, width, top, left):
    """Input positions (ix, iy) float64 [N, 2 (H + 2 HZ_PAD), 2 (W + 2 HZ_PAD)] of the upsampled grid.

    Pixel j of the upsampled output grid sits at u = (j + 1 - size - 2 HZ_PAD) / 2 in centred input
    pixels; its input g_inv @ u lies at 2 (g_inv @ u) + 2 padding + size - 1 in the upsampled
    padded image (top, left: its padding). float64, as float32 would lose ~1e-5 pixel at
    coordinates of a few hundred pixels.
    """
    def centred(size):
        size = tf.cast(size, tf.float64)
        return (tf.range(2 * (size + 2 * HZ_PAD)) + 1 - size - 2 * HZ_PAD) / 2

    g = tf.cast(g_inv, tf.float64)[:, :2, :, tf.newaxis, tf.newaxis]  # [N, 2, 3, 1, 1]
    position = g[:, :, 0] * centred(width)[tf.newaxis, :] + g[:, :, 1] * centred(height)[:, tf.newaxis]
    position += g[:, :, 2]
    ix = 2 * position[:, 0] + tf.cast(2 * left + width - 1, tf.float64)
    iy = 2 * position[:, 1] + tf.cast(2 * top + height - 1, tf.float64)
    return ix, iy


def transform(images, g_inv, static_shapes=False):
    """Resamples images [N, H, W, C] (float32 or float64) through g_inv [N, 3, 3] (same dtype).

    Output pixel (x, y), in coordinates centred on the image, takes the input at g_inv @ (x, y, 1),
    computed as the reference: reflect padding by the margin of the batch, 2x sym6 upsampling,
    bilinear sampling, sym6 downsampling and crop. Output [N, H, W, C].

    static_shapes: pad by H - 1, W - 1 (the largest margin) and zero what lies beyond the
    batch's margin instead of padding by the margin itself: the same result, with shapes known
    when tracing (XLA), at the cost of resampling a larger image.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    if static_shapes:  # Python ints: XLA slices only by sizes known when compiling
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None:
            raise ValueError(f"static_shapes needs a static image size, got shape {images.shape}")
    margins = _margins(g_inv, tf.cast(width, g_inv.dtype), tf.cast(height, g_inv.dtype))
    mx0, my0, mx1, my1 = tf.unstack(margins)
    if static_shapes:
        top, left = height - 1, width - 1
        padded = tf.pad(images, [[0, 0], [top, top], [left, left], [0, 0]], mode="REFLECT")
        y_range, x_range = (top - my0, top + height + my1), (left - mx0, left + width + mx1)
        padded = _mask(padded, y_range, x_range)
        upsampled = upsample2d(padded, GEOM_FILTER, up=2)
        upsampled = _mask(upsampled, [2 * r for r in y_range], [2 * r for r in x_range])
    else:
        top, left = my0, mx0
        padded = tf.pad(images, [[0, 0], [my0, my1], [mx0, mx1], [0, 0]], mode="REFLECT")
        upsampled = upsample2d(padded, GEOM_FILTER, up=2)

    ix, iy = _positions(g_inv, height, width, top, left)
    sampled = bilinear_sample(upsampled, ix, iy)
    return downsample2d(sampled, GEOM_FILTER, down=2, padding=-2 * HZ_PAD, flip_filter=True)
