"""Equalized-learning-rate layers of StyleGAN2 (Karras et al. 2020, sec. 2 and appendix B).

Weights are stored as N(0, 1/lr_multiplier) and scaled at run time by
lr_multiplier * gain / sqrt(fan_in), so that every layer learns at the same
rate; biases are scaled by lr_multiplier. The names of the weights (`weight`,
`bias`) are those of the official networks, which keeps pickle conversion
mechanical. Activations, their gains and clamping go through `bias_act`,
resampling through `upfirdn2d`.
"""

import keras
import numpy as np
import tensorflow as tf

from stylegan2_tf.ops import bias_act, setup_filter, upfirdn2d

PACKAGE = "stylegan2_tf"
DEFAULT_RESAMPLE_FILTER = (1, 3, 3, 1)


# Configuration keys that files saved by earlier versions hold and this version ignores:
# the op implementation, a run-time choice since (stylegan2_tf.ops.use_impl).
RETIRED_CONFIG_KEYS = ("impl",)


def serializable(cls):
    """Registers a layer for Keras saving under the package name; its from_config
    accepts (and ignores) the RETIRED_CONFIG_KEYS of files saved earlier."""
    from_config = cls.from_config.__func__

    def from_current_config(klass, config):
        return from_config(klass, {k: v for k, v in config.items() if k not in RETIRED_CONFIG_KEYS})

    cls.from_config = classmethod(from_current_config)
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def check_positive_int(value, name, layer):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Received an invalid value for `{name}` of {layer}, expected a positive "
                         f"integer. Received: {name}={value!r}")
    return int(value)


@serializable
class EqualizedDense(keras.layers.Layer):
    """Fully connected layer with equalized learning rate.

    Input [N, ..., fan_in] (flattened to [N, fan_in] when `flatten`); output [N, units].
    With `flatten`, a rank-4 NHWC input is flattened in NCHW order, the layout
    of the official networks' weights.
    """

    def __init__(self, units, activation="linear", lr_multiplier=1.0, bias_init=0.0,
                 use_bias=True, flatten=False, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units", type(self).__name__)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.bias_init = float(bias_init)
        self.use_bias = bool(use_bias)
        self.flatten = bool(flatten)

    def build(self, input_shape):
        fan_in = int(np.prod(input_shape[1:])) if self.flatten else int(input_shape[-1])
        self.weight = self.add_weight(
            name="weight", shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier))
        self.bias = self.add_weight(
            name="bias", shape=(self.units,),
            initializer=keras.initializers.Constant(self.bias_init)) if self.use_bias else None
        self.weight_gain = self.lr_multiplier / np.sqrt(fan_in)

    def call(self, x):
        if self.flatten:
            if x.shape.rank == 4:
                x = tf.transpose(x, [0, 3, 1, 2])  # [N, C, H, W]: the official flattening order
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        w = tf.cast(self.weight * self.weight_gain, x.dtype)
        x = tf.matmul(x, w)
        b = None if self.bias is None else tf.cast(self.bias * self.lr_multiplier, x.dtype)
        return bias_act(x, b, act=self.activation)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation,
                      lr_multiplier=self.lr_multiplier, bias_init=self.bias_init,
                      use_bias=self.use_bias, flatten=self.flatten)
        return config


@serializable
class EqualizedConv2D(keras.layers.Layer):
    """2-D convolution with equalized learning rate, optional FIR up/downsampling by 2.

    Input [N, H, W, C_in]; output [N, H * up / down, W * up / down, filters].
    Upsampling is a stride-2 transposed convolution followed by the FIR filter;
    downsampling is the FIR filter followed by a stride-2 convolution (the
    official upsample_conv_2d / conv_downsample_2d).
    """

    def __init__(self, filters, kernel_size, up=1, down=1, activation="linear", use_bias=True,
                 conv_clamp=None, lr_multiplier=1.0, resample_filter=DEFAULT_RESAMPLE_FILTER, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.filters = check_positive_int(filters, "filters", name)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", name)
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ValueError(f"{name} supports up=2 or down=2 or neither. Received: up={up}, down={down}")
        self.up, self.down = int(up), int(down)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.lr_multiplier = float(lr_multiplier)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        self._filter = setup_filter(list(self.resample_filter))

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.kernel_size
        self.weight = self.add_weight(
            name="weight", shape=(k, k, channels, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier))
        self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                    initializer="zeros") if self.use_bias else None
        self.weight_gain = self.lr_multiplier / np.sqrt(k * k * channels)

    def call(self, x):
        w = tf.cast(self.weight * self.weight_gain, x.dtype)
        x = conv2d_resample(x, w, self._filter, up=self.up, down=self.down)
        b = None if self.bias is None else tf.cast(self.bias * self.lr_multiplier, x.dtype)
        return bias_act(x, b, act=self.activation, clamp=self.conv_clamp)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, up=self.up,
                      down=self.down, activation=self.activation, use_bias=self.use_bias,
                      conv_clamp=self.conv_clamp, lr_multiplier=self.lr_multiplier,
                      resample_filter=list(self.resample_filter))
        return config


def conv2d_resample(x, w, f, up=1, down=1, groups=1):
    """Convolution with FIR resampling by 2, 'same' size otherwise.

    Args:
        x: [N, H, W, C_in * groups] images.
        w: [k, k, C_in, C_out * groups] weights (already scaled).
        f: FIR filter from `setup_filter`.
        up, down: 1 or 2.
        groups: grouped convolution (the fused modulated convolution).

    Returns:
        [N, H * up // down, W * up // down, C_out * groups].
    """
    k = int(w.shape[0])
    fw = f.shape[-1]
    if up == 2:
        # Transposed stride-2 convolution of the flipped kernel, then the FIR filter
        # with gain 4 (official upsample_conv_2d).
        in_channels, out_channels = int(w.shape[2]), int(w.shape[3]) // groups
        # tf.reverse: a negative-stride slice of the kernel costs milliseconds on CPU.
        wt = tf.reshape(tf.reverse(w, [0, 1]), [k, k, in_channels, groups, out_channels])
        wt = tf.transpose(wt, [0, 1, 4, 3, 2])  # [k, k, C_out, groups, C_in]
        wt = tf.reshape(wt, [k, k, out_channels, groups * in_channels])
        shape = tf.shape(x)
        out_shape = [shape[0], (shape[1] - 1) * 2 + k, (shape[2] - 1) * 2 + k, out_channels * groups]
        x = tf.nn.conv2d_transpose(x, wt, out_shape, strides=2, padding="VALID")
        p = (fw - 2) - (k - 1)
        pad0, pad1 = (p + 1) // 2 + 1, p // 2 + 1
        return upfirdn2d(x, f, padding=[pad0, pad1, pad0, pad1], gain=4)
    if down == 2:
        # FIR filter, then a stride-2 convolution (official conv_downsample_2d).
        p = (fw - 2) + (k - 1)
        pad0, pad1 = (p + 1) // 2, p // 2
        x = upfirdn2d(x, f, padding=[pad0, pad1, pad0, pad1])
        return tf.nn.conv2d(x, w, strides=2, padding="VALID")
    return tf.nn.conv2d(x, w, strides=1, padding="SAME")
