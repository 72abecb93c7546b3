"""Image-space filtering with given draws against numpy: the band filters in closed form, the
per-band gains from the reference's formula, reflect padding and separable correlation."""

import numpy as np
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe
from stylegan2_tf.augment.filtering import FILTER_BANK, SYM2

N, H, W, C = 3, 24, 28, 2  # reflect padding by 21 needs H, W > 21


def closed_form_bank(h):
    """With L = |H(z)|^2 / 2, G = |H(-z)|^2 / 2: bands L(z^4) L(z^2) L(z), G(z^4) L(z^2) L(z),
    G(z^2) L(z), G(z), centred in a common length."""
    h = np.asarray(h, np.float64)
    g = h * (-1.0) ** np.arange(h.size)
    low, high = np.convolve(h, h[::-1]) / 2, np.convolve(g, g[::-1]) / 2

    def dilate(taps, factor):
        out = np.zeros((taps.size - 1) * factor + 1)
        out[::factor] = taps
        return out

    bands = [np.convolve(np.convolve(dilate(low, 4), dilate(low, 2)), low),
             np.convolve(np.convolve(dilate(high, 4), dilate(low, 2)), low),
             np.convolve(dilate(high, 2), low),
             high]
    size = max(b.size for b in bands)
    return np.stack([np.pad(b, (size - b.size) // 2) for b in bands])


def gains(values, gates, p, bands=(1, 1, 1, 1), std=1.0):
    """The reference's per-image band gains [N, 4]."""
    expected_power = np.array([10, 1, 1, 1]) / 13
    g = np.ones([len(values), 4])
    for i, strength in enumerate(bands):
        t = np.ones([len(values), 4])
        t[:, i] = np.where(gates[:, i] < p * strength, 2 ** (values[:, i] * std), 1)
        g *= t / np.sqrt((expected_power * t**2).sum(axis=1, keepdims=True))
    return g


def band_filter(images, taps):
    """images reflect-padded and correlated with per-image taps [N, K] along x, then y."""
    k = taps.shape[1]
    x = np.pad(images, [(0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)], mode="reflect")
    x = sum(x[:, :, t : t + images.shape[2]] * taps[:, t, None, None, None] for t in range(k))
    return sum(x[:, t : t + images.shape[1]] * taps[:, t, None, None, None] for t in range(k))


IMAGES = np.random.RandomState(0).uniform(-1, 1, [N, H, W, C])
VALUES = np.array([[0.5, -1.0, 2.0, 0.1], [1.5, 0.3, -0.7, -2.0], [0.0, 0.8, 0.2, 1.1]], np.float32)


def augment(gates, p=1.0, **options):
    pipe = AugmentPipe(None, imgfilter=1, **options)
    draws = {"imgfilter": tf.constant(VALUES), "imgfilter_gate": tf.constant(gates, tf.float32)}
    return pipe.apply(tf.constant(IMAGES), p, draws).numpy()


def test_filter_bank_is_the_closed_form_and_sums_to_the_identity():
    assert FILTER_BANK.shape == (4, 43)
    np.testing.assert_allclose(FILTER_BANK, closed_form_bank(SYM2), atol=1e-7)
    np.testing.assert_allclose(FILTER_BANK, FILTER_BANK[:, ::-1], atol=0)
    delta = np.zeros(43)
    delta[21] = 1
    np.testing.assert_allclose(FILTER_BANK.sum(axis=0), delta, atol=1e-7)
    np.testing.assert_allclose(FILTER_BANK.sum(axis=1), [1, 0, 0, 0], atol=1e-7)


def test_filtering_matches_numpy():
    gates = np.array([[0.1, 0.6, 0.3, 0.9], [0.0, 0.0, 0.0, 0.0], [0.7, 0.2, 0.95, 0.45]])
    g = gains(VALUES.astype(np.float64), gates, 0.5)
    taps = g @ closed_form_bank(SYM2)
    out = augment(gates, p=0.5)
    np.testing.assert_allclose(out, band_filter(IMAGES, taps), atol=1e-5)


def test_band_strengths_and_std_options():
    gates = np.zeros([N, 4])
    out = augment(gates, imgfilter_bands=[0, 0, 1, 0], imgfilter_std=0.5)
    taps = gains(VALUES.astype(np.float64), gates, 1.0, bands=(0, 0, 1, 0), std=0.5) @ closed_form_bank(SYM2)
    np.testing.assert_allclose(out, band_filter(IMAGES, taps), atol=1e-5)


def test_unselected_images_are_untouched():
    gates = np.array([[1.0] * 4, [0.0, 1.0, 1.0, 1.0], [1.0] * 4])
    out = augment(gates)
    np.testing.assert_array_equal(out[[0, 2]], IMAGES[[0, 2]])
    assert not np.allclose(out[1], IMAGES[1], atol=1e-2)
