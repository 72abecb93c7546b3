"""Colour augmentations: brightness, contrast, luma flip, hue rotation and saturation.

Follows stylegan2-ada-pytorch `training/augment.py` (Karras et al. 2020, appendix B.3): one
homogeneous 4x4 matrix C per image acts on RGB colours, composed (each applied after the
previous) of a brightness offset, a contrast scaling, a Householder reflection about the plane
orthogonal to the luma axis v = (1, 1, 1) / sqrt(3), a rotation around v (hue) and a scaling
orthogonal to v (saturation). Hue and saturation need colour: single-channel images skip them,
and get the mean of C's RGB rows as the reference does.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.augment.draws import gate
from stylegan2_tf.augment.matrices import LUMA_AXIS, matmul, rotate3d, scale3d, translate3d

TRANSFORMS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
_LUMA_PROJECTION = np.outer(LUMA_AXIS, LUMA_AXIS).astype(np.float32)  # v v^T [4, 4]


def color_matrix(draws, options, p, channels):
    """C [N, 4, 4] float32 of the enabled colour transforms, or None if none applies.

    draws: raw draws (draws.py); options: the pipeline's options; p: float32 scalar, the overall
    probability multiplier; channels: 1 or 3 (hue and saturation apply to 3 only).
    """
    factors = []
    if options["brightness"] > 0:
        b = gate(draws, "brightness", options["brightness"] * p,
                 draws["brightness"] * options["brightness_std"], 0)
        factors.append(translate3d(b, b, b))
    if options["contrast"] > 0:
        c = gate(draws, "contrast", options["contrast"] * p,
                 tf.pow(2.0, draws["contrast"] * options["contrast_std"]), 1)
        factors.append(scale3d(c, c, c))
    if options["lumaflip"] > 0:
        i = gate(draws, "lumaflip", options["lumaflip"] * p, tf.floor(draws["lumaflip"] * 2), 0)
        factors.append(tf.eye(4) - 2 * _LUMA_PROJECTION * i[:, tf.newaxis, tf.newaxis])
    if options["hue"] > 0 and channels > 1:
        theta = (draws["hue"] * 2 - 1) * np.pi * options["hue_max"]
        factors.append(rotate3d(LUMA_AXIS, gate(draws, "hue", options["hue"] * p, theta, 0)))
    if options["saturation"] > 0 and channels > 1:
        s = gate(draws, "saturation", options["saturation"] * p,
                 tf.pow(2.0, draws["saturation"] * options["saturation_std"]), 1)
        # v v^T + (I - v v^T) s, written so that s = 1 gives exactly I.
        factors.append(tf.eye(4) + (tf.eye(4) - _LUMA_PROJECTION) * (s - 1)[:, tf.newaxis, tf.newaxis])
    if not factors:
        return None
    c = factors[0]
    for factor in factors[1:]:
        c = matmul(factor, c)
    return c


def apply_color(images, c):
    """images [N, H, W, C] (C = 3 or 1) through colour matrices c [N, 4, 4] of the same dtype.

    RGB: colour' = C[:3, :3] @ colour + C[:3, 3]. Single channel (as the reference):
    x' = x * sum(m[:3]) + m[3] with m the mean of C's first three rows.
    """
    channels = images.shape[-1]
    if channels == 3:  # one batched matmul: its gradients of every order are matmuls too
        shape = tf.shape(images)
        pixels = tf.reshape(images, [shape[0], -1, 3])  # [N, H * W, 3]
        colours = tf.linalg.matmul(pixels, c[:, :3, :3], transpose_b=True) + c[:, tf.newaxis, :3, 3]
        return tf.reshape(colours, shape)
    if channels == 1:
        m = tf.reduce_mean(c[:, :3, :], axis=1)[:, tf.newaxis, tf.newaxis, :]  # [N, 1, 1, 4]
        return images * tf.reduce_sum(m[..., :3], axis=-1, keepdims=True) + m[..., 3:]
    raise ValueError(f"colour augmentations need RGB (3 channels) or L (1 channel) images, got {channels}")
