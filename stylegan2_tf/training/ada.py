"""Adaptive discriminator augmentation (Karras et al. 2020, arXiv 2006.06676): the probability p
with which D's inputs are augmented, and its adjustment during training.

D sees every image (reals and fakes, in all four phases) through stylegan2_tf.augment's
AugmentPipe with probability multiplier p. Modes, as stylegan2-ada-pytorch's --aug:
  "ada"    p starts at TrainingConfig.augment_p (0 on a fresh run) and, every `ada_interval`
           minibatches, moves by sign(r_t - ada_target) * batch * ada_interval / (ada_kimg * 1000),
           never below 0 (p goes 0 -> 1 in ada_kimg thousand images), where the overfitting
           heuristic r_t = E[sign(D(x))] is the mean sign of D's logits on the augmented reals
           over those minibatches (D main and R1 phases, every replica and worker);
  "fixed"  p stays TrainingConfig.augment_p;
  "noaug"  no augmentation.
p, the sums of r_t's interval so far and the last r_t are variables of the training state:
they are checkpointed, so a resumed run adjusts p exactly as an uninterrupted one.
"""

import math

import numpy as np
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe

AUGMENT_MODES = ("ada", "fixed", "noaug")


class AdaptiveAugment:
    """The augmentation of D's inputs under TrainingConfig `config`, its variables made in
    `strategy`'s scope."""

    def __init__(self, config, strategy):
        if config.augment not in AUGMENT_MODES:
            raise ValueError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {config.augment!r}")
        if not (math.isfinite(config.augment_p) and config.augment_p >= 0):
            raise ValueError(f"augmentation probability p must be >= 0, got {config.augment_p}")
        self.config = config
        self.pipe = None  # under XLA, with the padding of the largest transform (static shapes)
        if config.augment != "noaug":
            self.pipe = AugmentPipe(config.augpipe, static_shapes=config.xla)
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        with strategy.scope():
            self.p = tf.Variable(config.augment_p if self.pipe else 0.0, dtype=tf.float32,
                                 trainable=False, aggregation=first, name="augment_p")
            # [sum of sign(D(x)), number of logits] since the last adjustment.
            self.signs = tf.Variable([0.0, 0.0], dtype=tf.float64, trainable=False,
                                     aggregation=first, name="ada_signs")
            self.r_t = tf.Variable(np.nan, dtype=tf.float64, trainable=False, aggregation=first,
                                   name="ada_r_t")

    @property
    def adaptive(self):
        return self.config.augment == "ada"

    def checkpoint_items(self):
        """What the training state's checkpoint holds of the augmentation."""
        return {"augment_p": self.p, "ada_signs": self.signs, "ada_r_t": self.r_t}

    def augmenter(self, key):
        """images [N, H, W, C] -> augmented images with the current p and the random key `key`
        (int64 [2]); None without augmentation. For replica context (inside a phase)."""
        if self.pipe is None:
            return None
        return lambda images: self.pipe(images, self.p, key)

    def record(self, sign_sum, count):
        """Adds D's logits on reals of one phase (their summed signs, their number) to r_t's sums."""
        if self.adaptive:
            self.signs.assign_add(tf.constant([sign_sum, count], tf.float64))

    def adjust(self, steps_done):
        """After minibatch number `steps_done` (1, 2, ...): every ada_interval-th, p moves toward
        r_t = ada_target and r_t's sums restart."""
        config = self.config
        if not self.adaptive or steps_done % config.ada_interval:
            return
        sign_sum, count = self.signs.numpy()
        if count == 0:
            return
        r_t = sign_sum / count
        step = np.sign(r_t - config.ada_target) * config.batch * config.ada_interval / (config.ada_kimg * 1000)
        self.p.assign(tf.maximum(self.p + tf.cast(step, tf.float32), 0.0))
        self.r_t.assign(r_t)
        self.signs.assign([0.0, 0.0])

    def status(self):
        """{"augment": p, "r_t": the last r_t (None before the first adjustment)} as floats; {} without
        augmentation."""
        if self.pipe is None:
            return {}
        r_t = float(self.r_t.numpy())
        return {"augment": float(self.p.numpy()), "r_t": None if math.isnan(r_t) else r_t}
