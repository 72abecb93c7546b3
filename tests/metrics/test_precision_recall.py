"""Improved precision/recall against brute force with scipy's cdist, in blocks smaller than
the sets, under a large common offset; identical and disjoint sets; input errors."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from stylegan2_tf.metrics.precision_recall import precision_recall


def brute_force(real, fake, k):
    """Radius = k-th smallest distance to the own set (the point itself at 0 is the 0-th)."""
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    precision = np.mean(np.any(cdist(fake, real) <= real_radii[None, :], axis=1))
    recall = np.mean(np.any(cdist(real, fake) <= fake_radii[None, :], axis=1))
    return precision, recall


def feature_sets(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(120, 10)), rng.normal(0.6, 1.0, size=(90, 10))


@pytest.mark.parametrize("nhood_size", [1, 3, 5])
@pytest.mark.parametrize("batches", [(10000, 10000), (17, 23), (40, 7)])
def test_matches_brute_force(nhood_size, batches):
    real, fake = feature_sets()
    expected = brute_force(real, fake, nhood_size)
    assert 0.2 < expected[0] < 0.95 and 0.2 < expected[1] < 0.95  # neither trivial
    result = precision_recall(real, fake, nhood_size=nhood_size, row_batch_size=batches[0],
                              col_batch_size=batches[1])
    assert result == pytest.approx(expected, abs=1e-12)


def test_large_common_offset_changes_nothing():
    real, fake = feature_sets(1)
    expected = brute_force(real, fake, 3)
    assert precision_recall(real + 300.0, fake + 300.0, row_batch_size=50, col_batch_size=40) == \
        pytest.approx(expected, abs=1e-12)


def test_identical_sets_and_far_apart_sets():
    real, fake = feature_sets(2)
    assert precision_recall(real, real.copy(), row_batch_size=32, col_batch_size=16) == (1.0, 1.0)
    assert precision_recall(real, fake + 100.0, row_batch_size=32, col_batch_size=16) == (0.0, 0.0)


@pytest.mark.parametrize("real_shape, fake_shape, kwargs, message", [
    ((10, 4), (10, 5), {}, "differ in dimension"),
    ((3, 4), (10, 4), {}, "real_features must be"),
    ((10, 4), (10,), {}, "fake_features must be"),
    ((10, 4), (10, 4), {"nhood_size": 0}, "nhood_size"),
    ((10, 4), (10, 4), {"col_batch_size": 0}, "batch_size"),
])
def test_errors(real_shape, fake_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        precision_recall(np.zeros(real_shape), np.zeros(fake_shape), **kwargs)
