"""SWD: the pyramid filters against the reference's 2-D convolutions, exact reconstruction,
patches taken from the right image and place, normalization, the sliced distance against
scipy's 1-D Wasserstein distance, zero for a set against itself, growth with noise and blur,
determinism, input errors."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats

from stylegan2_tf.metrics.swd import (
    laplacian_descriptors,
    laplacian_pyramid,
    normalize_descriptors,
    pyramid_down,
    pyramid_resolutions,
    pyramid_up,
    sliced_wasserstein_distance,
    swd,
)

GAUSSIAN_5X5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def smooth_images(n, resolution=32, seed=0):
    """uint8 [n, R, R, 3]: random sums of a few oriented sinusoids, a little like photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    images = np.zeros((n, resolution, resolution, 3))
    for i in range(n):
        for _ in range(4):
            fy, fx = rng.uniform(-6, 6, size=2)
            phase, amplitude = rng.uniform(0, 2 * np.pi), rng.uniform(10, 40, size=3)
            images[i] += np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)[..., None] * amplitude
    return np.clip(images + 128, 0, 255).astype(np.uint8)


def per_plane(images, function):
    out = [[function(images[i, :, :, c]) for c in range(images.shape[3])] for i in range(images.shape[0])]
    return np.moveaxis(np.array(out), 1, -1)


def test_pyramid_filters_match_2d_gaussian_with_mirror_borders():
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 12, 16, 3)).astype(np.float32)
    down = per_plane(x, lambda p: scipy.ndimage.convolve(p.astype(np.float64), GAUSSIAN_5X5,
                                                         mode="mirror")[::2, ::2])
    np.testing.assert_allclose(pyramid_down(x), down, rtol=1e-5, atol=1e-3)

    def up_plane(p):
        spread = np.zeros((2 * p.shape[0], 2 * p.shape[1]))
        spread[::2, ::2] = p
        return scipy.ndimage.convolve(spread, GAUSSIAN_5X5 * 4, mode="mirror")

    np.testing.assert_allclose(pyramid_up(x), per_plane(x, up_plane), rtol=1e-5, atol=1e-3)
    # Both keep a constant image constant, borders included.
    flat = np.full((1, 8, 8, 2), 7.0, np.float32)
    np.testing.assert_allclose(pyramid_down(flat), 7.0, rtol=1e-6)
    np.testing.assert_allclose(pyramid_up(flat), 7.0, rtol=1e-6)


def test_laplacian_pyramid_reconstructs_the_images():
    images = smooth_images(3, 64).astype(np.float32)
    levels = laplacian_pyramid(images, 3)
    assert [level.shape[1] for level in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for level in levels[-2::-1]:
        rebuilt = pyramid_up(rebuilt) + level
    np.testing.assert_allclose(rebuilt, images, atol=1e-3)
    np.testing.assert_allclose(levels[2], pyramid_down(pyramid_down(images)), atol=1e-4)


def test_pyramid_resolutions():
    assert pyramid_resolutions(256) == [256, 128, 64, 32, 16]
    assert pyramid_resolutions(16) == [16]
    assert pyramid_resolutions(64, min_resolution=32) == [64, 32]
    with pytest.raises(ValueError, match="min_resolution"):
        pyramid_resolutions(8)


def test_descriptors_are_patches_of_their_own_image_level():
    images = smooth_images(3, 32, seed=1)
    descriptors = laplacian_descriptors(images, descriptors_per_image=5, patch_size=7, seed=4)
    levels = laplacian_pyramid(images.astype(np.float32), 2)
    assert [d.shape for d in descriptors] == [(15, 147), (15, 147)]
    assert all(d.dtype == np.float32 for d in descriptors)
    for level, level_descriptors in zip(levels, descriptors):
        size = level.shape[1]
        for row in (0, 4, 7, 14):
            image = row // 5

            def patch(index, y, x, level=level):
                return level[index, y - 3:y + 4, x - 3:x + 4].reshape(-1)

            matches = [(y, x) for y in range(3, size - 3) for x in range(3, size - 3)
                       if np.array_equal(patch(image, y, x), level_descriptors[row])]
            assert len(matches) == 1
            assert not np.array_equal(patch((image + 1) % 3, *matches[0]), level_descriptors[row])


def test_descriptors_deterministic_for_a_seed():
    images = smooth_images(2, 32)
    first = laplacian_descriptors(images, descriptors_per_image=8, seed=3)
    again = laplacian_descriptors(images, descriptors_per_image=8, seed=3)
    other = laplacian_descriptors(images, descriptors_per_image=8, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_normalize_descriptors_per_channel():
    rng = np.random.default_rng(0)
    descriptors = rng.normal([1.0, -5.0, 3.0], [2.0, 0.5, 0.0], size=(200, 4, 3)).astype(np.float32)
    normalized = normalize_descriptors(descriptors.reshape(200, 12), 3).reshape(200, 4, 3)
    np.testing.assert_allclose(normalized.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=(0, 1)), [1, 1, 0], atol=1e-5)


def test_sliced_distance_is_scipy_wasserstein_on_the_seeded_directions():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 12)).astype(np.float32)
    b = rng.normal(0.3, 1.5, size=(300, 12)).astype(np.float32)
    draws = np.random.RandomState(9)
    expected = []
    for _ in range(3):
        directions = draws.randn(12, 5)
        directions /= np.linalg.norm(directions, axis=0)
        expected += [scipy.stats.wasserstein_distance(a @ d, b @ d) for d in directions.T]
    result = sliced_wasserstein_distance(a, b, dir_repeats=3, dirs_per_repeat=5, seed=9)
    assert result == pytest.approx(np.mean(expected), rel=1e-5)
    assert sliced_wasserstein_distance(a, b, 3, 5, seed=9) == result
    assert sliced_wasserstein_distance(a, b, 3, 5, seed=10) != result
    assert sliced_wasserstein_distance(a, a, 3, 5) == 0


