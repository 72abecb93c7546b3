"""StyleGAN2 generator: modulated convolutions, synthesis network, mapping + synthesis.

Karras et al. 2020 (arXiv 1912.04958), sec. 2.2 (weight demodulation) and 4.1
(skip / residual architectures); semantics of the official NVlabs/stylegan2 and
of stylegan2-ada-pytorch. Layout NHWC. Sublayers are named after their role
(`b{res}/conv0`, `conv1`, `torgb`, `skip`, `const`; mapping `fc{i}`, `embed`)
so that converting an official network is a table of names.
"""

import keras
import numpy as np
import tensorflow as tf

from stylegan2_tf.networks.layers import (
    ARCHITECTURES,
    DEFAULT_RESAMPLE_FILTER,
    EqualizedConv2D,
    EqualizedDense,
    MappingNetwork,
    channels_at,
    check_architecture,
    check_positive_int,
    check_resolution,
    conv2d_resample,
    serializable,
)
from stylegan2_tf.ops import bias_act, setup_filter, upsample2d
from stylegan2_tf.seed_keys import RNG_ALG, layer_noise_key

NOISE_MODES = ("random", "const", "none")
# Public names; MappingNetwork, ARCHITECTURES and channels_at live in networks.layers, RNG_ALG in
# seed_keys, and are importable from here too.
__all__ = ["ARCHITECTURES", "NOISE_MODES", "RNG_ALG", "Generator", "MappingNetwork", "ModulatedConv2D",
           "SynthesisBlock", "SynthesisLayer", "SynthesisNetwork", "ToRGB", "channels_at",
           "modulated_conv2d"]


def modulated_conv2d(x, weight, styles, f, demodulate=True, up=1, fused=True):
    """Modulated (and demodulated) convolution, eq. 1-3 of the paper.

    1. Styles, weights and demodulation coefficients are computed in float32
       (in x's dtype when that is wider), as both references do.
    2. When x is float16 and demodulating, the weights are first divided by
       their largest magnitude per output map (times 1 / sqrt(k k I)) and the
       styles by their largest magnitude per sample (stylegan2-ada): the
       demodulation cancels both scales, and float16 products cannot overflow.
    3. The result is computed in x's dtype.

    Args:
        x: [N, H, W, I] input features.
        weight: [k, k, I, O] weights.
        styles: [N, I] per-sample input scales; the convolution multiplies
            weight by styles, so an equalized-lr gain may scale either.
        f: FIR filter for up=2.
        demodulate: normalize each output feature map to unit expected std.
        up: 1 or 2.
        fused: one grouped convolution with per-sample weights (official
            fused_modconv); otherwise scale the activations instead (same result).
            A 1x1 convolution without resampling (toRGB) is always one matrix
            product per sample with its own weights: it reads x once, where
            scaling x first would write and read it again (2-3x faster on CPU).

    Returns:
        [N, H * up, W * up, O] in x's dtype.
    """
    x = tf.convert_to_tensor(x)
    k, in_channels, out_channels = int(weight.shape[0]), int(weight.shape[2]), int(weight.shape[3])
    coef_dtype = tf.float32 if x.dtype.size < 4 else x.dtype
    styles = tf.cast(styles, coef_dtype)
    weight = tf.cast(weight, coef_dtype)
    if demodulate and x.dtype == tf.float16:
        weight = weight * (1 / np.sqrt(k * k * in_channels)) / tf.reduce_max(
            tf.abs(weight), axis=[0, 1, 2], keepdims=True)  # [k, k, I, O]
        styles = styles / tf.reduce_max(tf.abs(styles), axis=1, keepdims=True)  # [N, I]
    dcoefs = None
    if demodulate:
        # 1 / |w * s| per output map: sum over k, k, I of (w s)^2 = s^2 @ sum_kk w^2.
        w_sq = tf.reduce_sum(tf.square(weight), axis=[0, 1])  # [I, O]
        dcoefs = tf.math.rsqrt(tf.matmul(tf.square(styles), w_sq) + 1e-8)  # [N, O]
    if k == 1 and up == 1:
        return _modulated_matmul(x, weight[0, 0], styles, dcoefs)
    if not fused:
        x = x * tf.cast(styles, x.dtype)[:, tf.newaxis, tf.newaxis, :]
        x = conv2d_resample(x, tf.cast(weight, x.dtype), f, up=up)
        if demodulate:
            x = x * tf.cast(dcoefs, x.dtype)[:, tf.newaxis, tf.newaxis, :]
        return x
    w = weight[tf.newaxis] * styles[:, tf.newaxis, tf.newaxis, :, tf.newaxis]  # [N, k, k, I, O]
    if demodulate:
        w = w * dcoefs[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
    w = tf.cast(w, x.dtype)
    batch = tf.shape(x)[0]
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    # Samples become groups of one convolution: [N, H, W, I] -> [1, H, W, N * I].
    xg = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, batch * in_channels])
    wg = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]), [k, k, in_channels, batch * out_channels])
    y = conv2d_resample(xg, wg, f, up=up, groups=batch)  # [1, H', W', N * O]
    out_h, out_w = tf.shape(y)[1], tf.shape(y)[2]
    y = tf.reshape(y, [out_h, out_w, batch, out_channels])
    return tf.transpose(y, [2, 0, 1, 3])  # [N, H', W', O]


