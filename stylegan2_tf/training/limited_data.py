"""Training on few images, measured without downloaded weights: the experiment behind ADA's
"it helps" test and scripts/ada_experiment.py.

Tiny networks train on the first `count` of the built-in digits, with and without adaptive
augmentation, for the same number of images. Each run is measured by
  - D's overfitting: r_t = E[sign(D(x))] on its training images and on held-out digits, and
    the gap of D's mean logit between the two (Karras et al. 2020, sec. 2: an overfitting D
    scores its training images high and unseen ones low);
  - G_ema's images against all the digits: the Fréchet distance of 8x8 area-averaged pixels
    (tests/training/test_it_learns.py's measure) and SWD (metrics/swd.py, x 1e3 averaged over
    the Laplacian pyramid's levels).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.data.pipeline import make_dataset
from stylegan2_tf.metrics.frechet import feature_statistics, frechet_distance
from stylegan2_tf.metrics.swd import laplacian_descriptors, swd
from stylegan2_tf.networks.presets import NetworkSettings, build_discriminator, build_generator
from stylegan2_tf.training.trainer import Trainer

TINY_NETWORKS = NetworkSettings(z_dim=32, w_dim=32, mapping_layers=2, channel_base=512, channel_max=32,
                                mbstd_group_size=4)


def digit_images(cache_dir, resolution, count):
    """The first `count` built-in digits in dataset order: float32 [count, R, R, 1] in [-1, 1]."""
    data = str(digits_dataset(cache_dir, resolution=resolution))
    images = [batch for batch, _ in make_dataset(data, 256, seed=0, shuffle_buffer=0, repeat=False)]
    images = np.concatenate(images)
    if count > len(images):
        raise ValueError(f"the digits hold {len(images)} images, not {count}")
    return images[:count]


@dataclasses.dataclass
class SubsetRun:
    """One run: the trained networks and what was seen on the way.

    trainer: the Trainer (G, D, G_ema, and the augmentation's p); history: one row per
    `report_every` minibatches, {"kimg", "augment" (p), "r_t" (None before p was first
    adjusted, or without ada)}.
    """

    trainer: Trainer
    history: list


def train_on_images(images, config, kimg, settings=TINY_NETWORKS, report_every=25):
    """Trains new networks of NetworkSettings `settings` on `images` [N, R, R, C] (epochs in a
    fresh random order, seeded by config.seed) with TrainingConfig `config` until `kimg`
    thousand images were shown; returns a SubsetRun."""
    keras.utils.set_random_seed(config.seed)
    resolution, channels = images.shape[1], images.shape[3]
    G, G_ema = build_generator(settings, resolution, channels), build_generator(settings, resolution, channels)
    G_ema.set_weights(G.get_weights())
    trainer = Trainer(G, build_discriminator(settings, resolution, channels), G_ema, config)
    rng = np.random.RandomState(config.seed)
    order, history = [], []
    no_labels = tf.zeros([config.batch, 0])
    for step in range(int(np.ceil(kimg * 1000 / config.batch))):
        while len(order) < config.batch:
            order.extend(rng.permutation(len(images)))
        picked, order = order[:config.batch], order[config.batch:]
        z = rng.standard_normal((config.batch, G.z_dim)).astype(np.float32)
        trainer.train_step(tf.constant(images[picked]), no_labels, tf.constant(z))
        if (step + 1) % report_every == 0:
            history.append({"kimg": (step + 1) * config.batch / 1000, **trainer.ada.status()})
    return SubsetRun(trainer, history)


def overfitting(D, train_images, heldout_images):
    """{"r_t_train", "r_t_heldout": E[sign(D(x))], "logit_gap": mean D(train) - mean D(held out)}
    of D on unaugmented images (but the last few of each set that do not fill D's
    minibatch-stddev groups)."""
    group = D.mbstd_group_size or 1
    train, heldout = (_logits(D, images[:len(images) - len(images) % group]) for images in (train_images, heldout_images))
    return {"r_t_train": float(np.mean(np.sign(train))), "r_t_heldout": float(np.mean(np.sign(heldout))),
            "logit_gap": float(np.mean(train) - np.mean(heldout))}


def _logits(D, images, chunk=64):
    return np.concatenate([D(images[i:i + chunk]).numpy()[:, 0] for i in range(0, len(images), chunk)])


def image_quality(G, reals, count=512, seed=123):
    """{"pixel_fd", "swd"} of `count` images of G (latents from np.random.RandomState(seed), constant
    noise) against `reals` [M, R, R, C] in [-1, 1] (count of them are used for SWD)."""
    z = np.random.RandomState(seed).randn(count, G.z_dim).astype(np.float32)
    fakes = np.concatenate([G(z[i:i + 64], noise_mode="const").numpy() for i in range(0, count, 64)])
    reals = reals[:count]
    fd = frechet_distance(*feature_statistics(pixel_features(fakes)),
                          *feature_statistics(pixel_features(reals)))
    resolution, channels = reals.shape[1], reals.shape[3]
    real_levels, fake_levels = (_descriptors(images) for images in (reals, fakes))
    return {"pixel_fd": float(fd), "swd": swd(real_levels, fake_levels, resolution, channels)["swd_avg"]}


def _descriptors(images):
    """SWD's Laplacian-pyramid descriptors of images [N, R, R, C] in [-1, 1], per level."""
    uint8 = np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8)
    batches = [laplacian_descriptors(uint8[i:i + 64], seed=i) for i in range(0, len(images), 64)]
    return [np.concatenate(level) for level in zip(*batches)]


def pixel_features(images):
    """[N, R, R, C] -> [N, 64 C]: 8x8 area averages."""
    pooled = tf.image.resize(images, [8, 8], method="area")
    return tf.reshape(pooled, [images.shape[0], -1]).numpy()
