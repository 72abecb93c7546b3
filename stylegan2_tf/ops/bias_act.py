"""Fused bias + activation + gain + clamp.

`bias_act` has a pure-TensorFlow reference (`impl="ref"`, the specification) and
a compiled op (`impl="custom"`) that does the whole chain in one pass over memory,
and its gradient in one more. One activation table drives both paths.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from stylegan2_tf.ops import native

_LIBRARY = "_bias_act.so"


class Activation(NamedTuple):
    """One activation of the table.

    func: the reference, func(x, alpha) -> tensor.
    def_alpha, def_gain: defaults when `alpha` / `gain` are None.
    code: the activation number of the compiled op (BiasActKind in bias_act_kernel.h).
    ref: what the compiled gradient reads: "x" (the input), "y" (the output) or "" (nothing).
    has_2nd_grad: whether the second derivative is non-zero.
    """

    func: Callable
    def_alpha: float
    def_gain: float
    code: int
    ref: str
    has_2nd_grad: bool


activation_funcs = {
    "linear": Activation(lambda x, _: x, 0.0, 1.0, 1, "", False),
    "relu": Activation(lambda x, _: tf.nn.relu(x), 0.0, math.sqrt(2), 2, "y", False),
    "lrelu": Activation(lambda x, a: tf.nn.leaky_relu(x, a), 0.2, math.sqrt(2), 3, "y", False),
    "tanh": Activation(lambda x, _: tf.math.tanh(x), 0.0, 1.0, 4, "y", True),
    "sigmoid": Activation(lambda x, _: tf.math.sigmoid(x), 0.0, 1.0, 5, "y", True),
    "elu": Activation(lambda x, _: tf.nn.elu(x), 0.0, 1.0, 6, "y", True),
    "selu": Activation(lambda x, _: tf.nn.selu(x), 0.0, 1.0, 7, "y", True),
    "softplus": Activation(lambda x, _: tf.math.softplus(x), 0.0, 1.0, 8, "y", True),
    "swish": Activation(lambda x, _: tf.math.sigmoid(x) * x, 0.0, math.sqrt(2), 9, "x", True),
}
_BY_CODE = {spec.code: spec for spec in activation_funcs.values()}


def bias_act(x, b=None, axis=-1, act="linear", alpha=None, gain=None, clamp=None, impl=None):
    """Adds a bias, applies an activation, scales and clamps, in that order.

    Args:
        x: float tensor of any rank (float16, float32; the reference also float64).
        b: bias [x.shape[axis]] of x's dtype, or None.
        axis: the axis of x that `b` runs along (-1: channels of NHWC).
        act: one of `activation_funcs`: linear, relu, lrelu, tanh, sigmoid, elu,
            selu, softplus, swish.
        alpha: lrelu slope; None for the activation's default (lrelu: 0.2).
        gain: output scale; None for the activation's default (sqrt(2) for relu,
            lrelu and swish, else 1).
        clamp: clamp the output to [-clamp, clamp]; None disables.
        impl: "auto", "ref" (pure TF), "custom" (compiled op), or None (the default): the
            current setting, stylegan2_tf.ops.current_impl().

    Returns:
        Tensor of x's shape and dtype.
    """
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(f"bias_act: x must be a floating-point tensor, got {x.dtype.name}")
    if act not in activation_funcs:
        raise ValueError(f"bias_act: unknown act {act!r}; expected one of {sorted(activation_funcs)}")
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    if clamp is not None:
        clamp = float(clamp)
        if not clamp >= 0:
            raise ValueError(f"bias_act: clamp must be >= 0 or None, got {clamp}")
    rank = x.shape.rank
    if rank is None or rank == 0:
        raise ValueError(f"bias_act: x must have a known rank >= 1, got shape {x.shape}")
    if not -rank <= axis < rank:
        raise ValueError(f"bias_act: axis {axis} is out of range for x of rank {rank}")
    axis = axis % rank
    if b is not None:
        b = tf.cast(tf.convert_to_tensor(b), x.dtype)
        if b.shape.rank != 1 or (x.shape[axis] is not None and b.shape[0] != x.shape[axis]):
            raise ValueError(
                f"bias_act: b must have shape [x.shape[{axis}]] = [{x.shape[axis]}], got {b.shape}"
            )
    reason = f"supports float16/float32 (got {x.dtype.name})"
    supported = x.dtype in (tf.float16, tf.float32)
    if native.use_custom(impl, _LIBRARY, "bias_act", supported, reason):
        return _bias_act_custom(x, b, axis, spec, alpha, gain, clamp)
    return _bias_act_ref(x, b, axis, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, axis, spec, alpha, gain, clamp):
    """Pure-TF bias_act."""
    if b is not None:
        if axis == x.shape.rank - 1:
            x = tf.nn.bias_add(x, b)
        else:
            x = x + tf.reshape(b, [-1] + [1] * (x.shape.rank - axis - 1))
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * tf.cast(gain, x.dtype)
    if clamp is not None:
        x = tf.clip_by_value(x, tf.cast(-clamp, x.dtype), tf.cast(clamp, x.dtype))
    return x


def _bias_act_custom(x, b, axis, spec, alpha, gain, clamp):
    """Compiled bias_act; gradients through the registered gradient below."""
    if spec.code == activation_funcs["linear"].code and b is None and gain == 1 and clamp is None:
        return x
    empty = _empty(x.dtype)
    y, _ = _bias_act_op(
        x, b if b is not None else empty, empty, empty, empty,
        act=spec.code, grad=0, axis=axis, alpha=alpha, gain=gain,
        clamp=-1.0 if clamp is None else clamp,
    )
    return y


def _empty(dtype):
    return tf.zeros([0], dtype=dtype)


def _bias_act_op(x, b, xref, yref, dy, **attrs):
    """The compiled StyleGAN2>BiasAct op -> (y, db); `attrs` as registered in bias_act_op.cc.

    db, for grad > 0 with a bias, is y summed over every axis but `axis`.
    """
    return native.load_library(_LIBRARY).style_gan2_bias_act(x, b, xref, yref, dy, **attrs)


@tf.RegisterGradient("StyleGAN2>BiasAct")
def _bias_act_grad(op, grad, grad_db):
    """grad 0 -> grad-1 op; grad 1 -> grad-1 op (for dy) and grad-2 op (for x and b)."""
    order = op.get_attr("grad")
    spec = _BY_CODE[op.get_attr("act")]
    attrs = {name: op.get_attr(name) for name in ("act", "axis", "alpha", "gain", "clamp")}
    x, b, xref, yref, _ = op.inputs
    has_bias = b.shape.num_elements() != 0
    empty = _empty(grad.dtype)
    if order == 0:
        keep_x = spec.ref == "x" or spec.has_2nd_grad
        keep_y = spec.ref == "y" or attrs["clamp"] >= 0
        xref = x if keep_x else empty
        yref = op.outputs[0] if keep_y else empty
        dx, db = _bias_act_op(grad, b, xref, yref, empty, grad=1, **attrs)
        return [dx, db if has_bias else None, None, None, None]
    if order == 1:
        # op: (x * act'(xref + b), its sum db); db's gradient reaches every element.
        if grad_db is not None and has_bias:
            rank, axis = grad.shape.rank, attrs["axis"] % grad.shape.rank
            grad = grad + tf.reshape(grad_db, [-1] + [1] * (rank - axis - 1))
        d_dy, _ = _bias_act_op(grad, b, xref, yref, empty, grad=1, **attrs)
        if not spec.has_2nd_grad:
            return [d_dy, None, None, None, None]
        d_x, d_b = _bias_act_op(grad, b, xref, yref, x, grad=2, **attrs)
        return [d_dy, d_b if has_bias else None, d_x, None, None]
    raise NotImplementedError(
        "bias_act: the compiled op has gradients up to second order; use impl='ref' for higher"
    )
