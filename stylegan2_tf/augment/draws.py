"""The raw random draws of the augmentation pipeline and the keys they come from.

A draw is a float32 tensor of raw random numbers, uniform in [0, 1) or standard normal, in the
format of stylegan2-ada-pytorch `training/augment.py`: the value of a transform (`xflip`,
`scale`, ...) and its gate (`xflip_gate`, ...: the transform applies to image i where
gate[i] < multiplier * p). DRAWS lists them in the order in which the reference calls
torch.rand / torch.randn, so that the draws of a reference run map one to one onto these names;
`imgfilter` and `imgfilter_gate` hold the reference's 4 per-band draws as columns (it draws
value, gate for band 0, then for band 1, ...) and `noise_field` is NHWC where the reference's
is NCHW.

Every draw has its own key, `stateless_fold_in(key, its index in DRAWS)`, so it does not depend
on which other transforms are enabled. Draws are Philox (`tf.random.stateless_*`), so they are
a pure function of the key, the same on CPUs and GPUs.
"""

import tensorflow as tf

RNG_ALG = "philox"
IMAGE = "image"  # per-image shape [H, W, C]

# (name, transform, distribution, per-image shape), in the reference's drawing order.
DRAWS = (
    ("xflip", "xflip", "uniform", ()),
    ("xflip_gate", "xflip", "uniform", ()),
    ("rotate90", "rotate90", "uniform", ()),
    ("rotate90_gate", "rotate90", "uniform", ()),
    ("xint", "xint", "uniform", (2,)),
    ("xint_gate", "xint", "uniform", ()),
    ("scale", "scale", "normal", ()),
    ("scale_gate", "scale", "uniform", ()),
    ("rotate_pre", "rotate", "uniform", ()),
    ("rotate_pre_gate", "rotate", "uniform", ()),
    ("aniso", "aniso", "normal", ()),
    ("aniso_gate", "aniso", "uniform", ()),
    ("rotate_post", "rotate", "uniform", ()),
    ("rotate_post_gate", "rotate", "uniform", ()),
    ("xfrac", "xfrac", "normal", (2,)),
    ("xfrac_gate", "xfrac", "uniform", ()),
    ("brightness", "brightness", "normal", ()),
    ("brightness_gate", "brightness", "uniform", ()),
    ("contrast", "contrast", "normal", ()),
    ("contrast_gate", "contrast", "uniform", ()),
    ("lumaflip", "lumaflip", "uniform", ()),
    ("lumaflip_gate", "lumaflip", "uniform", ()),
    ("hue", "hue", "uniform", ()),
    ("hue_gate", "hue", "uniform", ()),
    ("saturation", "saturation", "normal", ()),
    ("saturation_gate", "saturation", "uniform", ()),
    ("imgfilter", "imgfilter", "normal", (4,)),
    ("imgfilter_gate", "imgfilter", "uniform", (4,)),
    ("noise", "noise", "normal", ()),
    ("noise_gate", "noise", "uniform", ()),
    ("noise_field", "noise", "normal", IMAGE),
    ("cutout_gate", "cutout", "uniform", ()),
    ("cutout_center", "cutout", "uniform", (2,)),
)


def draw_names(transforms):
    """Names of the draws of the given transforms, in DRAWS order."""
    return [name for name, transform, _, _ in DRAWS if transform in transforms]


def draw_raw(names, shape, key):
    """Raw draws for a batch: {name: float32 [N, *per-image shape]} for each of `names`.

    Args:
        names: names of DRAWS.
        shape: [N, H, W, C] of the images (ints or int32 scalar tensors).
        key: stateless random key, int32 or int64 [2].
    """
    key = tf.convert_to_tensor(key)
    batch = shape[0]
    result = {}
    for index, (name, _, distribution, per_image) in enumerate(DRAWS):
        if name not in names:
            continue
        per_image = list(shape[1:]) if per_image == IMAGE else list(per_image)
        seed = tf.random.experimental.stateless_fold_in(key, index, alg=RNG_ALG)
        sample = tf.random.stateless_uniform if distribution == "uniform" else tf.random.stateless_normal
        result[name] = sample(tf.stack([batch, *per_image]), seed=seed, alg=RNG_ALG)
    return result


def gate(draws, name, probability, value, identity):
    """`value` where image i is selected (draws[name + '_gate'][i] < probability), else `identity`.

    value: [N, ...] float32; probability: float32 scalar; identity: number.
    """
    selected = draws[name + "_gate"] < probability
    for _ in range(value.shape.rank - selected.shape.rank):
        selected = selected[..., tf.newaxis]
    return tf.where(selected, value, tf.cast(identity, value.dtype))
