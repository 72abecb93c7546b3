"""The path-length penalty against a hand-written recomputation and numeric gradients."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.training.loss import path_length_penalty

PL_DECAY, PL_MEAN, PL_WEIGHT = 0.5, 0.3, 2.0
SEED = tf.constant([3, 4], tf.int32)


class QuadraticSynthesis:
    """A stand-in generator: images[n, p] = sum_{w, d} (ws[n, w, d] * A[w, d, p])^2, float64,
    so that path lengths differ between samples and depend on A nonlinearly."""

    def __init__(self, a):
        self.a = a

    def synthesis(self, ws, noise_mode="random", noise_seed=None):
        images = tf.reduce_sum(tf.square(ws[:, :, :, tf.newaxis] * self.a), axis=[1, 2])  # [N, P]
        return tf.reshape(images, [-1, 2, 2, 1])


def _penalty(a, ws):
    penalty, new_mean = path_length_penalty(QuadraticSynthesis(a), ws, tf.constant(PL_MEAN, tf.float64),
                                            PL_WEIGHT, PL_DECAY, SEED)
    return tf.reduce_sum(penalty), penalty, new_mean


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    a = tf.Variable(rng.standard_normal((2, 3, 4)), dtype=tf.float64)  # [num_ws, w_dim, pixels]
    ws = tf.constant(rng.standard_normal((3, 2, 3)), tf.float64)  # [N, num_ws, w_dim]
    return a, ws


def test_gradient_flows_through_the_updated_mean(inputs):
    """d/dA sum_i w (L_i - a)^2 with a = m + (mean(L) - m) decay is
    sum_i 2 w (L_i - a) (dL_i/dA - decay mean_j dL_j/dA): both references differentiate a."""
    a, ws = inputs
    with tf.GradientTape() as tape:
        loss, penalty, new_mean = _penalty(a, ws)
    grad = tape.gradient(loss, a).numpy()
    distances = np.sqrt(penalty.numpy() / PL_WEIGHT)  # |L_i - a|
    with tf.GradientTape() as outer:  # L_i and dL_i/dA, recomputed through the same stand-in
        outer.watch(a)
        per_sample = _lengths(a, ws)
    jac = outer.jacobian(per_sample, a).numpy()  # [N, *A]
    L = per_sample.numpy()
    mean = PL_MEAN + (L.mean() - PL_MEAN) * PL_DECAY
    np.testing.assert_allclose(new_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(distances, np.abs(L - mean), rtol=1e-10)
    expected = sum(2 * PL_WEIGHT * (L[i] - mean) * (jac[i] - PL_DECAY * jac.mean(axis=0))
                   for i in range(len(L)))
    np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-12)
    # Without the term through the mean, the gradient would differ measurably.
    detached = sum(2 * PL_WEIGHT * (L[i] - mean) * jac[i] for i in range(len(L)))
    assert np.abs(detached - expected).max() > 1e-3 * np.abs(expected).max()


def _lengths(a, ws):
    """|J_w^T y| per sample, with the projection y the penalty draws from SEED."""
    from stylegan2_tf.networks.generator import RNG_ALG

    _, projection_seed = tf.unstack(tf.random.experimental.stateless_split(SEED, 2, alg=RNG_ALG))
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = QuadraticSynthesis(a).synthesis(ws)
        y = tf.random.stateless_normal(tf.shape(images), projection_seed, dtype=tf.float64,
                                       alg=RNG_ALG) / 2.0  # sqrt(H W) = 2
        projected = tf.reduce_sum(images * y)
    grads = tape.gradient(projected, ws)
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))


def test_gradient_matches_numeric_differences(inputs):
    a, ws = inputs
    with tf.GradientTape() as tape:
        loss, _, _ = _penalty(a, ws)
    grad = tape.gradient(loss, a).numpy()
    base = a.numpy()
    numeric = np.zeros_like(base)
    eps = 1e-6
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[index] += sign * eps
            values.append(float(_penalty(tf.constant(shifted), ws)[0]))
        numeric[index] = (values[0] - values[1]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
