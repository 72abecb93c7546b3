"""Sliced Wasserstein distance between Laplacian-pyramid patches of two image sets.

Karras et al. 2018, "Progressive Growing of GANs" (arXiv 1710.10196), appendix D;
semantics of its metrics/sliced_wasserstein.py (SWD of 16384 real vs 16384
generated images): per pyramid level, 128 random 7x7 patches per image, each set
normalized per channel by its own mean and std, then the mean 1-D Wasserstein
distance of the two sets projected on 4 x 128 random unit directions.

Streaming: call `laplacian_descriptors` per minibatch (a different seed each),
concatenate each level over the set, then `swd` on the two lists of levels.
"""

import numpy as np
import scipy.ndimage

# The 5-tap binomial filter; its outer product is the reference's 5x5 Gaussian / 256 (cv2.pyrDown).
GAUSSIAN_TAPS = np.float32([1, 4, 6, 4, 1]) / 16


def _check_batch(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name} must be [N, H, W, C]. Received: shape {x.shape}")


def pyramid_down(images):
    """Gaussian blur ('mirror' borders) then every other pixel: float [N, H, W, C] -> [N, H/2, W/2, C]."""
    images = np.asarray(images, dtype=np.float32)
    _check_batch(images, "images")
    blurred = scipy.ndimage.convolve1d(images, GAUSSIAN_TAPS, axis=1, mode="mirror")
    blurred = scipy.ndimage.convolve1d(blurred, GAUSSIAN_TAPS, axis=2, mode="mirror")
    return blurred[:, ::2, ::2]


def pyramid_up(images):
    """Zeros between pixels, then the Gaussian x 4 (cv2.pyrUp): float [N, H, W, C] -> [N, 2H, 2W, C]."""
    images = np.asarray(images, dtype=np.float32)
    _check_batch(images, "images")
    n, h, w, c = images.shape
    spread = np.zeros((n, 2 * h, 2 * w, c), np.float32)
    spread[:, ::2, ::2] = images
    spread = scipy.ndimage.convolve1d(spread, 2 * GAUSSIAN_TAPS, axis=1, mode="mirror")
    return scipy.ndimage.convolve1d(spread, 2 * GAUSSIAN_TAPS, axis=2, mode="mirror")


def laplacian_pyramid(images, num_levels):
    """Laplacian pyramid of float images [N, H, W, C], finest level first.

    Level i (i < num_levels - 1) is g_i - pyramid_up(g_{i+1}) with g_0 = images and
    g_{i+1} = pyramid_down(g_i); the last level is the low-pass g_{num_levels - 1}.
    So images == level_0 + up(level_1 + up(level_2 + ...)). H and W must be
    divisible by 2^(num_levels - 1).
    """
    images = np.asarray(images, dtype=np.float32)
    _check_batch(images, "images")
    if int(num_levels) < 1:
        raise ValueError(f"num_levels must be >= 1. Received: num_levels={num_levels!r}")
    scale = 2 ** (int(num_levels) - 1)
    if images.shape[1] % scale or images.shape[2] % scale:
        raise ValueError(f"image size {images.shape[1:3]} is not divisible by 2^(num_levels - 1) = {scale}")
    levels = [images]
    for _ in range(int(num_levels) - 1):
        low = pyramid_down(levels[-1])
        levels[-1] = levels[-1] - pyramid_up(low)
        levels.append(low)
    return levels


