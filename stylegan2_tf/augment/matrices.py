"""Batched homogeneous transformation matrices of the augmentation pipeline.

Each builder takes per-image parameters, tensors [N] (or Python numbers, broadcast), and
returns [N, 3, 3] (2-D) or [N, 4, 4] (3-D, colour space) matrices with the conventions of
stylegan2-ada-pytorch `training/augment.py`. `matmul` multiplies with broadcast products
and sums, not tf.linalg.matmul, so that GPUs' TF32 matrix units never round the matrices.
"""

import numpy as np
import tensorflow as tf

LUMA_AXIS = np.array([1, 1, 1, 0]) / np.sqrt(3)  # unit vector of the grey axis, homogeneous


def matrix(*rows):
    """Rows of per-image entries (tensors [N] or numbers, at least one tensor) -> [N, R, C]."""
    ref = next(x for row in rows for x in row if isinstance(x, tf.Tensor))
    entries = [x if isinstance(x, tf.Tensor) else tf.fill(tf.shape(ref), tf.constant(x, ref.dtype))
               for row in rows for x in row]
    return tf.reshape(tf.stack(entries, axis=-1), tf.concat([tf.shape(ref), [len(rows), -1]], 0))


def matmul(a, b):
    """a [..., M, K] @ b [..., K, L] with broadcast batch dimensions, elementwise in full precision."""
    return tf.reduce_sum(a[..., :, :, tf.newaxis] * b[..., tf.newaxis, :, :], axis=-2)


def translate2d(tx, ty):
    """Translation by (tx, ty) pixels: [N, 3, 3]."""
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1])


def scale2d(sx, sy):
    """Scaling of x by sx and y by sy: [N, 3, 3]."""
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def rotate2d(theta):
    """Rotation by theta radians (x towards y): [N, 3, 3]."""
    return matrix([tf.cos(theta), tf.sin(-theta), 0], [tf.sin(theta), tf.cos(theta), 0], [0, 0, 1])


def translate3d(tx, ty, tz):
    """Translation of RGB by (tx, ty, tz): [N, 4, 4]."""
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])


def scale3d(sx, sy, sz):
    """Scaling of R, G, B by sx, sy, sz: [N, 4, 4]."""
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])


def rotate3d(v, theta):
    """Rotation by theta radians around the unit axis v (3 numbers): [N, 4, 4] (Rodrigues)."""
    vx, vy, vz = (float(c) for c in v[:3])
    s, c = tf.sin(theta), tf.cos(theta)
    cc = 1 - c
    return matrix(
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1],
    )


def is_identity(m):
    """Per image, whether m [N, K, K] is exactly the identity: bool [N]."""
    eye = tf.eye(tf.shape(m)[-1], dtype=m.dtype)
    return tf.reduce_all(tf.equal(m, eye), axis=[-2, -1])
