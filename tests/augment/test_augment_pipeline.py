"""AugmentPipe as a whole: named pipelines and options, p = 0 identity, keys and draws, dtypes,
tf.function with an unknown batch, tf.distribute, XLA, and per-group statistics at p = 1."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.augment import DEFAULTS, PIPELINES, AugmentPipe
from stylegan2_tf.ops import use_impl

# train.py's augpipe_specs of stylegan2-ada-pytorch.
BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
SPECS = {
    "blit": BLIT, "geom": GEOM, "color": COLOR, "filter": {"imgfilter": 1}, "noise": {"noise": 1},
    "cutout": {"cutout": 1}, "bg": {**BLIT, **GEOM}, "bgc": {**BLIT, **GEOM, **COLOR},
    "bgcf": {**BLIT, **GEOM, **COLOR, "imgfilter": 1},
    "bgcfn": {**BLIT, **GEOM, **COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**BLIT, **GEOM, **COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}
IMAGES = np.random.RandomState(0).uniform(-1, 1, [4, 24, 24, 3]).astype(np.float32)


def test_named_pipelines_and_defaults_are_the_references():
    assert PIPELINES == SPECS
    assert DEFAULTS == {
        "xflip": 0, "rotate90": 0, "xint": 0, "xint_max": 0.125, "scale": 0, "rotate": 0, "aniso": 0,
        "xfrac": 0, "scale_std": 0.2, "rotate_max": 1, "aniso_std": 0.2, "xfrac_std": 0.125,
        "brightness": 0, "contrast": 0, "lumaflip": 0, "hue": 0, "saturation": 0, "brightness_std": 0.2,
        "contrast_std": 0.5, "hue_max": 1, "saturation_std": 1, "imgfilter": 0,
        "imgfilter_bands": (1, 1, 1, 1), "imgfilter_std": 1, "noise": 0, "cutout": 0, "noise_std": 0.1,
        "cutout_size": 0.5,
    }
    pipe = AugmentPipe("bgc", xflip=0, scale_std=0.3)
    assert pipe.options["xflip"] == 0 and pipe.options["scale_std"] == 0.3 and pipe.options["hue"] == 1
    assert pipe.transforms == ("rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                               "contrast", "lumaflip", "hue", "saturation")


def test_bad_names_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="bgcfnc"):
        AugmentPipe("bgcx")
    with pytest.raises(ValueError, match="xflipp.*valid options: xflip, rotate90"):
        AugmentPipe("bgc", xflipp=1)
    with pytest.raises(ValueError, match="imgfilter_bands"):
        AugmentPipe("filter", imgfilter_bands=[1, 1])


def test_config_rebuilds_the_pipe():
    pipe = AugmentPipe("bgcf", static_shapes=True, hue_max=0.5, imgfilter_bands=[1, 0, 1, 0])
    again = AugmentPipe(**pipe.get_config())
    assert again.options == pipe.options and again.static_shapes
    np.testing.assert_array_equal(again(IMAGES, 0.7, [1, 2]), pipe(IMAGES, 0.7, [1, 2]))


@pytest.mark.parametrize("name", list(SPECS))
def test_p_zero_is_the_identity(name):
    for static_shapes in (False, True):
        out = AugmentPipe(name, static_shapes=static_shapes)(IMAGES, tf.Variable(0.0), [3, 4])
        assert out.dtype == tf.float32
        np.testing.assert_array_equal(out.numpy(), IMAGES)


def test_result_is_a_function_of_the_key():
    pipe = AugmentPipe("bgcfnc")
    a, b = pipe(IMAGES, 0.8, [1, 2]), pipe(IMAGES, 0.8, tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, pipe(IMAGES, 0.8, [1, 3]))
    # A transform's draws do not depend on which other transforms are enabled.
    alone = AugmentPipe(None, xflip=1).draw([4, 24, 24, 3], [1, 2])
    np.testing.assert_array_equal(alone["xflip"], pipe.draw([4, 24, 24, 3], [1, 2])["xflip"])


def test_call_is_apply_of_draw():
    pipe = AugmentPipe("bgcfnc")
    draws = pipe.draw([4, 24, 24, 3], [5, 6])
    assert draws["noise_field"].shape == (4, 24, 24, 3) and draws["imgfilter"].shape == (4, 4)
    np.testing.assert_array_equal(pipe(IMAGES, 0.6, [5, 6]), pipe.apply(IMAGES, 0.6, draws))


def test_float16_in_float16_out():
    pipe = AugmentPipe("bgcfnc")
    half = pipe(IMAGES.astype(np.float16), 1.0, [1, 2])
    assert half.dtype == tf.float16
    full = pipe(IMAGES.astype(np.float16).astype(np.float32), 1.0, [1, 2])
    np.testing.assert_allclose(half.numpy().astype(np.float32), full, atol=2e-2 * np.abs(full).max())


def test_tf_function_with_unknown_batch_and_both_shape_modes():
    for static_shapes in (False, True):
        pipe = AugmentPipe("bgcfnc", static_shapes=static_shapes)
        fn = tf.function(pipe.__call__, input_signature=[
            tf.TensorSpec([None, 24, 24, 3]), tf.TensorSpec([]), tf.TensorSpec([2], tf.int64)])
        for n in (1, 4):
            out = fn(IMAGES[:n], tf.constant(0.9), tf.constant([7, 8], tf.int64))
            np.testing.assert_allclose(out, pipe(IMAGES[:n], 0.9, [7, 8]), atol=1e-5)
        np.testing.assert_array_equal(fn(IMAGES, tf.constant(0.0), tf.constant([7, 8], tf.int64)), IMAGES)


def test_replica_context():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    pipe = AugmentPipe("bgc")

    @tf.function
    def step(images, p, key):
        return strategy.run(pipe, args=(images, p, key))

    out = strategy.experimental_local_results(step(IMAGES, tf.constant(0.9), tf.constant([1, 2])))[0]
    np.testing.assert_allclose(out, pipe(IMAGES, 0.9, [1, 2]), atol=1e-5)


def test_xla_with_static_shapes():
    pipe = AugmentPipe("bgcfnc", static_shapes=True)
    draws = pipe.draw([4, 24, 24, 3], [1, 2])  # XLA draws other normal numbers: give them
    with use_impl("ref"):
        out = tf.function(pipe.apply, jit_compile=True)(IMAGES, tf.constant(0.9), draws)
    np.testing.assert_allclose(out, pipe.apply(IMAGES, 0.9, draws), atol=1e-4)


# --- statistics at p = 1 ----------------------------------------------------------------------


def test_blit_statistics():
    ramp = np.tile(np.linspace(-1, 1, 8)[None, None, :, None], [512, 8, 1, 1]).astype(np.float32)
    out = AugmentPipe(None, xflip=1)(ramp, 1.0, [1, 2]).numpy()
    flipped = out[:, 4, 0, 0] > 0
    assert abs(flipped.mean() - 0.5) < 0.1
    out = AugmentPipe(None, xflip=1)(ramp, 0.5, [1, 2]).numpy()
    assert abs((out[:, 4, 0, 0] > 0).mean() - 0.25) < 0.1  # selected (1/2) and flipped (1/2)
    out = AugmentPipe(None, rotate90=1)(ramp, 1.0, [3, 4]).numpy()
    turns = np.array([[np.allclose(out[i], np.rot90(ramp[i], k, axes=(0, 1)), atol=0.1) for k in range(4)]
                      for i in range(512)])
    assert np.all(turns.sum(axis=1) == 1) and np.all(np.abs(turns.mean(axis=0) - 0.25) < 0.1)


def test_geom_statistics():
    x = np.tile(np.linspace(-1, 1, 16)[None, None, :, None], [256, 16, 1, 1]).astype(np.float32)
    for p in (1.0, 0.5):
        out = AugmentPipe(None, scale=1)(x, p, [5, 6]).numpy()
        changed = ~np.all(out == x, axis=(1, 2, 3))
        assert abs(changed.mean() - p) < 0.1
        # Scaling about the centre keeps the centre's value; the slope scales by 1 / s (std 0.2 log2).
        slope = (out[:, 8, 9, 0] - out[:, 8, 6, 0]) / (x[0, 8, 9, 0] - x[0, 8, 6, 0])
        log_s = -np.log2(slope[changed])
        assert abs(log_s.mean()) < 0.05 and abs(log_s.std() - 0.2) < 0.05
    out = AugmentPipe(None, rotate=1)(x, 1.0, [7, 8]).numpy()
    angle = np.arctan2(out[:, 9, 8, 0] - out[:, 7, 8, 0], out[:, 8, 9, 0] - out[:, 8, 7, 0])
    assert np.histogram(angle, bins=4, range=(-np.pi, np.pi))[0].min() > 40  # roughly uniform


def test_color_statistics():
    gray = np.full([4096, 1, 1, 3], 0.25, np.float32)
    shift = AugmentPipe(None, brightness=1)(gray, 1.0, [1, 2]).numpy()[:, 0, 0, 0] - 0.25
    assert abs(shift.mean()) < 0.02 and abs(shift.std() - 0.2) < 0.02
    contrast = AugmentPipe(None, contrast=1)(gray, 1.0, [1, 2]).numpy()[:, 0, 0, 0] / 0.25
    assert abs(np.log2(contrast).mean()) < 0.05 and abs(np.log2(contrast).std() - 0.5) < 0.05
    flip = AugmentPipe(None, lumaflip=1)(gray, 1.0, [1, 2]).numpy()[:, 0, 0, 0]
    assert abs((flip < 0).mean() - 0.5) < 0.05
    red = np.tile(np.array([1.0, 0.0, 0.0], np.float32), [4096, 1, 1, 1])
    hue = AugmentPipe(None, hue=1)(red, 1.0, [1, 2]).numpy()[:, 0, 0]
    chroma = hue - hue.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(chroma, axis=-1), np.sqrt(2 / 3), atol=1e-5)
    assert abs((hue.argmax(axis=-1) == 0).mean() - 1 / 3) < 0.05  # hue uniform over the circle
    sat = AugmentPipe(None, saturation=1)(red, 1.0, [1, 2]).numpy()[:, 0, 0]
    gain = np.linalg.norm(sat - sat.mean(axis=-1, keepdims=True), axis=-1) / np.sqrt(2 / 3)
    assert abs(np.log2(gain).mean()) < 0.1 and abs(np.log2(gain).std() - 1) < 0.1


def test_filter_statistics():
    x = np.random.RandomState(1).normal(size=[256, 22, 22, 1]).astype(np.float32)
    pipe = AugmentPipe("filter")
    for p, unchanged in ((1.0, 0.0), (0.5, 0.5**4)):
        out = pipe(x, p, [1, 2]).numpy()
        assert abs(np.all(out == x, axis=(1, 2, 3)).mean() - unchanged) < 0.05
    # White noise has equal power in every band: amplifications of 2^N(0, 1), renormalized
    # for a 1/f spectrum, keep the median power within a factor of 2.
    assert 0.5 < np.median((out**2).mean(axis=(1, 2, 3))) < 2
