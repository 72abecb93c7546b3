"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel.

Binkowski et al. 2018, "Demystifying MMD GANs" (arXiv 1801.01401); semantics of
stylegan2-ada-pytorch's kernel_inception_distance.py (kid50k_full: every real
feature, 50k generated ones, 100 subsets of 1000).
"""

import numpy as np

from stylegan2_tf.metrics.features import feature_pair


def polynomial_mmd2(x, y):
    """Unbiased MMD^2 estimate of two equally sized samples, kernel k(a, b) = (a.b / D + 1)^3.

    Args:
        x: [m, D] float64 samples of one distribution (m >= 2).
        y: [m, D] float64 samples of the other.

    Returns:
        sum_{i != j} (k(x_i, x_j) + k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2,
        a float (can be slightly negative when the distributions match).
    """
    m, dim = x.shape
    within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3  # [m, m]
    across = (x @ y.T / dim + 1) ** 3  # [m, m]
    within_off_diagonal = within.sum() - np.trace(within)
    return float(within_off_diagonal / (m * (m - 1)) - 2 * across.sum() / (m * m))


def kernel_inception_distance(real_features, fake_features, num_subsets=100, max_subset_size=1000,
                              seed=0):
    """KID: the mean of `polynomial_mmd2` over random subsets of both feature sets.

    1. m = min(n_real, n_fake, max_subset_size).
    2. For each of `num_subsets` subsets, draw m fake then m real rows without
       replacement from np.random.RandomState(seed), and compute the unbiased MMD^2.
    3. Return the mean over subsets.

    Args:
        real_features: [n_real >= 2, D] features of real images (Inception pool3 for KID).
        fake_features: [n_fake >= 2, D] features of generated images.
        num_subsets: int >= 1.
        max_subset_size: int >= 2.
        seed: seed of the subset draws; the result is a function of the inputs and the seed.

    Returns:
        float, in squared feature units (the papers often report it x1e3).
    """
    real, fake = feature_pair(real_features, fake_features, 2, np.float64)
    if int(num_subsets) < 1:
        raise ValueError(f"num_subsets must be >= 1. Received: num_subsets={num_subsets!r}")
    if int(max_subset_size) < 2:
        raise ValueError(f"max_subset_size must be >= 2. Received: max_subset_size={max_subset_size!r}")
    m = min(real.shape[0], fake.shape[0], int(max_subset_size))
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(int(num_subsets)):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        total += polynomial_mmd2(x, y)
    return total / int(num_subsets)
