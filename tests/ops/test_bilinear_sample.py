"""bilinear_sample: reference vs an independent numpy model, custom vs reference (values,
first- and second-order gradients), numeric gradients, dtypes, shapes and errors."""

import numpy as np
import pytest
import tensorflow as tf
from op_checks import assert_numeric_gradient, assert_same_op

from stylegan2_tf.ops import bilinear_sample


def numpy_bilinear(images, ix, iy):
    """Bilinear interpolation written point by point, zeros outside (float64)."""
    _, h, w, c = images.shape
    out = np.zeros(ix.shape + (c,))
    for b, oy, ox in np.ndindex(*ix.shape):
        x, y = ix[b, oy, ox], iy[b, oy, ox]
        if not (-1 <= x <= w and -1 <= y <= h):
            continue
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                if 0 <= xx < w and 0 <= yy < h:
                    out[b, oy, ox] += wx * wy * images[b, yy, xx]
    return out


def _positions(shape, image_hw, seed, dtype=np.float64):
    """Positions over the image and one pixel beyond, with exact integers, the edges -1 and
    size, and far-away points mixed in."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    ix = rng.uniform(-2, w + 1, shape)
    iy = rng.uniform(-2, h + 1, shape)
    flat_x, flat_y = ix.reshape(-1), iy.reshape(-1)
    specials = [(-1, 0), (w, 0), (0, -1), (0, h), (1, 2), (w - 1, h - 1), (-50, 3), (2, 1e6)]
    for i, (x, y) in enumerate(specials[: flat_x.size]):
        flat_x[i], flat_y[i] = x, y
    return ix.astype(dtype), iy.astype(dtype)


CASES = [  # (images shape, positions shape [N, Ho, Wo])
    ((1, 5, 7, 3), (1, 4, 6)),
    ((2, 8, 6, 1), (2, 9, 5)),
    ((3, 4, 4, 5), (3, 3, 7)),
]


@pytest.mark.parametrize("impl", ["ref", "custom"])
@pytest.mark.parametrize("images_shape,positions_shape", CASES)
def test_matches_numpy_model(impl, images_shape, positions_shape):
    images = np.random.default_rng(0).standard_normal(images_shape)
    ix, iy = _positions(positions_shape, images_shape[1:3], 1)
    y = bilinear_sample(images, ix, iy, impl=impl)
    assert y.shape == positions_shape + images_shape[-1:]
    np.testing.assert_allclose(y.numpy(), numpy_bilinear(images, ix, iy), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("images_dtype,positions_dtype", [(np.float32, np.float64), (np.float32, np.float32),
                                                          (np.float64, np.float64)])
@pytest.mark.parametrize("images_shape,positions_shape", CASES)
def test_custom_matches_reference_to_second_order(images_dtype, positions_dtype, images_shape, positions_shape):
    images = np.random.default_rng(2).standard_normal(images_shape).astype(images_dtype)
    ix, iy = _positions(positions_shape, images_shape[1:3], 3, positions_dtype)

    def run(impl):
        return lambda x: bilinear_sample(x, ix, iy, impl=impl)

    tol = 1e-5 if images_dtype == np.float32 else 1e-12
    assert_same_op(run("custom"), run("ref"), [images], rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", ["ref", "custom"])
def test_gradient_is_numeric_gradient_and_positions_get_none(impl):
    images = np.random.default_rng(4).standard_normal((2, 4, 5, 2))
    ix, iy = _positions((2, 3, 4), (4, 5), 5)
    assert_numeric_gradient(lambda x: bilinear_sample(x, ix, iy, impl=impl), [images])
    ix, iy = tf.constant(ix), tf.constant(iy)
    with tf.GradientTape() as tape:
        tape.watch([ix, iy])
        y = tf.reduce_sum(bilinear_sample(images, ix, iy, impl=impl))
    assert tape.gradient(y, [ix, iy]) == [None, None]


def test_adjoint_is_the_transpose():
    """<sample(x), dy> == <x, adjoint(dy)>: the gradient op is the exact transpose."""
    rng = np.random.default_rng(6)
    images, dy = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((2, 7, 4, 3))
    ix, iy = _positions((2, 7, 4), (6, 5), 7)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bilinear_sample(x, ix, iy, impl="custom")
    dx = tape.gradient(y, x, output_gradients=tf.constant(dy))
    np.testing.assert_allclose(np.sum(y.numpy() * dy), np.sum(images * dx.numpy()), rtol=1e-12)


def test_custom_in_tf_function_with_unknown_sizes():
    """Shapes only known when running (the augmentation's padded images)."""
    rng = np.random.default_rng(8)
    images = rng.standard_normal((2, 6, 9, 3)).astype(np.float32)
    ix, iy = _positions((2, 5, 4), (6, 9), 9)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    positions = tf.TensorSpec([None, None, None], tf.float64)

    @tf.function(input_signature=[spec, positions, positions])
    def sample_and_grad(x, px, py):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bilinear_sample(x, px, py, impl="custom")
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, x)

    y, dx = sample_and_grad(images, ix, iy)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(bilinear_sample(x, ix, iy, impl="ref")))
    dx_ref = tape.gradient(loss, x)
    np.testing.assert_allclose(y.numpy(), numpy_bilinear(images, ix, iy), rtol=1e-5, atol=1e-5)
    assert dx.shape == images.shape
    np.testing.assert_allclose(dx.numpy(), dx_ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["ref", "custom"])
@pytest.mark.parametrize("images_shape,positions_shape", [((0, 4, 4, 3), (0, 2, 2)), ((2, 4, 4, 3), (2, 0, 5)),
                                                          ((1, 4, 4, 0), (1, 2, 2))])
def test_empty(impl, images_shape, positions_shape):
    ix = iy = np.zeros(positions_shape)
    x = tf.zeros(images_shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bilinear_sample(x, ix, iy, impl=impl)
        loss = tf.reduce_sum(y)
    assert y.shape == positions_shape + images_shape[-1:]
    assert tape.gradient(loss, x).shape == images_shape


@pytest.mark.parametrize("images,ix,iy,pattern", [
    (np.zeros((2, 4, 4)), np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), "images must be a float"),
    (np.zeros((2, 4, 4, 3), np.int32), np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), "images must be a float"),
    (np.zeros((2, 4, 4, 3)), np.zeros((2, 3)), np.zeros((2, 3)), "ix and iy must be"),
    (np.zeros((2, 4, 4, 3)), np.zeros((2, 3, 3)), np.zeros((2, 3, 3), np.float32), "ix and iy must be"),
    (np.zeros((2, 4, 4, 3)), np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), "ix and iy must be"),
])
def test_bad_inputs_raise_clear_errors(images, ix, iy, pattern):
    with pytest.raises(ValueError, match=pattern):
        bilinear_sample(images, ix, iy)


def test_custom_refuses_float16_and_mismatched_batch():
    with pytest.raises(ValueError, match="float32/float64"):
        bilinear_sample(np.zeros((1, 2, 2, 1), np.float16), np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), impl="custom")
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="N"):
        bilinear_sample(np.zeros((2, 2, 2, 1)), np.zeros((3, 1, 1)), np.zeros((3, 1, 1)), impl="custom")
