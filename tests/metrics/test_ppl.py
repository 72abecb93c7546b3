"""PPL: distances against a re-computation by hand (w/z spaces, end/full sampling, labels),
identical noise at both ends, crop and downsampling, the percentile filter against sorting,
determinism, progress, input errors."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.metrics.ppl import path_length_distances, perceptual_path_length, prepare_for_distance
from stylegan2_tf.networks.generator import Generator

NOISE = 0.5  # noise starts switched off (strength 0): the tests switch it on


@pytest.fixture(scope="module")
def network_size():
    return {"mapping_layers": 2}


def mean_squared(img0, img1):
    return tf.reduce_mean(tf.square(img0 - img1), axis=[1, 2, 3])


def classic_slerp(a, b, t):
    """sin((1 - t) angle) a + sin(t angle) b over sin(angle), on unit vectors."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    angle = np.arccos(np.sum(a * b, axis=1, keepdims=True))
    return (np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle)


def by_hand(G, num_samples, batch_size, epsilon, space, sampling, seed, labels=None):
    rng = np.random.RandomState(seed)
    out = []
    for begin in range(0, num_samples, batch_size):
        b = min(batch_size, num_samples - begin)
        z = rng.standard_normal([2 * b, G.z_dim])
        t = rng.uniform(size=b) * (sampling == "full")
        c = None if labels is None else labels[rng.randint(len(labels), size=b)]
        noise_seed = tf.constant(rng.randint(2 ** 30, size=2), tf.int32)
        images = []
        for step in (0.0, epsilon):
            if space == "w":
                w0 = G.mapping(z[:b].astype(np.float32), c).numpy().astype(np.float64)
                w1 = G.mapping(z[b:].astype(np.float32), c).numpy().astype(np.float64)
                ws = w0 + (w1 - w0) * (t + step)[:, None, None]
            else:
                ws = G.mapping(classic_slerp(z[:b], z[b:], (t + step)[:, None]).astype(np.float32), c)
            images.append(G.synthesis(tf.constant(ws, tf.float32), noise_mode="random",
                                      noise_seed=noise_seed).numpy())
        out.append(np.mean(np.square(images[0] - images[1]), axis=(1, 2, 3)) / epsilon ** 2)
    return np.concatenate(out)


@pytest.mark.parametrize("space, sampling, c_dim", [("w", "end", 0), ("w", "full", 0), ("z", "full", 0),
                                                    ("z", "end", 2), ("w", "full", 2)])
def test_matches_computation_by_hand(space, sampling, c_dim, tiny_generator):
    G = tiny_generator(c_dim, noise_strength=NOISE)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 1]] if c_dim else None
    kwargs = {"epsilon": 1e-2, "space": space, "sampling": sampling, "batch_size": 4, "seed": 3}
    result = path_length_distances(G, mean_squared, 10, labels=labels, **kwargs)
    expected = by_hand(G, 10, 4, 1e-2, space, sampling, 3, labels)
    assert result.shape == (10,) and result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=2e-3)


def test_both_ends_share_the_noise(tiny_generator):
    G = tiny_generator(noise_strength=NOISE)
    raw = {eps: path_length_distances(G, mean_squared, 6, epsilon=eps, sampling="full", seed=1) * eps ** 2
           for eps in (1e-1, 1e-2, 1e-3)}
    # Smooth in epsilon: the squared difference falls like epsilon^2 (noise drawn apart would not).
    assert np.all(raw[1e-3] < raw[1e-2] / 30) and np.all(raw[1e-2] < raw[1e-1] / 30)
    ws = G.mapping(np.random.RandomState(0).randn(2, 8).astype(np.float32))
    apart = mean_squared(G.synthesis(ws, noise_mode="random", noise_seed=tf.constant([1, 2])),
                         G.synthesis(ws, noise_mode="random", noise_seed=tf.constant([3, 4])))
    assert np.all(apart.numpy() > 1e3 * raw[1e-3].max())


