"""Improved precision and recall of generative models (k-nearest-neighbour manifolds).

Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models" (arXiv 1904.06991); semantics of stylegan2-ada-pytorch's
precision_recall.py (pr50k3: VGG16 features, k = 3). Distances are Euclidean;
they are computed and compared squared (same order), in float32 with TensorFlow
(on the GPU when there is one), in blocks of row_batch_size x col_batch_size so
that 50k x 200k pairs never sit in memory at once.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.metrics.features import feature_pair


def _squared_distances(rows, cols):
    """|r - c|^2 for rows [R, D] and cols [C, D] -> [R, C], clipped at 0."""
    row_norms = tf.reduce_sum(tf.square(rows), axis=1, keepdims=True)  # [R, 1]
    col_norms = tf.reduce_sum(tf.square(cols), axis=1)[tf.newaxis, :]  # [1, C]
    products = tf.matmul(rows, cols, transpose_b=True)  # [R, C]
    return tf.maximum(row_norms - 2 * products + col_norms, 0.0)


def _batches(count, batch_size):
    return [(begin, min(begin + batch_size, count)) for begin in range(0, count, batch_size)]


def _manifold_radii(manifold, nhood_size, row_batch_size, col_batch_size):
    """Squared distance of each point of `manifold` [N, D] to its nhood_size-th nearest neighbour.

    The point itself is among the candidates (at distance 0), so this is the
    (nhood_size + 1)-th smallest distance, as the reference's kthvalue(k + 1).
    Returns float32 tf.Tensor [N].
    """
    count = int(manifold.shape[0])
    radii = []
    for row_begin, row_end in _batches(count, row_batch_size):
        rows = manifold[row_begin:row_end]
        nearest = None  # [R, nhood_size + 1] smallest squared distances so far
        for col_begin, col_end in _batches(count, col_batch_size):
            block = _squared_distances(rows, manifold[col_begin:col_end])  # [R, C]
            candidates = block if nearest is None else tf.concat([nearest, block], axis=1)
            nearest = -tf.math.top_k(-candidates, k=min(nhood_size + 1, candidates.shape[1])).values
        radii.append(nearest[:, nhood_size])
    return tf.concat(radii, axis=0)


def _fraction_inside(probes, manifold, radii, row_batch_size, col_batch_size):
    """Fraction of `probes` [P, D] within `radii` [N] (squared) of some point of `manifold` [N, D]."""
    inside = 0
    for row_begin, row_end in _batches(int(probes.shape[0]), row_batch_size):
        rows = probes[row_begin:row_end]
        hit = tf.zeros([row_end - row_begin], dtype=tf.bool)
        for col_begin, col_end in _batches(int(manifold.shape[0]), col_batch_size):
            block = _squared_distances(rows, manifold[col_begin:col_end])  # [R, C]
            within = block <= radii[tf.newaxis, col_begin:col_end]
            hit = tf.logical_or(hit, tf.reduce_any(within, axis=1))
        inside += int(tf.reduce_sum(tf.cast(hit, tf.int64)))
    return inside / int(probes.shape[0])


def precision_recall(real_features, fake_features, nhood_size=3, row_batch_size=10000,
                     col_batch_size=10000):
    """(precision, recall) of generated features against real ones.

    1. Radius of each real (fake) point: distance to its nhood_size-th nearest
       other real (fake) point.
    2. precision = fraction of fake points inside the ball of some real point.
    3. recall = fraction of real points inside the ball of some fake point.

    Args:
        real_features: [n_real, D] features of real images (VGG16 fc2 for pr50k3),
            n_real >= nhood_size + 1.
        fake_features: [n_fake, D] features of generated images, n_fake >= nhood_size + 1.
        nhood_size: k of the k-NN radii, int >= 1.
        row_batch_size, col_batch_size: block of the distance matrix computed at once
            (memory ~ 4 * row_batch_size * col_batch_size bytes).

    Returns:
        (precision, recall): floats in [0, 1].
    """
    nhood_size = int(nhood_size)
    if nhood_size < 1:
        raise ValueError(f"nhood_size must be >= 1. Received: nhood_size={nhood_size}")
    if int(row_batch_size) < 1 or int(col_batch_size) < 1:
        raise ValueError(f"row_batch_size and col_batch_size must be >= 1. Received: "
                         f"{row_batch_size!r}, {col_batch_size!r}")
    real, fake = feature_pair(real_features, fake_features, nhood_size + 1, np.float32)
    # Distances do not change under a common shift; centring reduces float32 cancellation.
    center = real.mean(axis=0, dtype=np.float64).astype(np.float32)
    real = tf.constant(real - center)
    fake = tf.constant(fake - center)
    batches = (int(row_batch_size), int(col_batch_size))
    results = []
    for manifold, probes in ((real, fake), (fake, real)):
        radii = _manifold_radii(manifold, nhood_size, *batches)
        results.append(_fraction_inside(probes, manifold, radii, *batches))
    return results[0], results[1]