def degrade(images, noise=0.0, blur=0.0, seed=0):
    x = images.astype(np.float64)
    if blur:
        x = scipy.ndimage.gaussian_filter(x, sigma=(0, blur, blur, 0))
    x = x + np.random.default_rng(seed).normal(0, noise, size=x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def set_swd(real_images, fake_images, seed=0):
    real = laplacian_descriptors(real_images, descriptors_per_image=64, seed=seed)
    fake = laplacian_descriptors(fake_images, descriptors_per_image=64, seed=seed + 1)
    return swd(real, fake, resolution=real_images.shape[1], dir_repeats=2, dirs_per_repeat=32)


def test_swd_zero_for_the_same_set_and_grows_with_noise_and_blur():
    images = smooth_images(128, 32)
    real = laplacian_descriptors(images, descriptors_per_image=8, seed=0)
    exact = swd(real, [d.copy() for d in real], resolution=32)
    assert set(exact) == {"swd_32", "swd_16", "swd_avg"} and exact["swd_avg"] == 0
    same = set_swd(images, images)  # other patches of the same images
    noisy = [set_swd(images, degrade(images, noise=s)) for s in (8.0, 24.0, 64.0)]
    blurred = set_swd(images, degrade(images, blur=1.5))
    assert noisy[0]["swd_avg"] == pytest.approx((noisy[0]["swd_32"] + noisy[0]["swd_16"]) / 2)
    assert same["swd_avg"] < noisy[0]["swd_avg"] < noisy[1]["swd_avg"] < noisy[2]["swd_avg"]
    assert noisy[1]["swd_32"] > 3 * same["swd_32"]  # noise shows most at the finest level
    assert blurred["swd_avg"] > 3 * same["swd_avg"]
    assert set_swd(images, degrade(images, noise=24.0)) == noisy[1]  # deterministic


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((2, 32, 32, 3), np.float32), {}, "uint8"),
    (np.zeros((2, 32, 16, 3), np.uint8), {}, "uint8"),
    (np.zeros((2, 8, 8, 3), np.uint8), {}, "min_resolution"),
    (np.zeros((2, 32, 32, 3), np.uint8), {"patch_size": 6}, "patch_size"),
    (np.zeros((2, 32, 32, 3), np.uint8), {"patch_size": 17}, "patch_size"),
    (np.zeros((2, 32, 32, 3), np.uint8), {"descriptors_per_image": 0}, "descriptors_per_image"),
])
def test_descriptor_errors(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        laplacian_descriptors(images, **kwargs)


def test_distance_errors():
    a = np.zeros((10, 6), np.float32)
    with pytest.raises(ValueError, match="same M"):
        sliced_wasserstein_distance(a, a[:9])
    with pytest.raises(ValueError, match="dir_repeats"):
        sliced_wasserstein_distance(a, a, dir_repeats=0)
    with pytest.raises(ValueError, match="levels"):
        swd([a, a], [a], resolution=32)
    with pytest.raises(ValueError, match=r"\[M, P \* 4\]"):
        normalize_descriptors(a, 4)
