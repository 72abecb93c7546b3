"""Colour augmentations with given draws against colour matrices built in numpy from their
formulas (brightness, contrast, luma flip, hue rotation, saturation), RGB and single-channel."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.augment import AugmentPipe

N = 4
V = np.array([1, 1, 1, 0]) / np.sqrt(3)  # luma axis
VV = np.outer(V, V)
DRAWS = {
    "brightness": [0.5, -1.0, 2.0, 0.0],
    "contrast": [0.5, -1.0, 2.0, 0.3],
    "lumaflip": [0.7, 0.2, 0.9, 0.5],  # floor(2u): 1, 0, 1, 1
    "hue": [0.1, 0.6, 0.9, 0.5],
    "saturation": [0.5, -1.0, 2.0, -0.2],
}


def color_matrix(d, channels=3):
    """The reference's 4x4 matrix for one image's draws d (options at their defaults, p = 1)."""
    m = np.eye(4)
    if "brightness" in d:
        b = d["brightness"] * 0.2
        m = np.array([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]) @ m
    if "contrast" in d:
        m = np.diag([2 ** (d["contrast"] * 0.5)] * 3 + [1]) @ m
    if "lumaflip" in d:
        m = (np.eye(4) - 2 * VV * np.floor(d["lumaflip"] * 2)) @ m  # Householder reflection
    if "hue" in d and channels > 1:
        theta = (d["hue"] * 2 - 1) * np.pi
        cross = np.zeros((4, 4))  # [v]_x: cross product with v
        cross[:3, :3] = [[0, -V[2], V[1]], [V[2], 0, -V[0]], [-V[1], V[0], 0]]
        rgb_rotation = VV + np.cos(theta) * (np.diag([1.0, 1, 1, 0]) - VV) + np.sin(theta) * cross  # Rodrigues
        m = (rgb_rotation + np.diag([0, 0, 0, 1.0])) @ m
    if "saturation" in d and channels > 1:
        m = (VV + (np.eye(4) - VV) * 2 ** d["saturation"]) @ m
    return m


def augment(names, images, p=1.0, gates=None):
    pipe = AugmentPipe(None, **{name: 1 for name in names})
    draws = {}
    for name in names:
        draws[name] = tf.constant(DRAWS[name], tf.float32)
        draws[name + "_gate"] = tf.constant(np.zeros(N) if gates is None else gates, tf.float32)
    return pipe.apply(tf.constant(images), p, draws).numpy()


def expected(names, images):
    out = []
    for i, image in enumerate(images):
        m = color_matrix({name: np.float64(np.float32(DRAWS[name][i])) for name in names}, image.shape[-1])
        if image.shape[-1] == 3:
            out.append(image @ m[:3, :3].T + m[:3, 3])
        else:
            rows = m[:3].mean(axis=0)
            out.append(image * rows[:3].sum() + rows[3])
    return np.stack(out)


IMAGES = np.random.RandomState(0).uniform(-1, 1, [N, 5, 6, 3])


@pytest.mark.parametrize("names", [[name] for name in DRAWS] + [list(DRAWS)], ids=lambda n: "+".join(n))
def test_color_transforms_match_their_matrices(names):
    np.testing.assert_allclose(augment(names, IMAGES), expected(names, IMAGES), atol=2e-6)


def test_single_channel_images_use_the_mean_row_and_skip_hue_and_saturation():
    gray = IMAGES[..., :1]
    np.testing.assert_allclose(augment(list(DRAWS), gray), expected(list(DRAWS), gray), atol=2e-6)
    pipe = AugmentPipe("color")
    assert not {"hue", "saturation"} & set(pipe.draw([N, 5, 6, 1], [1, 2]))
    assert np.array_equal(AugmentPipe(None, hue=1, saturation=1)(gray, 1.0, [1, 2]).numpy(), gray)


def test_hue_and_saturation_keep_luma_and_lumaflip_negates_it():
    rgb = IMAGES
    luma = rgb.mean(axis=-1)
    for names in (["hue"], ["saturation"], ["hue", "saturation"]):
        np.testing.assert_allclose(augment(names, rgb).mean(axis=-1), luma, atol=1e-6)
    flipped = augment(["lumaflip"], rgb)
    flips = np.floor(np.array(DRAWS["lumaflip"]) * 2).astype(bool)
    np.testing.assert_allclose(flipped.mean(axis=-1)[flips], -luma[flips], atol=1e-6)
    np.testing.assert_array_equal(flipped[~flips], rgb[~flips])


def test_gates_select_images():
    gates = np.array([0.1, 0.6, 0.4, 0.9])  # p = 0.5: images 0 and 2
    out = augment(["brightness"], IMAGES, p=0.5, gates=gates)
    np.testing.assert_allclose(out[[0, 2]], expected(["brightness"], IMAGES)[[0, 2]], atol=1e-6)
    np.testing.assert_array_equal(out[[1, 3]], IMAGES[[1, 3]])


def test_color_needs_one_or_three_channels():
    with pytest.raises(ValueError, match="RGB"):
        AugmentPipe("color")(np.zeros([2, 4, 4, 2], np.float32), 1.0, [1, 2])
