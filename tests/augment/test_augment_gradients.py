"""Gradients with respect to the images, in float64: first order against numeric Jacobians per
group, second order (the R1 penalty's d/dx |d D(aug(x)) / dx|^2) against numeric gradients for
the geometric path and against directional differences for the whole pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe


def fixed(pipe, shape, p=1.0, key=(1, 2)):
    """x -> pipe.apply(x, p, draws), eager, with the draws of `key` fixed.

    Eager on purpose: graph rewrites (x / sqrt(y) -> x * rsqrt(y)) change the float32 parameters
    computed from the draws by an ulp between a tf.function's forward and gradient graphs.
    """
    draws = pipe.draw(shape, key)
    return lambda x: pipe.apply(x, p, draws)


def r1_penalty(aug, w):
    """x -> |d sum(w tanh(aug(x))) / dx|^2, a scalar: the R1 penalty of a toy discriminator."""
    def penalty(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(w * tf.tanh(aug(x)))
        return tf.reduce_sum(tf.square(tape.gradient(score, x)))
    return penalty


def grad(fn, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


@pytest.mark.parametrize("name, shape", [("bg", [1, 5, 6, 1]), ("color", [2, 2, 3, 3]),
                                         ("noise", [1, 3, 3, 3]), ("cutout", [1, 4, 4, 1])])
def test_first_order_matches_the_numeric_jacobian(name, shape):
    aug = fixed(AugmentPipe(name), shape)
    x = tf.constant(np.random.RandomState(0).uniform(-1, 1, shape))
    theoretical, numerical = tf.test.compute_gradient(aug, [x], delta=1e-4)
    assert np.abs(theoretical[0]).max() > 0.1
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


def test_first_order_of_the_filter_matches_directional_differences():
    shape = [2, 22, 23, 3]
    aug = fixed(AugmentPipe("filter"), shape)
    rng = np.random.RandomState(1)
    x, w = (tf.constant(rng.normal(size=shape)) for _ in range(2))
    g = grad(lambda x: tf.reduce_sum(w * aug(x)), x)
    for _ in range(3):
        v = tf.constant(rng.normal(size=shape))
        # aug is linear in x: the difference quotient is exact up to rounding.
        numeric = tf.reduce_sum(w * (aug(x + v) - aug(x)))
        np.testing.assert_allclose(tf.reduce_sum(g * v), numeric, rtol=1e-9)


@pytest.mark.parametrize("static_shapes", [False, True])
def test_second_order_of_the_geometric_path_matches_numeric(static_shapes):
    shape = [1, 5, 5, 1]
    rng = np.random.RandomState(2)
    aug = fixed(AugmentPipe("bg", static_shapes=static_shapes), shape)
    penalty = r1_penalty(aug, tf.constant(rng.normal(size=shape)))
    x = tf.constant(rng.uniform(-1, 1, shape))
    theoretical, numerical = tf.test.compute_gradient(penalty, [x], delta=1e-5)
    assert np.abs(theoretical[0]).max() > 0.1
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


def test_second_order_of_the_whole_pipeline_matches_directional_differences():
    shape = [1, 22, 22, 3]
    rng = np.random.RandomState(3)
    aug = fixed(AugmentPipe("bgcfnc"), shape)
    penalty = r1_penalty(aug, tf.constant(rng.normal(size=shape)))
    x = tf.constant(rng.uniform(-1, 1, shape))
    g = grad(penalty, x)
    eps = 1e-5
    for _ in range(3):
        v = tf.constant(rng.normal(size=shape))
        numeric = (penalty(x + eps * v) - penalty(x - eps * v)) / (2 * eps)
        np.testing.assert_allclose(tf.reduce_sum(g * v), numeric, rtol=1e-7)


@pytest.mark.parametrize("name, static_shapes", [("bgcfnc", False), ("bg", True)])
def test_second_order_in_float32_agrees_between_eager_and_tf_function(name, static_shapes):
    shape = [2, 22, 22, 3]
    rng = np.random.RandomState(4)
    pipe = AugmentPipe(name, static_shapes=static_shapes)
    draws = pipe.draw(shape, [5, 6])
    penalty = r1_penalty(lambda x: pipe.apply(x, 1.0, draws), tf.constant(rng.normal(size=shape), tf.float32))
    x = tf.constant(rng.uniform(-1, 1, shape), tf.float32)
    eager = grad(penalty, x)
    traced = tf.function(lambda x: grad(penalty, x))(x)
    np.testing.assert_allclose(traced, eager, rtol=1e-4, atol=1e-4 * np.abs(eager).max())
