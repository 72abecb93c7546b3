"""Image-space filtering: random amplification of four frequency bands.

Follows stylegan2-ada-pytorch `training/augment.py` (Karras et al. 2020, appendix B.4). The
bands come from the Symlet-2 wavelet: with H(z) its low-pass filter, |H(z)|^2 / 2 and
|H(-z)|^2 / 2 split a signal into a low and a high half-band that sum to it; splitting the low
half again twice gives 4 bands (lowest first) that sum to the identity. Each band i is amplified
by 2^(N(0, imgfilter_std)) with probability imgfilter * p * imgfilter_bands[i], the gains of the
4 draws are each renormalized to keep the power of a 1/f image (expected power 10:1:1:1), and
their product filters the image separably (rows, then columns) after reflect padding.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.ops import upfirdn2d

# Low-pass decomposition filter of the Symlet-2 wavelet (Daubechies, "Ten Lectures on
# Wavelets", 1992; the table of PyWavelets' 'sym2').
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
EXPECTED_POWER = np.array([10, 1, 1, 1], np.float32) / 13  # band powers of a 1/f spectrum
NUM_BANDS = 4


def _dilate(taps):
    """Inserts a zero between consecutive taps: H(z) -> H(z^2)."""
    dilated = np.zeros(2 * len(taps) - 1)
    dilated[::2] = taps
    return dilated


def filter_bank(wavelet=SYM2, num_bands=NUM_BANDS):
    """The band filters [num_bands, taps] float32 (43 taps for sym2), symmetric, lowest band first."""
    h = np.asarray(wavelet, np.float64)
    h_high = h * (-1.0) ** np.arange(h.size)  # H(-z)
    low = np.convolve(h, h[::-1]) / 2
    high = np.convolve(h_high, h_high[::-1]) / 2
    bands = [np.ones(1)]
    for _ in range(num_bands - 1):
        bands = [np.convolve(_dilate(band), low) for band in bands] + [high]
        size = max(band.size for band in bands)
        bands = [np.pad(band, (size - band.size) // 2) for band in bands]
    return np.stack(bands).astype(np.float32)


FILTER_BANK = filter_bank()


def band_gains(draws, options, p):
    """(gains [N, NUM_BANDS] float32, identity bool [N]: no band of the image is amplified).

    draws: raw draws with `imgfilter` and `imgfilter_gate` [N, NUM_BANDS]; options: the
    pipeline's options; p: float32 scalar, the overall probability multiplier.
    """
    amplification = tf.pow(2.0, draws["imgfilter"] * options["imgfilter_std"])
    gains = tf.ones_like(amplification)
    identity = tf.ones_like(amplification[:, 0], tf.bool)
    ones = gains[:, 0]
    for i, band_strength in enumerate(options["imgfilter_bands"]):
        selected = draws["imgfilter_gate"][:, i] < options["imgfilter"] * p * band_strength
        t_i = tf.where(selected, amplification[:, i], 1)
        identity &= tf.equal(t_i, 1)
        t = tf.stack([t_i if j == i else ones for j in range(NUM_BANDS)], axis=1)
        gains *= t / tf.sqrt(tf.reduce_sum(EXPECTED_POWER * tf.square(t), axis=-1, keepdims=True))
    return gains, identity


def apply_filter(images, gains):
    """Filters images [N, H, W, C] (H, W > 21) with per-image band gains [N, NUM_BANDS].

    The filter sum_i gains[:, i] * FILTER_BANK[i] runs over rows then columns of the images,
    reflect-padded by 21 pixels, as a correlation; output [N, H, W, C].
    """
    pad = FILTER_BANK.shape[1] // 2
    x = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    g = tf.cast(gains, images.dtype)[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
    for axis_taps in (FILTER_BANK[:, np.newaxis, :], FILTER_BANK[:, :, np.newaxis]):  # rows, columns
        bands = [upfirdn2d(x, taps, flip_filter=True) for taps in axis_taps]
        x = tf.reduce_sum(tf.stack(bands, axis=-1) * g, axis=-1)
    return x
