"""Equalized-learning-rate layers of StyleGAN2 (Karras et al. 2020, sec. 2 and appendix B),
the mapping network, and the rules the generator and discriminator share.

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
MIN_RESOLUTION = 4
ARCHITECTURES = ("orig", "skip", "resnet")
# How a class label enters G and D (c_dim > 0): "ada" (stylegan2-ada: G embeds c, D projects
# onto a mapped c) or "official" (NVlabs/stylegan2 TF1: G concatenates c @ weight to z, D
# projects onto c itself).
CONDITIONINGS = ("ada", "official")

# Configuration keys that files saved by earlier versions hold and this version ignores:
# the op implementation, a run-time choice since (stylegan2_tf.ops.use_impl).
RETIRED_CONFIG_KEYS = ("impl",)
# Keys that files saved by earlier versions hold under another name or with other values:
# old key -> (new key, {old value: new value}). MappingNetwork's label_mode "embed"/"concat"
# is the `conditioning` "ada"/"official" of G and D.
RENAMED_CONFIG_KEYS = {"label_mode": ("conditioning", {"embed": "ada", "concat": "official"})}
# Constructor arguments holding a sublayer's arguments, which the two tables above reach too.
NESTED_CONFIG_KEYS = ("mapping_kwargs", "synthesis_kwargs")


def upgrade_config(config):
    """A layer config saved by any earlier version, in this version's names: RETIRED_CONFIG_KEYS
    dropped, RENAMED_CONFIG_KEYS renamed with their values translated, in the config and in
    its NESTED_CONFIG_KEYS."""
    upgraded = {}
    for key, value in config.items():
        if key in RETIRED_CONFIG_KEYS:
            continue
        if key in RENAMED_CONFIG_KEYS:
            key, values = RENAMED_CONFIG_KEYS[key]
            value = values.get(value, value)
        elif key in NESTED_CONFIG_KEYS and isinstance(value, dict):
            value = upgrade_config(value)
        upgraded[key] = value
    return upgraded


def serializable(cls):
    """Registers a layer for Keras saving under the package name; its from_config
    reads configs of files saved earlier through `upgrade_config`."""
    from_config = cls.from_config.__func__

    def from_current_config(klass, config):
        return from_config(klass, upgrade_config(config))

    cls.from_config = classmethod(from_current_config)
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def check_positive_int(value, name, layer):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Received an invalid value for `{name}` of {layer}, expected a positive "
                         f"integer. Received: {name}={value!r}")
    return int(value)


def is_resolution(value):
    """Whether `value` can be an image resolution of these networks: a power of two >= MIN_RESOLUTION."""
    return value >= MIN_RESOLUTION and not value & (value - 1)


def check_resolution(img_resolution, where):
    resolution = int(img_resolution)
    if not is_resolution(resolution):
        raise ValueError(f"{where}: img_resolution must be a power of two >= {MIN_RESOLUTION}. "
                         f"Received: img_resolution={img_resolution!r}")
    return resolution


def check_architecture(architecture, where):
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{where}: architecture must be one of {ARCHITECTURES}. "
                         f"Received: architecture={architecture!r}")
    return architecture


def check_conditioning(conditioning, where):
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"{where}: conditioning must be one of {CONDITIONINGS}. "
                         f"Received: conditioning={conditioning!r}")
    return conditioning


def channels_at(res, channel_base, channel_max):
    """Feature maps at resolution `res`: min(channel_base // res, channel_max).

    Equals the official nf() rule with channel_base = 2 * fmap_base
    (stylegan2_tf.networks.presets.from_tf1_names).
    """
    return int(min(channel_base // res, channel_max))


def normalize_2nd_moment(x, eps=1e-8):
    """x / sqrt(mean(x^2)) over the last axis (the official pixel norm of latents)."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + eps)


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
        self.weight_gain = float(self.lr_multiplier / np.sqrt(fan_in))  # a float64 would cast the weights

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
        self.weight_gain = float(self.lr_multiplier / np.sqrt(k * k * channels))

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


@serializable
class MappingNetwork(keras.layers.Layer):
    """z (and class label c) -> w, broadcast to `num_ws` copies; tracks the average w.

    Inputs: z [N, z_dim] (or None when z_dim == 0), c [N, c_dim] (or None).
    Output: w [N, num_ws, w_dim], or [N, w_dim] when num_ws is None.

    conditioning (how c enters; see CONDITIONINGS): "ada" (stylegan2-ada: z and a
        learned embedding `embed` of c are normalized separately, then concatenated)
        or "official" (NVlabs/stylegan2 TF1: c @ `label_weight` is concatenated to z,
        then the whole is normalized; needs z). Files of earlier versions name it
        label_mode, "embed" / "concat" (RENAMED_CONFIG_KEYS).
    The discriminator of conditioning "ada" maps its labels with one (z_dim=0).
    """

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, layer_features=None,
                 activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995, conditioning="ada", **kwargs):
        super().__init__(**kwargs)
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.w_dim = check_positive_int(w_dim, "w_dim", "MappingNetwork")
        self.num_ws = None if num_ws is None else int(num_ws)
        self.num_layers = int(num_layers)
        if self.num_layers < 0 or (self.num_layers == 0 and self.z_dim > 0):
            raise ValueError("MappingNetwork: num_layers must be >= 1 (>= 0 without z, as the "
                             f"label embedding of a discriminator). Received: {num_layers!r}")
        self.layer_features = self.w_dim if layer_features is None else int(layer_features)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.w_avg_beta = None if w_avg_beta is None else float(w_avg_beta)
        self.conditioning = check_conditioning(conditioning, "MappingNetwork")
        if self.c_dim > 0 and conditioning == "official" and self.z_dim == 0:
            raise ValueError("MappingNetwork: conditioning='official' concatenates the label to z; "
                             "it needs z_dim > 0")
        if self.c_dim > 0 and conditioning == "ada":
            self.embed = EqualizedDense(self.w_dim, name="embed", dtype=self.dtype_policy)
        # Attributes, not a list: tf.train.Checkpoint does not look into Keras' lists.
        for i in range(self.num_layers):
            setattr(self, f"fc{i}", EqualizedDense(
                self.w_dim if i == self.num_layers - 1 else self.layer_features,
                activation=activation, lr_multiplier=self.lr_multiplier, name=f"fc{i}", dtype=self.dtype_policy))

    @property
    def fcs(self):
        """The fully connected layers fc0, fc1, ... in order."""
        return [getattr(self, f"fc{i}") for i in range(self.num_layers)]

    def build(self, z_shape=None, c_shape=None):
        features = self.z_dim
        if self.c_dim > 0:
            features += self.z_dim if self.conditioning == "official" else self.w_dim
        if self.c_dim > 0 and self.conditioning == "ada":
            self.embed.build((None, self.c_dim))
        for fc in self.fcs:
            fc.build((None, features))
            features = fc.units
        if self.c_dim > 0 and self.conditioning == "official":
            # Official TF1 "LabelConcat/weight" [c_dim, z_dim], unscaled.
            self.label_weight = self.add_weight(
                name="label_weight", shape=(self.c_dim, self.z_dim),
                initializer=keras.initializers.RandomNormal(0.0, 1.0))
        if self.w_avg_beta is not None:
            # Updated by every replica during training: their mean is kept.
            self.w_avg = self.add_weight(name="w_avg", shape=(self.w_dim,), initializer="zeros",
                                         trainable=False, aggregation="mean")

    def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        parts = []
        if self.z_dim > 0:
            z = tf.cast(z, self.compute_dtype)
            if self.conditioning == "official" and self.c_dim > 0:
                y = tf.matmul(tf.cast(c, z.dtype), tf.cast(self.label_weight, z.dtype))
                parts.append(normalize_2nd_moment(tf.concat([z, y], axis=1)))
            else:
                parts.append(normalize_2nd_moment(z))
        if self.c_dim > 0 and self.conditioning == "ada":
            parts.append(normalize_2nd_moment(self.embed(tf.cast(c, self.compute_dtype))))
        x = parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)
        for fc in self.fcs:
            x = fc(x)
        if update_w_avg and self.w_avg_beta is not None:
            batch_mean = tf.reduce_mean(tf.cast(x, tf.float32), axis=0)
            self.w_avg.assign(batch_mean + (self.w_avg - batch_mean) * self.w_avg_beta)
        if self.num_ws is not None:
            x = tf.tile(x[:, tf.newaxis, :], [1, self.num_ws, 1])
        return self.truncate(x, truncation_psi, truncation_cutoff)

    def truncate(self, w, truncation_psi=1.0, truncation_cutoff=None):
        """w <- lerp(w_avg, w, psi) for the first `truncation_cutoff` ws (all when None)."""
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return w
        if self.w_avg_beta is None:
            raise ValueError("MappingNetwork: truncation needs w_avg (w_avg_beta is None)")
        w_avg = tf.cast(self.w_avg, w.dtype)
        psi = tf.cast(truncation_psi, w.dtype)
        truncated = w_avg + (w - w_avg) * psi
        if self.num_ws is None or truncation_cutoff is None:
            return truncated
        keep = tf.range(self.num_ws) < truncation_cutoff  # [num_ws]
        return tf.where(keep[tf.newaxis, :, tf.newaxis], truncated, w)

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                      num_layers=self.num_layers, layer_features=self.layer_features,
                      activation=self.activation, lr_multiplier=self.lr_multiplier,
                      w_avg_beta=self.w_avg_beta, conditioning=self.conditioning)
        return config
