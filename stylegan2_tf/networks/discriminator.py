"""StyleGAN2 discriminator: residual / skip / plain blocks, minibatch stddev, projection head.

Karras et al. 2020 (arXiv 1912.04958), sec. 4.1 (the residual discriminator)
and appendix B; semantics of the official NVlabs/stylegan2 `D_stylegan2`,
NVlabs/stylegan2-ada `D_main` and stylegan2-ada-pytorch `Discriminator`.
Layout NHWC. Sublayers carry the official roles as names (`b{res}/fromrgb`,
`conv0`, `conv1`, `skip`; `b4/conv`, `fc`, `out`; `mapping/embed`, `fc{i}`),
each holding `weight` (and `bias`), so converting an official network is a
table of names.
"""

import keras
import numpy as np
import tensorflow as tf

from stylegan2_tf.networks.layers import (
    DEFAULT_RESAMPLE_FILTER,
    EqualizedConv2D,
    EqualizedDense,
    MappingNetwork,
    channels_at,
    check_architecture,
    check_conditioning,
    check_positive_int,
    check_resolution,
    serializable,
)
from stylegan2_tf.ops import downsample2d, setup_filter


@serializable
class MinibatchStdDev(keras.layers.Layer):
    """Appends the minibatch standard deviation as `num_channels` new feature maps.

    [N, H, W, C] -> [N, H, W, C + num_channels]. The batch is split into
    N // G groups of G = min(group_size, N) samples (G = N when group_size is
    None); sample i belongs to group i % (N // G), as with the official reshape
    to [G, N // G, ...]. For every group and every block of C // num_channels
    consecutive channels, the standard deviation over the G samples (float32,
    1e-8 added to the variance) is averaged over pixels and channels, and the
    result is broadcast to all the group's samples and pixels. N must be a
    multiple of G.
    """

    def __init__(self, group_size=4, num_channels=1, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.group_size = None if group_size is None else check_positive_int(group_size, "group_size", name)
        self.num_channels = check_positive_int(num_channels, "num_channels", name)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4 or channels is None or channels % self.num_channels:
            raise ValueError(f"{type(self).__name__}: input must be [N, H, W, C] with C known and a "
                             f"multiple of num_channels={self.num_channels}. Received: shape "
                             f"{tuple(input_shape)}")

    def call(self, x):
        shape = tf.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        f = self.num_channels
        c = int(x.shape[-1]) // f
        g = n if self.group_size is None else tf.minimum(self.group_size, n)
        check = tf.debugging.Assert(
            tf.equal(n % tf.maximum(g, 1), 0),
            [(f"MinibatchStdDev: the batch size must be a multiple of the group size "
              f"min(group_size={self.group_size}, batch size). Batch size:"), n, "group size:", g])
        with tf.control_dependencies([check]):
            y = tf.reshape(tf.cast(x, tf.float32), [g, -1, h, w, f, c])  # [G, M, H, W, F, c]
        y = y - tf.reduce_mean(y, axis=0, keepdims=True)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # [M, H, W, F, c]
        y = tf.reduce_mean(y, axis=[1, 2, 4])  # [M, F]
        y = tf.cast(tf.reshape(y, [-1, 1, 1, f]), x.dtype)
        y = tf.tile(y, [g, h, w, 1])  # [N, H, W, F]: sample i gets group i % M
        return tf.concat([x, y], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + self.num_channels
        return tuple(input_shape[:-1]) + (channels,)

    def get_config(self):
        config = super().get_config()
        config.update(group_size=self.group_size, num_channels=self.num_channels)
        return config


@serializable
class DiscriminatorBlock(keras.layers.Layer):
    """One resolution of the discriminator, `resolution` -> `resolution // 2`.

    Layers: `fromrgb` (1x1 conv + lrelu, in every block for 'skip', only in the
    first block, in_channels == 0, otherwise), `conv0` (3x3, tmp_channels),
    `conv1` (3x3, downsample by 2, out_channels) and for 'resnet' `skip`
    (1x1, downsample by 2, linear, no bias), merged as (x + skip) * sqrt(1/2).
    With use_fp16 the block computes in float16 (weights stay float32);
    `conv_clamp` clamps every convolution but `skip`.

    call(x [N, res, res, in_channels] or None (first block), img [N, res, res, img_channels] or None)
        -> (x [N, res/2, res/2, out_channels], img [N, res/2, res/2, img_channels] float32 for
        'skip', else None).
    """

    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels,
                 architecture="resnet", activation="lrelu", conv_clamp=None, use_fp16=False,
                 resample_filter=DEFAULT_RESAMPLE_FILTER, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.in_channels = int(in_channels)
        self.tmp_channels = check_positive_int(tmp_channels, "tmp_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        if self.in_channels not in (0, self.tmp_channels):
            raise ValueError(f"{name}: in_channels must be 0 (first block) or tmp_channels="
                             f"{self.tmp_channels}. Received: in_channels={in_channels}")
        self.resolution = check_positive_int(resolution, "resolution", name)
        if self.resolution < 2 or self.resolution % 2:
            raise ValueError(f"{name}: resolution must be even. Received: resolution={resolution}")
        self.img_channels = check_positive_int(img_channels, "img_channels", name)
        self.architecture = check_architecture(architecture, name)
        self.activation = activation
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.use_fp16 = bool(use_fp16)
        self.resample_filter = tuple(float(v) for v in resample_filter)
        self._filter = setup_filter(list(self.resample_filter))
        # float16 blocks keep float32 weights (mixed precision).
        policy = "mixed_float16" if self.use_fp16 else self.dtype_policy
        conv = {"activation": activation, "conv_clamp": self.conv_clamp, "dtype": policy}
        self.fromrgb = None
        if self.in_channels == 0 or architecture == "skip":
            self.fromrgb = EqualizedConv2D(self.tmp_channels, 1, name="fromrgb", **conv)
        self.conv0 = EqualizedConv2D(self.tmp_channels, 3, name="conv0", **conv)
        self.conv1 = EqualizedConv2D(self.out_channels, 3, down=2,
                                     resample_filter=self.resample_filter, name="conv1", **conv)
        self.skip = None
        if architecture == "resnet":
            self.skip = EqualizedConv2D(self.out_channels, 1, down=2, use_bias=False,
                                        resample_filter=self.resample_filter,
                                        name="skip", dtype=policy)

    def build(self, x_shape=None, img_shape=None):
        res = self.resolution
        if self.fromrgb is not None:
            self.fromrgb.build((None, res, res, self.img_channels))
        self.conv0.build((None, res, res, self.tmp_channels))
        self.conv1.build((None, res, res, self.tmp_channels))
        if self.skip is not None:
            self.skip.build((None, res, res, self.tmp_channels))

    def call(self, x, img):
        dtype = tf.float16 if self.use_fp16 else tf.as_dtype(self.compute_dtype)
        if x is None and self.fromrgb is None:
            raise ValueError(f"{self.name}: x is required (in_channels={self.in_channels})")
        if x is not None:
            x = tf.cast(x, dtype)
        if self.fromrgb is not None:
            if img is None:
                raise ValueError(f"{self.name}: img is required (architecture="
                                 f"{self.architecture!r}, in_channels={self.in_channels})")
            y = self.fromrgb(tf.cast(img, dtype))
            x = y if x is None else x + y
            # The image passed on stays float32 (official TF1 networks).
            img = (downsample2d(tf.cast(img, tf.float32), self._filter)
                   if self.architecture == "skip" else None)
        if self.skip is not None:
            y = self.skip(x)
            x = self.conv1(self.conv0(x))
            x = (x + y) * tf.cast(np.sqrt(0.5), dtype)
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, tmp_channels=self.tmp_channels,
                      out_channels=self.out_channels, resolution=self.resolution,
                      img_channels=self.img_channels, architecture=self.architecture,
                      activation=self.activation, conv_clamp=self.conv_clamp,
                      use_fp16=self.use_fp16, resample_filter=list(self.resample_filter))
        return config


@serializable
class DiscriminatorEpilogue(keras.layers.Layer):
    """The final `resolution` x `resolution` (4x4) layers, computed in float32.

    Layers: `fromrgb` ('skip' only), `mbstd` (MinibatchStdDev; none when
    mbstd_num_channels == 0), `conv` (3x3 + lrelu), `fc` (dense on the
    NCHW-flattened features + lrelu, in_channels outputs) and `out` (linear,
    max(cmap_dim, 1) outputs).

    Conditioning with cmap [N, cmap_dim] (cmap_dim > 0): the logit is the
    projection sum(out * cmap), scaled by 1 / sqrt(cmap_dim) for
    conditioning="ada" (stylegan2-ada, where cmap is the mapped label) and
    unscaled for "official" (NVlabs/stylegan2 D_stylegan2, where cmap is the
    label itself).

    call(x [N, res, res, in_channels], img [N, res, res, img_channels] or None, cmap or None)
        -> logits [N, 1] float32.
    """

    def __init__(self, in_channels, cmap_dim=0, resolution=4, img_channels=3,
                 architecture="resnet", mbstd_group_size=4, mbstd_num_channels=1,
                 activation="lrelu", conv_clamp=None, conditioning="ada", **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.cmap_dim = int(cmap_dim)
        if self.cmap_dim < 0:
            raise ValueError(f"{name}: cmap_dim must be >= 0. Received: cmap_dim={cmap_dim}")
        self.resolution = check_positive_int(resolution, "resolution", name)
        self.img_channels = check_positive_int(img_channels, "img_channels", name)
        self.architecture = check_architecture(architecture, name)
        self.mbstd_group_size = None if mbstd_group_size is None else int(mbstd_group_size)
        self.mbstd_num_channels = int(mbstd_num_channels)
        self.activation = activation
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.conditioning = check_conditioning(conditioning, name)
        policy = self.dtype_policy
        self.fromrgb = None
        if architecture == "skip":
            self.fromrgb = EqualizedConv2D(self.in_channels, 1, activation=activation,
                                           conv_clamp=self.conv_clamp, name="fromrgb",
                                           dtype=policy)
        self.mbstd = None
        if self.mbstd_num_channels > 0:
            self.mbstd = MinibatchStdDev(self.mbstd_group_size, self.mbstd_num_channels,
                                         name="mbstd", dtype=policy)
        self.conv = EqualizedConv2D(self.in_channels, 3, activation=activation,
                                    conv_clamp=self.conv_clamp, name="conv", dtype=policy)
        self.fc = EqualizedDense(self.in_channels, activation=activation, flatten=True,
                                 name="fc", dtype=policy)
        self.out = EqualizedDense(max(self.cmap_dim, 1), name="out", dtype=policy)

    def build(self, x_shape=None, img_shape=None, cmap_shape=None):
        res, channels = self.resolution, self.in_channels
        if self.fromrgb is not None:
            self.fromrgb.build((None, res, res, self.img_channels))
        self.conv.build((None, res, res, channels + max(self.mbstd_num_channels, 0)))
        self.fc.build((None, res, res, channels))
        self.out.build((None, channels))

    def call(self, x, img=None, cmap=None):
        x = tf.cast(x, tf.float32)
        if self.fromrgb is not None:
            if img is None:
                raise ValueError(f"{self.name}: img is required for architecture='skip'")
            x = x + self.fromrgb(tf.cast(img, tf.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x)))
        if self.cmap_dim > 0:
            if cmap is None:
                raise ValueError(f"{self.name}: cmap [N, {self.cmap_dim}] is required")
            x = tf.reduce_sum(x * tf.cast(cmap, x.dtype), axis=1, keepdims=True)
            if self.conditioning == "ada":
                x = x * (1 / np.sqrt(self.cmap_dim))
        return x

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, cmap_dim=self.cmap_dim,
                      resolution=self.resolution, img_channels=self.img_channels,
                      architecture=self.architecture, mbstd_group_size=self.mbstd_group_size,
                      mbstd_num_channels=self.mbstd_num_channels, activation=self.activation,
                      conv_clamp=self.conv_clamp, conditioning=self.conditioning)
        return config


@serializable
class Discriminator(keras.Model):
    """The StyleGAN2 discriminator: images (and labels) -> logits [N, 1] float32.

    call(img) or call((img, c)) or call(img, c), with img [N, R, R, img_channels]
    (about [-1, 1]) and c [N, c_dim] (required iff c_dim > 0).

    Blocks `b{R}` ... `b8` halve the resolution, `b4` is the epilogue; the
    channels at resolution res are min(channel_base // res, channel_max) (the
    official fmap_base rule with channel_base = 2 * fmap_base). The
    `num_fp16_res` highest resolutions compute in float16.

    conditioning (c_dim > 0; the generator's word and values, layers.CONDITIONINGS):
      "ada": stylegan2-ada. c goes through `mapping` (a MappingNetwork with
        z_dim=0: `embed`, 2nd-moment normalization, then mapping_kwargs
        ["num_layers"] lrelu layers) into cmap [N, cmap_dim] (default: the 4x4
        channels); logit = sum(out * cmap) / sqrt(cmap_dim). Defaults are
        those of stylegan2-ada-pytorch (8 layers, lr_multiplier 0.01);
        TF1 stylegan2-ada pickles use num_layers=0, lr_multiplier=0.1.
      "official": NVlabs/stylegan2 D_stylegan2. `out` has c_dim outputs and
        logit = sum(out * c), no mapping, no scaling.
    mbstd_group_size None uses the whole minibatch as one group;
    mbstd_num_channels=0 disables the minibatch stddev layer.
    """

    def __init__(self, c_dim, img_resolution, img_channels, architecture="resnet",
                 channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
                 cmap_dim=None, mbstd_group_size=4, mbstd_num_channels=1, conditioning="ada",
                 mapping_kwargs=None, resample_filter=DEFAULT_RESAMPLE_FILTER,
                 **kwargs):
        super().__init__(**kwargs)
        self.c_dim = int(c_dim)
        if self.c_dim < 0:
            raise ValueError(f"Discriminator: c_dim must be >= 0. Received: c_dim={c_dim}")
        self.img_resolution = check_resolution(img_resolution, "Discriminator")
        self.img_channels = check_positive_int(img_channels, "img_channels", "Discriminator")
        self.architecture = check_architecture(architecture, "Discriminator")
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.num_fp16_res = int(num_fp16_res)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.cmap_dim = None if cmap_dim is None else int(cmap_dim)
        self.mbstd_group_size = None if mbstd_group_size is None else int(mbstd_group_size)
        self.mbstd_num_channels = int(mbstd_num_channels)
        self.conditioning = check_conditioning(conditioning, "Discriminator")
        self.mapping_kwargs = dict(mapping_kwargs or {})
        self.resample_filter = tuple(float(v) for v in resample_filter)

        log2 = int(np.log2(self.img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]

        def channels(res):
            ch = channels_at(res, self.channel_base, self.channel_max)
            if ch < 1:
                raise ValueError(f"Discriminator: channel_base={self.channel_base} gives no channels "
                                 f"at resolution {res}; increase channel_base")
            return ch

        if self.c_dim == 0:
            head_dim = 0
        elif conditioning == "official":
            if self.cmap_dim not in (None, self.c_dim) or self.mapping_kwargs:
                raise ValueError("Discriminator: conditioning='official' projects onto c itself; "
                                 "cmap_dim and mapping_kwargs do not apply. Received: "
                                 f"cmap_dim={cmap_dim}, mapping_kwargs={self.mapping_kwargs}")
            head_dim = self.c_dim
        else:
            head_dim = channels(4) if self.cmap_dim is None else self.cmap_dim
            check_positive_int(head_dim, "cmap_dim", "Discriminator")

        fp16_from = max(2 ** (log2 + 1 - self.num_fp16_res), 8)
        for res in self.block_resolutions:
            tmp = channels(res)
            block = DiscriminatorBlock(
                tmp if res < self.img_resolution else 0, tmp, channels(res // 2), res,
                self.img_channels, architecture=architecture, conv_clamp=self.conv_clamp,
                use_fp16=self.num_fp16_res > 0 and res >= fp16_from,
                resample_filter=self.resample_filter, name=f"b{res}",
                dtype=self.dtype_policy)
            block.build()
            # Attributes, not a list: tf.train.Checkpoint does not look into Keras' lists.
            setattr(self, f"b{res}", block)
        self.mapping = None
        if self.c_dim > 0 and conditioning == "ada":
            self.mapping = MappingNetwork(0, self.c_dim, head_dim, None, w_avg_beta=None,
                                          name="mapping", dtype=self.dtype_policy,
                                          **self.mapping_kwargs)
            self.mapping.build()
        self.b4 = DiscriminatorEpilogue(
            channels(4), cmap_dim=head_dim, resolution=4, img_channels=self.img_channels,
            architecture=architecture, mbstd_group_size=self.mbstd_group_size,
            mbstd_num_channels=self.mbstd_num_channels, conv_clamp=self.conv_clamp,
            conditioning=conditioning, name="b4", dtype=self.dtype_policy)
        self.b4.build()
        self.built = True

    @property
    def blocks(self):
        """The blocks b{R}, ..., b8 from the image resolution down (the epilogue is b4)."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    @property
    def block_layers(self):
        """The layers of the blocks b{R}, ..., b8 in stylegan2-ada-pytorch's layer order (each
        block's fromrgb, conv0, conv1, skip, where it has them): Freeze-D (--freezed=N) freezes
        the first N. The epilogue b4 and the label mapping are not among them."""
        return [layer for block in self.blocks
                for layer in (block.fromrgb, block.conv0, block.conv1, block.skip) if layer is not None]

    def call(self, inputs, c=None, training=None):
        if isinstance(inputs, (tuple, list)):
            if len(inputs) != 2 or c is not None:
                raise ValueError("Discriminator: pass img, (img, c) or img and c=... Received: "
                                 f"a {type(inputs).__name__} of {len(inputs)} inputs"
                                 + (" and c" if c is not None else ""))
            img, c = inputs
        else:
            img = inputs
        img, c = self._check_inputs(img, c)
        x = None
        for block in self.blocks:
            x, img = block(x, img)
        cmap = None
        if self.c_dim > 0:
            cmap = c if self.mapping is None else self.mapping(None, c)
        return tf.cast(self.b4(x, img, cmap), tf.float32)

    def _check_inputs(self, img, c):
        img = tf.convert_to_tensor(img)
        expected = (self.img_resolution, self.img_resolution, self.img_channels)
        if img.shape.rank != 4 or any(
                got is not None and got != want for got, want in zip(img.shape[1:], expected)):
            raise ValueError(f"Discriminator: img must be [N, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}] (NHWC). Received: shape {img.shape}")
        img = tf.cast(img, tf.float32)
        if c is not None:
            c = tf.convert_to_tensor(c)
            if c.shape.rank != 2 or (c.shape[1] is not None and c.shape[1] != self.c_dim):
                raise ValueError(f"Discriminator: c must be [N, {self.c_dim}]. "
                                 f"Received: shape {c.shape}")
        if self.c_dim == 0:
            return img, None
        if c is None:
            raise ValueError(f"Discriminator: this network is conditional (c_dim={self.c_dim}): "
                             f"pass (img, c) with c [N, {self.c_dim}]")
        return img, tf.cast(c, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(c_dim=self.c_dim, img_resolution=self.img_resolution,
                      img_channels=self.img_channels, architecture=self.architecture,
                      channel_base=self.channel_base, channel_max=self.channel_max,
                      num_fp16_res=self.num_fp16_res, conv_clamp=self.conv_clamp,
                      cmap_dim=self.cmap_dim, mbstd_group_size=self.mbstd_group_size,
                      mbstd_num_channels=self.mbstd_num_channels, conditioning=self.conditioning,
                      mapping_kwargs=self.mapping_kwargs,
                      resample_filter=list(self.resample_filter))
        return config
