"""Adaptive discriminator augmentation (StyleGAN2-ADA, Karras et al. 2020) for NHWC images.

`AugmentPipe(pipeline, **overrides)(images, p, key)` is a differentiable TensorFlow port of
NVlabs/stylegan2-ada-pytorch `training/augment.py`; PIPELINES holds its named pipelines
(blit, geom, color, filter, noise, cutout, bg, bgc, bgcf, bgcfn, bgcfnc). Modules:
draws (random draws and keys), matrices, geometry (+ sampling), color, filtering, corruption,
pipeline.
"""

from stylegan2_tf.augment.pipeline import DEFAULTS, PIPELINES, AugmentPipe

__all__ = ["DEFAULTS", "PIPELINES", "AugmentPipe"]
