"""Image-space corruptions: additive RGB noise and cutout.

Follows stylegan2-ada-pytorch `training/augment.py` (Karras et al. 2020, appendix B.5): noise
of standard deviation |N(0, noise_std)| per image, and a cutout rectangle of cutout_size times
the image size (centre uniform over the image) set to zero.
"""

import tensorflow as tf

from stylegan2_tf.augment.draws import gate

TRANSFORMS = ("noise", "cutout")


def add_noise(images, draws, options, p):
    """images [N, H, W, C] plus draws['noise_field'] times the per-image sigma (0 if unselected)."""
    sigma = gate(draws, "noise", options["noise"] * p, tf.abs(draws["noise"]) * options["noise_std"], 0)
    sigma = tf.cast(sigma, images.dtype)[:, tf.newaxis, tf.newaxis, tf.newaxis]
    noisy = images + tf.cast(draws["noise_field"], images.dtype) * sigma
    return tf.where(sigma > 0, noisy, images)


def cutout(images, draws, options, p):
    """images [N, H, W, C] with the selected images' cutout rectangle zeroed.

    The rectangle has the side cutout_size * (W, H) and its centre at draws['cutout_center']
    [N, 2] (x, y, relative to the image size); pixel (x, y) is cut where both
    |(x + 0.5) / W - centre_x| < size / 2 and |(y + 0.5) / H - centre_y| < size / 2.
    """
    size = gate(draws, "cutout", options["cutout"] * p,
                tf.fill(tf.shape(draws["cutout_gate"]), options["cutout_size"]), 0)
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    coord_x = (tf.range(width) + 0.5) / width  # [W]
    coord_y = (tf.range(height) + 0.5) / height  # [H]
    half = size[:, tf.newaxis] / 2
    keep_x = tf.abs(coord_x[tf.newaxis, :] - draws["cutout_center"][:, 0:1]) >= half  # [N, W]
    keep_y = tf.abs(coord_y[tf.newaxis, :] - draws["cutout_center"][:, 1:2]) >= half  # [N, H]
    keep = keep_x[:, tf.newaxis, :] | keep_y[:, :, tf.newaxis]  # [N, H, W]
    return images * tf.cast(keep, images.dtype)[..., tf.newaxis]
