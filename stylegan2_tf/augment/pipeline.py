"""AugmentPipe: the adaptive discriminator augmentation pipeline of StyleGAN2-ADA.

A TensorFlow port of `AugmentPipe` of NVlabs/stylegan2-ada-pytorch `training/augment.py`
(Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"), with the
named pipelines of its `train.py` (`augpipe_specs`). Its option names, defaults, probabilities
and order of operations are the reference's: geometric transforms (pixel blitting and general
geometric), colour, image-space filtering, noise, cutout. Images are NHWC; every random value is
drawn per image from a stateless key, so the result is a pure function of (images, p, key).
"""

import tensorflow as tf

from stylegan2_tf.augment import color, corruption, filtering, geometry
from stylegan2_tf.augment.draws import draw_names, draw_raw
from stylegan2_tf.augment.matrices import is_identity

# Options and their defaults (the reference's AugmentPipe arguments): probability multipliers
# (0 disables a transform) and the ranges of the random parameters.
DEFAULTS = {
    # Pixel blitting.
    "xflip": 0.0, "rotate90": 0.0, "xint": 0.0,
    "xint_max": 0.125,  # range of integer translation, relative to the image size
    # General geometric transformations.
    "scale": 0.0, "rotate": 0.0, "aniso": 0.0, "xfrac": 0.0,
    "scale_std": 0.2,  # log2 standard deviation of isotropic scaling
    "rotate_max": 1.0,  # range of arbitrary rotation, 1 = full circle
    "aniso_std": 0.2,  # log2 standard deviation of anisotropic scaling
    "xfrac_std": 0.125,  # standard deviation of fractional translation, relative to the image size
    # Colour transformations.
    "brightness": 0.0, "contrast": 0.0, "lumaflip": 0.0, "hue": 0.0, "saturation": 0.0,
    "brightness_std": 0.2,  # standard deviation of the brightness offset
    "contrast_std": 0.5,  # log2 standard deviation of contrast
    "hue_max": 1.0,  # range of hue rotation, 1 = full circle
    "saturation_std": 1.0,  # log2 standard deviation of saturation
    # Image-space filtering.
    "imgfilter": 0.0,
    "imgfilter_bands": (1.0, 1.0, 1.0, 1.0),  # probability multipliers of the 4 frequency bands
    "imgfilter_std": 1.0,  # log2 standard deviation of a band's amplification
    # Image-space corruptions.
    "noise": 0.0, "cutout": 0.0,
    "noise_std": 0.1,  # standard deviation of additive RGB noise
    "cutout_size": 0.5,  # side of the cutout rectangle, relative to the image size
}

_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
PIPELINES = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": {"imgfilter": 1},
    "noise": {"noise": 1},
    "cutout": {"cutout": 1},
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}
TRANSFORMS = geometry.TRANSFORMS + color.TRANSFORMS + ("imgfilter",) + corruption.TRANSFORMS


def _options(pipeline, overrides):
    """The full option dict of a named pipeline (None: all disabled) with `overrides` applied."""
    if pipeline is not None and pipeline not in PIPELINES:
        raise ValueError(f"Unknown augmentation pipeline {pipeline!r}; expected one of "
                         f"{', '.join(PIPELINES)} or None")
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown AugmentPipe option(s) {', '.join(unknown)}; valid options: "
                         f"{', '.join(DEFAULTS)}")
    options = {**DEFAULTS, **PIPELINES.get(pipeline, {}), **overrides}
    try:
        bands = tuple(float(b) for b in options["imgfilter_bands"])
        options = {name: float(value) for name, value in options.items() if name != "imgfilter_bands"}
    except (TypeError, ValueError) as error:
        raise ValueError(f"AugmentPipe options must be numbers ({error})") from None
    if len(bands) != filtering.NUM_BANDS:
        raise ValueError(f"imgfilter_bands needs {filtering.NUM_BANDS} numbers, got {len(bands)}")
    return {**options, "imgfilter_bands": bands}


def _where_changed(images, identity, transform, static_shapes=False):
    """transform() for the images where identity [N] is False, the images themselves elsewhere;
    transform() runs only when some image needs it (always with static_shapes: XLA cannot
    compile the second-order gradient of the tf.cond that skips it)."""
    def changed():
        return tf.where(identity[:, tf.newaxis, tf.newaxis, tf.newaxis], images, transform())

    if static_shapes:
        return changed()
    return tf.cond(tf.reduce_all(identity), lambda: images, changed)


