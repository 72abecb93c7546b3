"""A tiny StyleGAN2 trained briefly on the built-in digits draws images closer to them.

Quality measure (no downloaded weights): the Fréchet distance between pixel
statistics of 8x8 area-downsampled real and generated images.
"""

import numpy as np

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.data.pipeline import make_dataset
from stylegan2_tf.metrics.frechet import feature_statistics, frechet_distance
from stylegan2_tf.training.limited_data import pixel_features
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import RunOptions


def fake_features(G, count=256):
    z = np.random.RandomState(123).randn(count, G.z_dim).astype(np.float32)
    c = np.eye(G.c_dim, dtype=np.float32)[np.arange(count) % G.c_dim] if G.c_dim else None
    return pixel_features(G(z, c, noise_mode="const"))


def test_training_improves_pixel_frechet_distance(tmp_path):
    data = digits_dataset(tmp_path / "data", resolution=16)
    reals = next(iter(make_dataset(str(data), 512, seed=0, repeat=False)))[0]
    real_stats = feature_statistics(pixel_features(reals))
    options = RunOptions(outdir=str(tmp_path / "run"), data=str(data), kimg=1.2,
                         kimg_per_tick=0.4, snap=100, batch=8, fmap_base=64, fmap_max=16,
                         latent_size=16, mapping_layers=1)
    run = TrainingRun(options, log=lambda line: None)
    before = frechet_distance(*feature_statistics(fake_features(run.G_ema)), *real_stats)
    run.run()
    after = frechet_distance(*feature_statistics(fake_features(run.G_ema)), *real_stats)
    print(f"pixel Fréchet distance to the digits: untrained {before:.2f}, trained {after:.2f}")
    assert after < 0.6 * before, (before, after)
