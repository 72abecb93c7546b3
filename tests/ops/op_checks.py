"""Helpers that compare two implementations of an op, with gradients to second order."""

import numpy as np
import tensorflow as tf


def outputs_and_grads(fn, inputs, seed=0):
    """Runs y = fn(*inputs) and returns (y, dL/dinputs, d(|dL/dx|^2)/dinputs) as numpy.

    L = sum(y * w) with fixed random weights w makes every output element matter;
    the second-order term differentiates the gradient once more, as R1 does.
    """
    inputs = [tf.convert_to_tensor(v) for v in inputs]
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(inputs)
        with tf.GradientTape() as inner:
            inner.watch(inputs)
            y = fn(*inputs)
            w = tf.random.stateless_normal(tf.shape(y), seed=[seed, 1], dtype=tf.float32)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * w)
        grads = inner.gradient(loss, inputs)
        penalty = tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads])
    second = outer.gradient(penalty, inputs)
    to_np = lambda ts: [None if t is None else t.numpy().astype(np.float64) for t in ts]
    return y.numpy().astype(np.float64), to_np(grads), to_np(second)


def assert_close(actual, expected, rtol, atol, what):
    """Compares with a tolerance relative to the largest expected magnitude."""
    if actual is None and expected is None:
        return
    # A disconnected gradient (None) must equal zeros on the other side.
    actual = np.zeros_like(expected) if actual is None else actual
    expected = np.zeros_like(actual) if expected is None else expected
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def assert_same_op(fn_a, fn_b, inputs, rtol, atol):
    """fn_a and fn_b agree on outputs and on first- and second-order gradients."""
    ya, ga, ha = outputs_and_grads(fn_a, inputs)
    yb, gb, hb = outputs_and_grads(fn_b, inputs)
    assert ya.shape == yb.shape
    assert_close(ya, yb, rtol, atol, "forward")
    for i, (a, b) in enumerate(zip(ga, gb)):
        assert_close(a, b, rtol, atol, f"first-order gradient of input {i}")
    for i, (a, b) in enumerate(zip(ha, hb)):
        assert_close(a, b, rtol, 2 * atol, f"second-order gradient of input {i}")


def assert_numeric_gradient(fn, inputs, tol=1e-6):
    """The analytic Jacobian of fn (float64 inputs) matches central differences."""
    theoretical, numerical = tf.test.compute_gradient(fn, inputs, delta=1e-6)
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, rtol=tol, atol=tol)