class AugmentPipe:
    """Differentiable augmentation of NHWC image batches with per-image random parameters.

    `AugmentPipe(pipeline="bgc", static_shapes=False, **overrides)`: a named pipeline of
    PIPELINES (None: every transform off) with options of DEFAULTS overridden by keyword.
    static_shapes: resample geometric transforms in a fixed-size padded image, which XLA
    (jit_compile) needs; the result is the same, the work larger (see geometry.transform).

    `pipe(images, p, key)` augments images [N, H, W, C] (C = 1 or 3 for colour transforms; any
    float dtype, computed in float32, float64 kept) with the overall probability multiplier p
    (float scalar or tf.Variable) and a stateless random key (int32/int64 [2]); it returns the
    images' dtype and shape. It equals `pipe.apply(images, p, pipe.draw(shape, key))`: `draw`
    gives the raw random numbers and `apply` the deterministic rest, so tests and cross-checks
    can supply their own draws. p = 0 (or a transform's multiplier 0) returns the input bits.
    Gradients with respect to the images exist to any order. The methods have no Python control
    flow on tensors, so tf.function traces them without AutoGraph (several times faster).
    """

    def __init__(self, pipeline="bgc", static_shapes=False, **overrides):
        self.static_shapes = bool(static_shapes)
        self.options = _options(pipeline, overrides)
        self.transforms = tuple(t for t in TRANSFORMS if self.options[t] > 0)

    def get_config(self):
        """The arguments that rebuild this pipe: AugmentPipe(**pipe.get_config())."""
        options = {**self.options, "imgfilter_bands": list(self.options["imgfilter_bands"])}
        return {"pipeline": None, "static_shapes": self.static_shapes, **options}

    @tf.autograph.experimental.do_not_convert
    def draw(self, shape, key):
        """Raw random draws {name: float32 tensor} of the enabled transforms (see draws.DRAWS).

        shape: [N, H, W, C] of the images (ints or int32 scalar tensors; C a Python int).
        key: stateless random key, int32 or int64 [2].
        """
        transforms = self.transforms
        if shape[3] == 1:  # the reference skips hue and saturation for single-channel images
            transforms = tuple(t for t in transforms if t not in ("hue", "saturation"))
        return draw_raw(draw_names(transforms), shape, key)

    @tf.autograph.experimental.do_not_convert
    def apply(self, images, p, draws):
        """Augments images [N, H, W, C] with probability multiplier p and the raw draws of `draw`."""
        images = tf.convert_to_tensor(images)
        if not images.dtype.is_floating:
            raise TypeError(f"AugmentPipe: images must be floating point, got {images.dtype.name}")
        x = tf.cast(images, tf.float64 if images.dtype == tf.float64 else tf.float32)
        p = tf.cast(p, tf.float32)
        shape = tf.shape(x)
        height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)

        g_inv = geometry.inverse_matrix(draws, self.options, p, width, height)
        if g_inv is not None:
            g_inv = tf.cast(g_inv, x.dtype)
            x = _where_changed(x, is_identity(g_inv),
                               lambda: geometry.transform(x, g_inv, self.static_shapes), self.static_shapes)
        c = color.color_matrix(draws, self.options, p, x.shape[-1])
        if c is not None:
            c = tf.cast(c, x.dtype)
            x = _where_changed(x, is_identity(c), lambda: color.apply_color(x, c), self.static_shapes)
        if self.options["imgfilter"] > 0:
            gains, identity = filtering.band_gains(draws, self.options, p)
            x = _where_changed(x, identity, lambda: filtering.apply_filter(x, gains), self.static_shapes)
        if self.options["noise"] > 0:
            x = corruption.add_noise(x, draws, self.options, p)
        if self.options["cutout"] > 0:
            x = corruption.cutout(x, draws, self.options, p)
        return tf.cast(x, images.dtype)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, images, p, key):
        """apply(images, p, draw(shape of images, key)): see the class docstring."""
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4 or images.shape[-1] is None:
            raise ValueError(f"AugmentPipe: images must be [N, H, W, C] with a static C, got {images.shape}")
        shape = tf.shape(images)
        return self.apply(images, p, self.draw([shape[0], shape[1], shape[2], images.shape[-1]], key))
