"""bilinear_sample: bilinear resampling of NHWC images at arbitrary pixel positions, zeros outside.

The semantics of torch.nn.functional.grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False) once its normalized grid is converted to pixel coordinates: what the
geometric augmentations of StyleGAN2-ADA resample with. The compiled op samples in one pass
and its gradient with respect to the images is a second op (the adjoint: a scatter-add with the
same weights) whose own gradient is the sampling again, so gradients of every order exist. The
reference is written with tf.gather, whose gradient (a segment sum) is differentiable again.
The positions get no gradient: they are constants of the augmentation.
"""

import tensorflow as tf

from stylegan2_tf.ops import native

_LIBRARY = "_bilinear_sample.so"
_CUSTOM_DTYPES = (tf.float32, tf.float64)


def bilinear_sample(images, ix, iy, impl=None):
    """Samples images [N, Hi, Wi, C] at pixel positions (ix, iy) [N, Ho, Wo] -> [N, Ho, Wo, C].

    Pixel (x, y) holds images[:, y, x] (centres at integer coordinates); a position blends its
    four neighbouring pixels, those outside the image counting as zeros. The positions may have
    a wider float dtype than the images (float64 positions keep 1e-5 pixel at coordinates of a
    few thousand): they are split into index and fraction in their own dtype.

    Args:
        images: float tensor [N, Hi, Wi, C] (the compiled op: float32 or float64).
        ix, iy: float tensors [N, Ho, Wo] of the same dtype, in pixels.
        impl: "auto", "ref", "custom" or None (the current setting, see stylegan2_tf.ops).
    """
    images, ix, iy = tf.convert_to_tensor(images), tf.convert_to_tensor(ix), tf.convert_to_tensor(iy)
    if images.shape.rank != 4 or not images.dtype.is_floating:
        raise ValueError(f"bilinear_sample: images must be a float [N, H, W, C] tensor, got "
                         f"{images.dtype.name} {images.shape}")
    if ix.shape.rank != 3 or ix.dtype != iy.dtype or not ix.dtype.is_floating or \
            not ix.shape.is_compatible_with(iy.shape):
        raise ValueError(f"bilinear_sample: ix and iy must be float [N, Ho, Wo] tensors of one "
                         f"dtype and shape, got {ix.dtype.name} {ix.shape} and {iy.dtype.name} {iy.shape}")
    supported = images.dtype in _CUSTOM_DTYPES and ix.dtype in _CUSTOM_DTYPES
    reason = f"supports float32/float64 images and positions (got {images.dtype.name}, {ix.dtype.name})"
    if native.use_custom(impl, _LIBRARY, "bilinear_sample", supported, reason):
        return _library().style_gan2_bilinear_sample(images, ix, iy)
    return _bilinear_sample_ref(images, ix, iy)


def _library():
    return native.load_library(_LIBRARY)


@tf.RegisterGradient("StyleGAN2>BilinearSample")
def _bilinear_sample_grad(op, dy):
    """d images = the adjoint applied to dy; the positions get none."""
    images, ix, iy = op.inputs
    image_size = tf.shape(images, out_type=tf.int32)[1:3]
    return _library().style_gan2_bilinear_sample_adjoint(dy, ix, iy, image_size), None, None


@tf.RegisterGradient("StyleGAN2>BilinearSampleAdjoint")
def _bilinear_sample_adjoint_grad(op, ddx):
    """The adjoint is linear in dy with the sampling as its transpose."""
    _, ix, iy, _ = op.inputs
    return _library().style_gan2_bilinear_sample(ddx, ix, iy), None, None, None


def _bilinear_sample_ref(images, ix, iy):
    """Pure-TF bilinear_sample: four gathers from the flattened batch."""
    shape = tf.shape(images, out_type=tf.int64)  # int64: N * Hi * Wi may pass 2^31
    batch, height, width = shape[0], shape[1], shape[2]
    channels = images.shape[-1]
    flat = tf.reshape(images, [-1, channels])  # [N * Hi * Wi, C]
    offset = tf.reshape(tf.range(batch) * (height * width), [-1, 1, 1])  # first pixel of each image
    # Outside [-1, size] both neighbours are outside the image: clipping there keeps the
    # result (zero weights) and the integer casts below in range. No gradient to the
    # positions, as the compiled op.
    ix, iy = tf.stop_gradient(ix), tf.stop_gradient(iy)
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
