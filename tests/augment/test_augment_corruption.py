"""Additive RGB noise and cutout with given draws against numpy."""

import numpy as np
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe

N, H, W, C = 4, 10, 12, 3
IMAGES = np.random.RandomState(0).uniform(-1, 1, [N, H, W, C])


def test_noise_adds_the_field_times_the_absolute_sigma():
    sigma = np.array([0.5, -1.5, 2.0, 0.7], np.float32)
    gates = np.array([0.1, 0.3, 0.9, 0.0], np.float32)  # p = 0.5: images 0, 1, 3
    field = np.random.RandomState(1).normal(size=[N, H, W, C]).astype(np.float32)
    pipe = AugmentPipe(None, noise=1, noise_std=0.2)
    draws = {"noise": sigma, "noise_gate": gates, "noise_field": field}
    out = pipe.apply(tf.constant(IMAGES), 0.5, {k: tf.constant(v) for k, v in draws.items()}).numpy()
    scale = np.where(gates < 0.5, np.abs(sigma.astype(np.float64)) * 0.2, 0)[:, None, None, None]
    np.testing.assert_allclose(out, IMAGES + field * scale, atol=1e-7)
    np.testing.assert_array_equal(out[2], IMAGES[2])


def test_noise_standard_deviation():
    pipe = AugmentPipe("noise")
    x = np.zeros([64, 16, 16, 3], np.float32)
    draws = pipe.draw([64, 16, 16, 3], [5, 6])
    out = pipe.apply(x, 1.0, draws).numpy()
    sigma = np.abs(draws["noise"].numpy()) * 0.1
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), sigma, rtol=0.1)
    # E|N(0, 0.1)| = 0.1 sqrt(2 / pi)
    assert abs(out.std(axis=(1, 2, 3)).mean() - 0.1 * np.sqrt(2 / np.pi)) < 0.025


def test_cutout_zeroes_the_reference_rectangle():
    center = np.array([[0.5, 0.5], [0.1, 0.9], [0.77, 0.3], [0.5, 0.5]], np.float32)
    gates = np.array([0.0, 0.2, 0.4, 0.8], np.float32)  # p = 0.6: all but the last
    pipe = AugmentPipe(None, cutout=1, cutout_size=0.4)
    draws = {"cutout_gate": gates, "cutout_center": center}
    out = pipe.apply(tf.constant(IMAGES), 0.6, {k: tf.constant(v) for k, v in draws.items()}).numpy()
    xs, ys = (np.arange(W) + 0.5) / W, (np.arange(H) + 0.5) / H
    for i in range(N):
        size = 0.4 if gates[i] < 0.6 else 0.0
        cut = ((np.abs(xs[None, :] - center[i, 0]) < size / 2) & (np.abs(ys[:, None] - center[i, 1]) < size / 2))
        np.testing.assert_array_equal(out[i], np.where(cut[..., None], 0, IMAGES[i]))
    assert (out[0] == 0).all(axis=-1).sum() == 4 * 4  # 0.4 * 10 rows, 0.4 * 12 columns -> 4 x 4 centred


def test_cutout_area_statistics():
    pipe = AugmentPipe("cutout")
    x = np.ones([256, 16, 16, 1], np.float32)
    out = pipe(x, 1.0, [1, 2]).numpy()
    # Side 0.5 clipped by the image border for a uniform centre: E[area] = (0.5 - 2 * 0.25^2 / 2)^2.
    assert abs((out == 0).mean() - 0.4375**2) < 0.02
    assert (out == 0).any(axis=(1, 2, 3)).all()
