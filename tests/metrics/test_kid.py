"""KID: the unbiased polynomial-kernel MMD^2 against explicit double sums, subset draws,
zero for one distribution, growth with a shift, determinism, input errors."""

import itertools

import numpy as np
import pytest

from stylegan2_tf.metrics.kid import kernel_inception_distance, polynomial_mmd2


def explicit_mmd2(x, y):
    """The unbiased estimator written as the sums of its definition."""
    m, dim = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / dim + 1) ** 3

    same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in itertools.product(range(m), repeat=2) if i != j)
    cross = sum(k(x[i], y[j]) for i, j in itertools.product(range(m), repeat=2))
    return same / (m * (m - 1)) - 2 * cross / m ** 2


def test_one_subset_of_everything_is_the_explicit_mmd():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(12, 5))
    expected = explicit_mmd2(fake, real)
    assert polynomial_mmd2(fake, real) == pytest.approx(expected, rel=1e-12)
    # A subset of all rows is a permutation, which the estimator ignores.
    kid = kernel_inception_distance(real, fake, num_subsets=1, max_subset_size=1000)
    assert kid == pytest.approx(expected, rel=1e-12)


def test_subsets_are_drawn_fake_then_real_from_the_seed():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(20, 4))
    draws = np.random.RandomState(7)
    expected = []
    for _ in range(3):
        x = fake[draws.choice(20, 8, replace=False)]
        y = real[draws.choice(30, 8, replace=False)]
        expected.append(explicit_mmd2(x, y))
    kid = kernel_inception_distance(real, fake, num_subsets=3, max_subset_size=8, seed=7)
    assert kid == pytest.approx(np.mean(expected), rel=1e-12)
    # The subset size is the smallest of both sets and the maximum.
    draws = np.random.RandomState(0)
    x, y = fake[draws.choice(20, 20, replace=False)], real[draws.choice(30, 20, replace=False)]
    assert kernel_inception_distance(real, fake, num_subsets=1) == pytest.approx(explicit_mmd2(x, y))


def test_same_distribution_is_near_zero_and_a_shift_is_not():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 16))
    same = kernel_inception_distance(real, rng.normal(size=(400, 16)), num_subsets=10, max_subset_size=150)
    itself = kernel_inception_distance(real, real, num_subsets=10, max_subset_size=150)
    shifts = [kernel_inception_distance(real, rng.normal(size=(400, 16)) + s, num_subsets=10,
                                        max_subset_size=150) for s in (0.25, 0.5, 1.0)]
    # Against itself, shared rows make the cross term larger: slightly negative.
    assert abs(same) < 0.05 and abs(itself) < 0.05
    assert 0.1 < shifts[0] < shifts[1] < shifts[2]


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(50, 8)), rng.normal(size=(60, 8))
    kwargs = {"num_subsets": 4, "max_subset_size": 10}
    first = kernel_inception_distance(real, fake, seed=5, **kwargs)
    assert kernel_inception_distance(real, fake, seed=5, **kwargs) == first
    assert kernel_inception_distance(real, fake, seed=6, **kwargs) != first


@pytest.mark.parametrize("real_shape, fake_shape, kwargs, message", [
    ((10, 4), (10, 5), {}, "differ in dimension"),
    ((1, 4), (10, 4), {}, "real_features must be"),
    ((10, 4), (10,), {}, "fake_features must be"),
    ((10, 4), (10, 4), {"num_subsets": 0}, "num_subsets"),
    ((10, 4), (10, 4), {"max_subset_size": 1}, "max_subset_size"),
])
def test_errors(real_shape, fake_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(np.zeros(real_shape), np.zeros(fake_shape), **kwargs)