def _modulated_matmul(x, weight, styles, dcoefs):
    """A modulated 1x1 convolution as per-sample matrix products.

    Args:
        x: [N, H, W, I] input features.
        weight: [I, O] weights in the coefficients' dtype.
        styles: [N, I] per-sample input scales.
        dcoefs: [N, O] demodulation coefficients, or None.

    Returns:
        [N, H, W, O] in x's dtype.
    """
    w = weight[tf.newaxis] * styles[:, :, tf.newaxis]  # [N, I, O]
    if dcoefs is not None:
        w = w * dcoefs[:, tf.newaxis, :]
    shape = tf.shape(x)
    in_channels, out_channels = int(weight.shape[0]), int(weight.shape[1])
    y = tf.matmul(tf.reshape(x, [shape[0], shape[1] * shape[2], in_channels]), tf.cast(w, x.dtype))
    return tf.reshape(y, [shape[0], shape[1], shape[2], out_channels])


@serializable
class ModulatedConv2D(keras.layers.Layer):
    """Style-modulated convolution: `affine` maps w to per-input-channel styles.

    call(x [N, H, W, in_channels], w [N, w_dim]) -> [N, H * up, W * up, filters] (no bias).
    The affine layer's bias starts at 1, so styles start at 1 (the official
    TF1 networks store it minus 1 as `mod_bias`).
    """

    def __init__(self, in_channels, filters, kernel_size, w_dim, up=1, demodulate=True,
                 fused_modconv=False, resample_filter=DEFAULT_RESAMPLE_FILTER,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels = check_positive_int(in_channels, "in_channels", "ModulatedConv2D")
        self.filters = check_positive_int(filters, "filters", "ModulatedConv2D")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", "ModulatedConv2D")
        self.w_dim = check_positive_int(w_dim, "w_dim", "ModulatedConv2D")
        if up not in (1, 2):
            raise ValueError(f"ModulatedConv2D supports up=1 or 2. Received: up={up}")
        self.up = int(up)
        self.demodulate = bool(demodulate)
        self.fused_modconv = bool(fused_modconv)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        self._filter = setup_filter(list(self.resample_filter))
        # Styles in the weights' dtype (float32 in float16 blocks), as the references.
        self.affine = EqualizedDense(self.in_channels, bias_init=1.0, name="affine",
                                     dtype=self.dtype_policy.variable_dtype)

    def build(self, x_shape=None, w_shape=None):
        self.affine.build((None, self.w_dim))
        k = self.kernel_size
        self.weight = self.add_weight(name="weight", shape=(k, k, self.in_channels, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.weight_gain = float(1.0 / np.sqrt(k * k * self.in_channels))

    def call(self, x, w, fused_modconv=None):
        fused = self.fused_modconv if fused_modconv is None else fused_modconv
        # The equalized-lr gain scales the styles, not the weights: the same product, without
        # a pass over the [k, k, I, O] weights in every call (stylegan2-ada does the same).
        styles = self.affine(tf.cast(w, self.affine.compute_dtype)) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, self._filter, demodulate=self.demodulate,
                                up=self.up, fused=fused)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters,
                      kernel_size=self.kernel_size, w_dim=self.w_dim,
                      up=self.up, demodulate=self.demodulate, fused_modconv=self.fused_modconv,
                      resample_filter=list(self.resample_filter))
        return config


@serializable
class SynthesisLayer(keras.layers.Layer):
    """Modulated 3x3 convolution, noise injection, bias, activation, clamp.

    call(x [N, H, W, in_channels], w [N, w_dim], noise_mode) -> [N, R, R, filters], R = resolution.
    Noise: "random" draws N(0, 1) per pixel; "const" uses the stored buffer
    `noise_const` [1, R, R, 1]; "none" adds nothing. Scaled by `noise_strength`.
    """

    def __init__(self, in_channels, filters, w_dim, resolution, up=1, activation="lrelu",
                 conv_clamp=None, use_noise=True, fused_modconv=False,
                 resample_filter=DEFAULT_RESAMPLE_FILTER, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = check_positive_int(in_channels, "in_channels", "SynthesisLayer")
        self.filters = check_positive_int(filters, "filters", "SynthesisLayer")
        self.w_dim = check_positive_int(w_dim, "w_dim", "SynthesisLayer")
        self.resolution = check_positive_int(resolution, "resolution", "SynthesisLayer")
        self.up = int(up)
        self.activation = activation
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.use_noise = bool(use_noise)
        self.fused_modconv = bool(fused_modconv)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        self.conv = ModulatedConv2D(self.in_channels, self.filters, 3, self.w_dim, up=self.up,
                                    fused_modconv=self.fused_modconv,
                                    resample_filter=self.resample_filter, name="conv",
                                    dtype=self.dtype_policy)

    def build(self, x_shape=None, w_shape=None):
        self.conv.build()
        if self.use_noise:
            r = self.resolution
            self.noise_const = self.add_weight(
                name="noise_const", shape=(1, r, r, 1), trainable=False,
                initializer=keras.initializers.RandomNormal(0.0, 1.0))
            self.noise_strength = self.add_weight(name="noise_strength", shape=(),
                                                  initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x, w, noise_mode="random", fused_modconv=None, noise_seed=None):
        """noise_seed: optional int32 or int64 [2]; "random" noise is then drawn statelessly from it."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}. Received: {noise_mode!r}")
        x = self.conv(x, w, fused_modconv=fused_modconv)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                shape = tf.shape(x)
                noise_shape = [shape[0], shape[1], shape[2], 1]
                if noise_seed is None:
                    noise = tf.random.normal(noise_shape, dtype=x.dtype)
                else:  # a different stream per layer (seed_keys.layer_noise_key)
                    layer_key = layer_noise_key(noise_seed, self.resolution, self.up)
                    noise = tf.cast(tf.random.stateless_normal(noise_shape, layer_key, alg=RNG_ALG), x.dtype)
            else:
                noise = tf.cast(self.noise_const, x.dtype)
            x = x + noise * tf.cast(self.noise_strength, x.dtype)
        return bias_act(x, tf.cast(self.bias, x.dtype), act=self.activation,
                        clamp=self.conv_clamp)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, filters=self.filters, w_dim=self.w_dim,
                      resolution=self.resolution, up=self.up, activation=self.activation,
                      conv_clamp=self.conv_clamp,
                      use_noise=self.use_noise, fused_modconv=self.fused_modconv,
                      resample_filter=list(self.resample_filter))
        return config


@serializable
class ToRGB(keras.layers.Layer):
    """Modulated 1x1 convolution without demodulation, plus bias: features -> image.

    call(x [N, H, W, in_channels], w [N, w_dim]) -> [N, H, W, img_channels].
    """

    def __init__(self, in_channels, img_channels, w_dim, conv_clamp=None, fused_modconv=False, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = check_positive_int(in_channels, "in_channels", "ToRGB")
        self.img_channels = check_positive_int(img_channels, "img_channels", "ToRGB")
        self.w_dim = check_positive_int(w_dim, "w_dim", "ToRGB")
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.fused_modconv = bool(fused_modconv)
        self.conv = ModulatedConv2D(self.in_channels, self.img_channels, 1, self.w_dim,
                                    demodulate=False,
                                    fused_modconv=self.fused_modconv, name="conv",
                                    dtype=self.dtype_policy)

    def build(self, x_shape=None, w_shape=None):
        self.conv.build()
        self.bias = self.add_weight(name="bias", shape=(self.img_channels,), initializer="zeros")

    def call(self, x, w, fused_modconv=None):
        x = self.conv(x, w, fused_modconv=fused_modconv)
        return bias_act(x, tf.cast(self.bias, x.dtype), clamp=self.conv_clamp)

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, img_channels=self.img_channels,
                      w_dim=self.w_dim, conv_clamp=self.conv_clamp, fused_modconv=self.fused_modconv)
        return config


@serializable
class SynthesisBlock(keras.layers.Layer):
    """One resolution of the synthesis network.

    The 4x4 block starts from the learned `const` [1, 4, 4, out_channels] and
    has one convolution (`conv1`); others upsample with `conv0` and refine
    with `conv1`. 'skip' adds `torgb` of every block to the upsampled image
    of the previous one; 'resnet' adds a 1x1 upsampling `skip` to the features,
    times sqrt(0.5); 'orig' and 'resnet' have `torgb` only in the last block.

    call(x [N, res/2, res/2, in_channels] or None, img or None, ws [N, num_ws_used, w_dim])
        -> (x [N, res, res, out_channels], img [N, res, res, img_channels] or None).
    """

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last,
                 architecture="skip", conv_clamp=None, use_fp16=False, fused_modconv=False,
                 resample_filter=DEFAULT_RESAMPLE_FILTER, **kwargs):
        super().__init__(**kwargs)
        check_architecture(architecture, "SynthesisBlock")
        self.in_channels = int(in_channels)
        self.out_channels = check_positive_int(out_channels, "out_channels", "SynthesisBlock")
        self.w_dim = int(w_dim)
        self.resolution = check_positive_int(resolution, "resolution", "SynthesisBlock")
        self.img_channels = int(img_channels)
        self.is_last = bool(is_last)
        self.architecture = architecture
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.use_fp16 = bool(use_fp16)
        self.fused_modconv = bool(fused_modconv)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        self._filter = setup_filter(list(self.resample_filter))
        # float16 blocks keep float32 weights (mixed precision) and clamp their outputs.
        policy = "mixed_float16" if self.use_fp16 else self.dtype_policy
        common = {"conv_clamp": self.conv_clamp, "fused_modconv": self.fused_modconv, "dtype": policy}
        self.conv0 = None
        if self.in_channels > 0:
            self.conv0 = SynthesisLayer(self.in_channels, self.out_channels, self.w_dim,
                                        self.resolution, up=2,
                                        resample_filter=self.resample_filter, name="conv0",
                                        **common)
        self.conv1 = SynthesisLayer(self.out_channels, self.out_channels, self.w_dim,
                                    self.resolution, name="conv1", **common)
        self.torgb = None
        if self.is_last or architecture == "skip":
            self.torgb = ToRGB(self.out_channels, self.img_channels, self.w_dim, name="torgb",
                               **common)
        self.skip = None
        if self.in_channels > 0 and architecture == "resnet":
            self.skip = EqualizedConv2D(self.out_channels, 1, up=2, use_bias=False,
                                        resample_filter=self.resample_filter,
                                        name="skip", dtype=policy)

    @property
    def num_conv(self):
        return 2 if self.in_channels > 0 else 1

    @property
    def num_torgb(self):
        return 1 if self.torgb is not None else 0

    def build(self, x_shape=None, img_shape=None, ws_shape=None):
        res = self.resolution
        if self.in_channels == 0:
            self.const = self.add_weight(name="const", shape=(1, res, res, self.out_channels),
                                         initializer=keras.initializers.RandomNormal(0.0, 1.0))
        else:
            self.conv0.build()
            if self.skip is not None:
                self.skip.build((None, res // 2, res // 2, self.in_channels))
        self.conv1.build()
        if self.torgb is not None:
            self.torgb.build()

    def call(self, x, img, ws, noise_mode="random", fused_modconv=None, noise_seed=None):
        dtype = tf.float16 if self.use_fp16 else tf.as_dtype(self.compute_dtype)
        layer_args = {"noise_mode": noise_mode, "fused_modconv": fused_modconv,
                      "noise_seed": noise_seed}
        w_index = 0
        if self.in_channels == 0:
            batch = tf.shape(ws)[0]
            x = tf.tile(tf.cast(self.const, dtype), [batch, 1, 1, 1])
        else:
            x = tf.cast(x, dtype)
        if self.in_channels == 0:
            x = self.conv1(x, ws[:, 0], **layer_args)
            w_index = 1
        elif self.architecture == "resnet":
            y = self.skip(x)
            x = self.conv0(x, ws[:, 0], **layer_args)
            x = self.conv1(x, ws[:, 1], **layer_args)
            x = (x + y) * tf.cast(np.sqrt(0.5), dtype)
            w_index = 2
        else:
            x = self.conv0(x, ws[:, 0], **layer_args)
            x = self.conv1(x, ws[:, 1], **layer_args)
            w_index = 2
        if img is not None:
            img = upsample2d(img, self._filter)
        if self.torgb is not None:
            y = tf.cast(self.torgb(x, ws[:, w_index], fused_modconv=fused_modconv), tf.float32)
            img = y if img is None else img + y
        return x, img

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, out_channels=self.out_channels,
                      w_dim=self.w_dim, resolution=self.resolution,
                      img_channels=self.img_channels, is_last=self.is_last,
                      architecture=self.architecture, conv_clamp=self.conv_clamp,
                      use_fp16=self.use_fp16, fused_modconv=self.fused_modconv,
                      resample_filter=list(self.resample_filter))
        return config


@serializable
class SynthesisNetwork(keras.layers.Layer):
    """ws [N, num_ws, w_dim] -> images [N, R, R, img_channels] (float32, about [-1, 1]).

    Blocks `b4`, `b8`, ... `b{R}`; channels min(channel_base // res, channel_max);
    the `num_fp16_res` highest resolutions compute in float16 with `conv_clamp`.
    """

    def __init__(self, w_dim, img_resolution, img_channels, architecture="skip",
                 channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
                 fused_modconv=False, resample_filter=DEFAULT_RESAMPLE_FILTER,
                 **kwargs):
        super().__init__(**kwargs)
        self.w_dim = check_positive_int(w_dim, "w_dim", "SynthesisNetwork")
        self.img_resolution = check_resolution(img_resolution, "SynthesisNetwork")
        self.img_channels = check_positive_int(img_channels, "img_channels", "SynthesisNetwork")
        check_architecture(architecture, "SynthesisNetwork")
        self.architecture = architecture
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.num_fp16_res = int(num_fp16_res)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.fused_modconv = bool(fused_modconv)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        log2 = int(np.log2(self.img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_from = 2 ** max(log2 + 1 - self.num_fp16_res, 3)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_at(res // 2, self.channel_base, self.channel_max) if res > 4 else 0
            block = SynthesisBlock(
                in_channels, channels_at(res, self.channel_base, self.channel_max), self.w_dim,
                res, self.img_channels, is_last=res == self.img_resolution,
                architecture=architecture, conv_clamp=self.conv_clamp,
                use_fp16=self.num_fp16_res > 0 and res >= fp16_from,
                fused_modconv=self.fused_modconv, resample_filter=self.resample_filter, name=f"b{res}", dtype=self.dtype_policy)
            self.num_ws += block.num_conv
            if res == self.img_resolution:
                self.num_ws += block.num_torgb
            # Attributes, not a list: tf.train.Checkpoint does not look into Keras' lists.
            setattr(self, f"b{res}", block)

    @property
    def blocks(self):
        """The synthesis blocks b4, b8, ... in order."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def build(self, ws_shape=None):
        for block in self.blocks:
            block.build()

    def call(self, ws, noise_mode="random", fused_modconv=None, noise_seed=None):
        """noise_seed: optional int32 or int64 [2] making "random" noise a function of the seed."""
        ws = tf.convert_to_tensor(ws)
        if ws.shape.rank != 3 or (ws.shape[1] is not None and ws.shape[1] != self.num_ws) or (
                ws.shape[2] is not None and ws.shape[2] != self.w_dim):
            raise ValueError(f"SynthesisNetwork: ws must be [N, {self.num_ws}, {self.w_dim}]. "
                             f"Received: shape {ws.shape}")
        ws = tf.cast(ws, tf.float32)
        x = img = None
        w_index = 0
        for block in self.blocks:
            count = block.num_conv + block.num_torgb
            x, img = block(x, img, ws[:, w_index:w_index + count], noise_mode=noise_mode,
                           fused_modconv=fused_modconv, noise_seed=noise_seed)
            w_index += block.num_conv
        return tf.cast(img, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(w_dim=self.w_dim, img_resolution=self.img_resolution,
                      img_channels=self.img_channels, architecture=self.architecture,
                      channel_base=self.channel_base, channel_max=self.channel_max,
                      num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
                      fused_modconv=self.fused_modconv,
                      resample_filter=list(self.resample_filter))
        return config


@serializable
class Generator(keras.Model):
    """The StyleGAN2 generator: `mapping` (z, c -> ws) then `synthesis` (ws -> image).

    call(z [N, z_dim], c [N, c_dim] or None, truncation_psi=1, truncation_cutoff=None,
         noise_mode="random") -> images [N, R, R, img_channels] float32 in about [-1, 1].
    The two sub-networks are exposed so that styles can be mixed and w optimized.
    """

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None,
                 synthesis_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.z_dim, self.c_dim = int(z_dim), int(c_dim)
        self.w_dim = check_positive_int(w_dim, "w_dim", "Generator")
        self.img_resolution = check_resolution(img_resolution, "Generator")
        self.img_channels = check_positive_int(img_channels, "img_channels", "Generator")
        if self.z_dim < 0 or self.c_dim < 0 or self.z_dim + self.c_dim == 0:
            raise ValueError(f"Generator: need z_dim >= 0, c_dim >= 0, not both 0. "
                             f"Received: z_dim={z_dim}, c_dim={c_dim}")
        self.mapping_kwargs = dict(mapping_kwargs or {})
        self.synthesis_kwargs = dict(synthesis_kwargs or {})
        self.synthesis = SynthesisNetwork(self.w_dim, self.img_resolution, self.img_channels, name="synthesis", **self.synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(self.z_dim, self.c_dim, self.w_dim, self.num_ws, name="mapping", **self.mapping_kwargs)
        self.mapping.build()
        self.synthesis.build()
        self.built = True  # every variable exists from construction on

    def build_from_config(self, config):
        """Nothing to do: the constructor already created every variable."""

    def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random",
             fused_modconv=None, training=None):
        z, c = self._check_inputs(z, c)
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)

    def _check_inputs(self, z, c):
        z = tf.convert_to_tensor(z, tf.float32)
        if z.shape.rank != 2 or (z.shape[1] is not None and z.shape[1] != self.z_dim):
            raise ValueError(f"Generator: z must be [N, {self.z_dim}]. Received: shape {z.shape}")
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"Generator: this network is conditional: pass c [N, {self.c_dim}]")
            c = tf.convert_to_tensor(c, tf.float32)
            if c.shape.rank != 2 or (c.shape[1] is not None and c.shape[1] != self.c_dim):
                raise ValueError(f"Generator: c must be [N, {self.c_dim}]. Received: shape {c.shape}")
        else:
            c = None
        return z, c

    def get_config(self):
        config = super().get_config()
        config.update(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim,
                      img_resolution=self.img_resolution, img_channels=self.img_channels,
                      mapping_kwargs=self.mapping_kwargs,
                      synthesis_kwargs=self.synthesis_kwargs)
        return config
