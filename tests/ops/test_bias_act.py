"""bias_act: reference vs numpy formulas, custom vs reference (values, first- and
second-order gradients), numeric gradients, defaults and errors."""

import math

import numpy as np
import pytest
import tensorflow as tf
from op_checks import assert_numeric_gradient, assert_same_op

from stylegan2_tf.ops import activation_funcs, bias_act

ACTS = sorted(activation_funcs)


def numpy_act(z, act, alpha):
    """The activations written out in numpy (float64)."""
    sig = 1 / (1 + np.exp(-z))
    return {
        "linear": z,
        "relu": np.maximum(z, 0),
        "lrelu": np.where(z > 0, z, z * alpha),
        "tanh": np.tanh(z),
        "sigmoid": sig,
        "elu": np.where(z >= 0, z, np.expm1(z)),
        "selu": 1.0507009873554805 * np.where(z >= 0, z, 1.6732632423543772 * np.expm1(z)),
        "softplus": np.log1p(np.exp(z)),
        "swish": z * sig,
    }[act]


def _inputs(shape, axis, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    b = rng.standard_normal(shape[axis]).astype(dtype)
    return x, b


DEFAULTS = {"lrelu": (0.2, math.sqrt(2)), "relu": (0.0, math.sqrt(2)), "swish": (0.0, math.sqrt(2))}


@pytest.mark.parametrize("act", ACTS)
def test_table_defaults(act):
    spec = activation_funcs[act]
    assert (spec.def_alpha, spec.def_gain) == pytest.approx(DEFAULTS.get(act, (0.0, 1.0)))


@pytest.mark.parametrize("clamp", [None, 0.7])
@pytest.mark.parametrize("act", ACTS)
def test_reference_matches_numpy(act, clamp):
    x, b = _inputs((2, 3, 5, 4), -1)
    spec = activation_funcs[act]
    y = bias_act(x, b, act=act, clamp=clamp, impl="ref").numpy()
    expected = numpy_act(x.astype(np.float64) + b, act, spec.def_alpha) * spec.def_gain
    if clamp is not None:
        expected = np.clip(expected, -clamp, clamp)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


CONFIGS = [
    # (shape, axis, with bias, alpha, gain, clamp)
    ((2, 4, 3, 5), -1, True, None, None, None),
    ((3, 7), 1, True, 0.1, 2.0, 0.8),
    ((2, 5, 4, 3), 1, True, None, 0.5, None),
    ((1, 6, 5), 0, False, None, None, 1.5),
    ((4, 3, 1, 2), 2, True, 0.3, None, 0.5),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("act", ACTS)
def test_custom_matches_reference_float32(act, config):
    shape, axis, with_bias, alpha, gain, clamp = config
    x, b = _inputs(shape, axis, seed=len(shape))
    inputs = [x, b] if with_bias else [x]

    def run(impl):
        def fn(x, b=None):
            return bias_act(x, b, axis=axis, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)
        return fn

    assert_same_op(run("custom"), run("ref"), inputs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ACTS)
def test_custom_matches_reference_float16(act):
    x, b = _inputs((2, 3, 4, 8), -1, np.float16)
    y_custom = bias_act(x, b, act=act, clamp=2.0, impl="custom")
    assert y_custom.dtype == tf.float16
    spec = activation_funcs[act]
    exact = np.clip(numpy_act(x.astype(np.float64) + b.astype(np.float64), act, spec.def_alpha)
                    * spec.def_gain, -2, 2)
    np.testing.assert_allclose(y_custom.numpy().astype(np.float64), exact, rtol=2e-3, atol=2e-3)

    def run(impl):
        return lambda x, b: bias_act(x, b, act=act, clamp=2.0, impl=impl)

    assert_same_op(run("custom"), run("ref"), [x, b], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("act", ACTS)
def test_reference_gradient_is_numeric_gradient(act):
    x, b = _inputs((2, 3, 4), -1, np.float64, seed=3)
    x = x + np.sign(x) * 0.05  # keep away from the kinks of relu / lrelu / elu
    assert_numeric_gradient(lambda x, b: bias_act(x, b, act=act, clamp=3.0, impl="ref"), [x, b], tol=1e-5)


def test_custom_in_tf_function():
    x, b = _inputs((2, 8, 8, 16), -1)
    fn = tf.function(lambda x, b: bias_act(x, b, act="lrelu", impl="custom"))
    np.testing.assert_allclose(fn(x, b).numpy(), bias_act(x, b, act="lrelu", impl="ref").numpy(), atol=1e-6)


def test_third_order_gradient_of_custom_op_is_refused():
    x, b = _inputs((2, 3), -1)
    x = tf.constant(x)
    with tf.GradientTape() as t3:
        t3.watch(x)
        with tf.GradientTape() as t2:
            t2.watch(x)
            with tf.GradientTape() as t1:
                t1.watch(x)
                y = tf.reduce_sum(bias_act(x, b, act="tanh", impl="custom"))
            g1 = tf.reduce_sum(t1.gradient(y, x))
        g2 = tf.reduce_sum(t2.gradient(g1, x))
    with pytest.raises(NotImplementedError, match="second order"):
        t3.gradient(g2, x)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"act": "gelu"}, ValueError, "unknown act 'gelu'"),
        ({"clamp": -1}, ValueError, "clamp must be >= 0"),
        ({"axis": 4}, ValueError, "axis 4 is out of range"),
        ({"b": np.zeros(3, np.float32)}, ValueError, r"b must have shape \[x.shape\[3\]\] = \[5\]"),
        ({"impl": "gpu"}, ValueError, "impl must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, pattern):
    args = {"x": np.zeros((1, 2, 2, 5), np.float32)}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        bias_act(**args)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="floating-point"):
        bias_act(np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="impl='custom' supports float16/float32"):
        bias_act(np.zeros((2, 2), np.float64), impl="custom")
