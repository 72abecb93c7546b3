"""Bilinear resampling of NHWC images at arbitrary pixel positions, zeros outside.

The semantics of torch.nn.functional.grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False) once its normalized grid is converted to pixel coordinates, written with
tf.gather: the gradient with respect to the images is a scatter-add whose own gradient is a
gather again, so gradients of every order exist (the positions get none: they are constants of
the augmentation).
"""

import tensorflow as tf


def bilinear_sample(images, ix, iy):
    """Samples images [N, Hi, Wi, C] at pixel positions (ix, iy) [N, Ho, Wo] -> [N, Ho, Wo, C].

    Pixel (x, y) holds images[:, y, x] (centres at integer coordinates); positions outside the
    image blend in zeros, as torch's grid_sample with zero padding. The positions may have a
    wider float dtype than the images: they are split into index and fraction in their own.
    """
    shape = tf.shape(images, out_type=tf.int64)  # int64: N * Hi * Wi may pass 2^31
    batch, height, width = shape[0], shape[1], shape[2]
    channels = images.shape[-1]
    flat = tf.reshape(images, [-1, channels])  # [N * Hi * Wi, C]
    offset = tf.reshape(tf.range(batch) * (height * width), [-1, 1, 1])  # first pixel of each image
    # Outside [-1, size] both neighbours are outside the image: clipping there keeps the
    # result (zero weights) and the integer casts below in range.
    ix = tf.clip_by_value(ix, -1.0, tf.cast(width, ix.dtype))
    iy = tf.clip_by_value(iy, -1.0, tf.cast(height, iy.dtype))
    x0, y0 = tf.floor(ix), tf.floor(iy)
    fx, fy = tf.cast(ix - x0, images.dtype), tf.cast(iy - y0, images.dtype)
    x0, y0 = tf.cast(x0, tf.int64), tf.cast(y0, tf.int64)
    result = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            x, y = x0 + dx, y0 + dy
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            index = offset + tf.where(inside, y * width + x, tf.zeros_like(x))
            weight = tf.where(inside, wx * wy, 0)[..., tf.newaxis]
            result += weight * tf.gather(flat, index)
    return result