def test_deterministic_and_progress(tiny_generator):
    G = tiny_generator(noise_strength=NOISE)
    counts = []
    first = path_length_distances(G, mean_squared, 10, batch_size=4, seed=5, progress=counts.append)
    assert counts == [4, 8, 10]
    np.testing.assert_array_equal(path_length_distances(G, mean_squared, 10, batch_size=4, seed=5), first)
    assert not np.allclose(path_length_distances(G, mean_squared, 10, batch_size=4, seed=6), first)
    assert np.all(first > 0)


def test_crop_downsample_and_gray():
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(prepare_for_distance(x, crop=True).numpy(), x[:, 6:14, 4:12])
    np.testing.assert_array_equal(prepare_for_distance(x).numpy(), x)
    big = np.random.default_rng(1).normal(size=(1, 1024, 1024, 1)).astype(np.float32)
    small = prepare_for_distance(big).numpy()
    assert small.shape == (1, 256, 256, 3)
    np.testing.assert_allclose(small[..., 0], big[0, :, :, 0].reshape(256, 4, 256, 4).mean(axis=(1, 3))[None],
                               atol=1e-6)
    np.testing.assert_array_equal(small[..., 0], small[..., 2])
    # The crop comes first, then the factor of what remains (512 // 256).
    cropped = prepare_for_distance(big, crop=True).numpy()
    expected = big[0, 384:896, 256:768, 0].reshape(256, 2, 256, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(cropped[0, :, :, 1], expected, atol=1e-6)


def test_percentile_filter_against_sorting():
    rng = np.random.default_rng(0)
    distances = np.concatenate([rng.lognormal(size=537), [1e6, -50.0, 3e5]])
    ordered = np.sort(distances)
    n = len(ordered)
    lo, hi = ordered[int(np.floor(0.01 * (n - 1)))], ordered[int(np.ceil(0.99 * (n - 1)))]
    expected = distances[(distances >= lo) & (distances <= hi)].mean()
    assert perceptual_path_length(distances) == pytest.approx(expected, rel=1e-12)
    assert perceptual_path_length([2.0]) == 2.0
    assert np.isnan(perceptual_path_length([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="vector"):
        perceptual_path_length(np.zeros((2, 2)))


@pytest.mark.parametrize("kwargs, message", [
    ({"space": "x"}, "space"),
    ({"sampling": "middle"}, "sampling"),
    ({"epsilon": 0.0}, "epsilon"),
    ({"num_samples": 0}, "num_samples"),
    ({"labels": np.zeros((4, 3), np.float32)}, "unconditional"),
    ({"distance": lambda a, b: tf.zeros([1])}, r"return \[2\]"),
])
def test_errors(kwargs, message, tiny_generator):
    args = {"distance": mean_squared, "num_samples": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        path_length_distances(tiny_generator(noise_strength=NOISE), **args)


def test_float16_generator_refused(tiny_generator):
    G = tiny_generator(synthesis={"num_fp16_res": 1, "conv_clamp": 256})
    with pytest.raises(ValueError, match="float16"):
        path_length_distances(G, mean_squared, 2)
    float32 = Generator.from_config({**G.get_config(), "synthesis_kwargs": {
        **G.get_config()["synthesis_kwargs"], "num_fp16_res": 0}})
    float32.set_weights(G.get_weights())  # the float16 blocks keep float32 weights
    assert path_length_distances(float32, mean_squared, 2).shape == (2,)


def test_conditional_needs_labels(tiny_generator):
    G = tiny_generator(c_dim=2, noise_strength=NOISE)
    with pytest.raises(ValueError, match="conditional"):
        path_length_distances(G, mean_squared, 2)
    with pytest.raises(ValueError, match=r"labels must be \[M >= 1, 2\]"):
        path_length_distances(G, mean_squared, 2, labels=np.zeros((3, 5)))