def pyramid_resolutions(resolution, min_resolution=16):
    """[resolution, resolution / 2, ...] down to the last one >= min_resolution."""
    resolution, min_resolution = int(resolution), int(min_resolution)
    if min_resolution < 1 or resolution < min_resolution:
        raise ValueError(f"need resolution >= min_resolution >= 1. Received: resolution={resolution}, "
                         f"min_resolution={min_resolution}")
    resolutions = [resolution]
    while resolutions[-1] % 2 == 0 and resolutions[-1] // 2 >= min_resolution:
        resolutions.append(resolutions[-1] // 2)
    return resolutions


def laplacian_descriptors(images, descriptors_per_image=128, patch_size=7, min_resolution=16, seed=0):
    """Random patches of every Laplacian pyramid level of a minibatch.

    1. Pyramid levels at pyramid_resolutions(R, min_resolution), finest first,
       on the pixel values 0..255 as float32.
    2. Per level, `descriptors_per_image` patch centres per image, uniform over
       the positions where the whole patch fits (np.random.RandomState(seed);
       rows then columns, level after level).

    Args:
        images: uint8 [N, R, R, C] (NHWC).
        descriptors_per_image: int >= 1 (reference: 128).
        patch_size: odd int, <= the coarsest resolution (reference: 7).
        min_resolution: coarsest level kept (reference: 16).
        seed: int; use a different one for each minibatch of a set.

    Returns:
        list over levels of float32 [N * descriptors_per_image, patch_size * patch_size * C],
        each row a patch flattened as (row, column, channel), channel fastest;
        the rows of image i are i * descriptors_per_image, ...
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be uint8 [N, R, R, C]. Received: {images.dtype} {images.shape}")
    descriptors_per_image, patch_size = int(descriptors_per_image), int(patch_size)
    if descriptors_per_image < 1:
        raise ValueError(f"descriptors_per_image must be >= 1. Received: {descriptors_per_image}")
    resolutions = pyramid_resolutions(images.shape[1], min_resolution)
    if patch_size < 1 or patch_size % 2 == 0 or patch_size > resolutions[-1]:
        raise ValueError(f"patch_size must be odd and <= the coarsest resolution {resolutions[-1]}. "
                         f"Received: patch_size={patch_size}")
    rng = np.random.RandomState(seed)
    half = patch_size // 2
    offsets = np.arange(-half, half + 1)
    count = images.shape[0] * descriptors_per_image
    image_index = np.repeat(np.arange(images.shape[0]), descriptors_per_image)
    descriptors = []
    for level in laplacian_pyramid(images.astype(np.float32), len(resolutions)):
        rows = rng.randint(half, level.shape[1] - half, size=count)
        cols = rng.randint(half, level.shape[2] - half, size=count)
        patches = level[image_index[:, None, None], (rows[:, None] + offsets)[:, :, None],
                        (cols[:, None] + offsets)[:, None, :]]  # [count, p, p, C]
        descriptors.append(patches.reshape(count, -1))
    return descriptors


def normalize_descriptors(descriptors, num_channels):
    """Per channel, subtract the mean and divide by the std over all rows and patch positions.

    descriptors: [M, P * C] with the channel fastest (as `laplacian_descriptors`).
    Returns float32 [M, P * C]. A constant channel is only centred (the
    reference would divide by zero).
    """
    descriptors = np.asarray(descriptors, dtype=np.float32)
    num_channels = int(num_channels)
    if descriptors.ndim != 2 or num_channels < 1 or descriptors.shape[1] % num_channels:
        raise ValueError(f"descriptors must be [M, P * {num_channels}]. Received: shape {descriptors.shape}")
    per_channel = descriptors.reshape(descriptors.shape[0], -1, num_channels)  # [M, P, C]
    mean = per_channel.mean(axis=(0, 1), dtype=np.float64)
    std = per_channel.std(axis=(0, 1), dtype=np.float64)
    std[std == 0] = 1
    normalized = (per_channel - mean.astype(np.float32)) / std.astype(np.float32)
    return normalized.reshape(descriptors.shape)


def sliced_wasserstein_distance(real_descriptors, fake_descriptors, dir_repeats=4, dirs_per_repeat=128,
                                seed=0):
    """Mean 1-D Wasserstein-1 distance of the two sets along random unit directions.

    For each of `dir_repeats` repeats, draw `dirs_per_repeat` directions
    (np.random.RandomState(seed).randn(D, dirs_per_repeat), columns normalized),
    project both sets, sort each projection: the 1-D distance of two equally
    sized samples is the mean |difference| of their sorted values. Average over
    directions and repeats.

    Args:
        real_descriptors, fake_descriptors: [M, D] with the same M and D (normalized
            with `normalize_descriptors` for SWD, as `swd` does).
        dir_repeats, dirs_per_repeat: ints >= 1.
        seed: seed of the directions.

    Returns:
        float, in descriptor units.
    """
    real = np.asarray(real_descriptors, dtype=np.float32)
    fake = np.asarray(fake_descriptors, dtype=np.float32)
    if real.ndim != 2 or real.shape != fake.shape or real.shape[0] < 1:
        raise ValueError(f"real and fake descriptors must both be [M, D] with the same M >= 1 and D. "
                         f"Received: {real.shape} and {fake.shape}")
    if int(dir_repeats) < 1 or int(dirs_per_repeat) < 1:
        raise ValueError(f"dir_repeats and dirs_per_repeat must be >= 1. Received: {dir_repeats!r}, "
                         f"{dirs_per_repeat!r}")
    rng = np.random.RandomState(seed)
    distances = []
    for _ in range(int(dir_repeats)):
        directions = rng.randn(real.shape[1], int(dirs_per_repeat))  # [D, dirs]
        directions = (directions / np.linalg.norm(directions, axis=0, keepdims=True)).astype(np.float32)
        real_sorted = np.sort(real @ directions, axis=0)  # [M, dirs]
        fake_sorted = np.sort(fake @ directions, axis=0)
        distances.append(np.mean(np.abs(real_sorted - fake_sorted), dtype=np.float64))
    return float(np.mean(distances))


def swd(real_levels, fake_levels, resolution, num_channels=3, dir_repeats=4, dirs_per_repeat=128, seed=0):
    """SWD x 1e3 per pyramid level and their average, as the reference reports them.

    Args:
        real_levels, fake_levels: lists over levels (finest first) of [M, D]
            descriptors of the whole real / generated set (`laplacian_descriptors`
            concatenated over minibatches), unnormalized; same M for both sets.
        resolution: the image resolution (level i has resolution / 2^i).
        num_channels: image channels C (descriptor dimension P * C).
        dir_repeats, dirs_per_repeat: as `sliced_wasserstein_distance`.
        seed: level i draws its directions from seed + i.

    Returns:
        {"swd_{res}": float for each level, ..., "swd_avg": mean of those}.
    """
    if len(real_levels) != len(fake_levels) or not real_levels:
        raise ValueError(f"need the same number (>= 1) of real and fake levels. Received: "
                         f"{len(real_levels)} and {len(fake_levels)}")
    resolution = int(resolution)
    if resolution % 2 ** (len(real_levels) - 1):
        raise ValueError(f"resolution {resolution} does not have {len(real_levels)} pyramid levels")
    results = {}
    for i, (real, fake) in enumerate(zip(real_levels, fake_levels)):
        distance = sliced_wasserstein_distance(
            normalize_descriptors(real, num_channels), normalize_descriptors(fake, num_channels),
            dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat, seed=seed + i)
        results[f"swd_{resolution >> i}"] = distance * 1e3
    results["swd_avg"] = float(np.mean(list(results.values())))
    return results
