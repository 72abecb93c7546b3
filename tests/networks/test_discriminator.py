"""Discriminator: minibatch stddev against numpy, architectures, conditioning heads,
weight names, input checks, config round trip, R1 gradients (custom vs reference
ops, to second order) and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.networks.discriminator import (
    Discriminator,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MinibatchStdDev,
)
from stylegan2_tf.ops import use_impl


@pytest.fixture(scope="module")
def network_size():
    """16x16 images; channels 16 @ 16x16, 32 @ 8x8 and 4x4; labels mapped by 2 layers."""
    return {"resolution": 16, "mapping_layers": 2, "channel_base": 256, "channel_max": 32}


def _images(n, resolution=16, seed=0):
    return np.random.RandomState(seed).randn(n, resolution, resolution, 3).astype(np.float32)


def _labels(n, c_dim, seed=1):
    return np.eye(c_dim, dtype=np.float32)[np.random.RandomState(seed).randint(0, c_dim, n)]


def _copy_weights(src, dst):
    assert [v.path for v in src.weights] == [v.path for v in dst.weights]
    dst.set_weights(src.get_weights())


# --------------------------------------------------------------------------------------
# MinibatchStdDev.

def mbstd_numpy(x, group_size, num_channels):
    """Direct loops: sample i is in group i % (N // G); std over the group's samples."""
    n, h, w, c = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g
    x = x.astype(np.float64)
    out = np.zeros((n, h, w, num_channels))
    per = c // num_channels
    for i in range(n):
        members = x[[j for j in range(n) if j % m == i % m]]
        assert len(members) == g
        for f in range(num_channels):
            chunk = members[..., f * per:(f + 1) * per]  # [G, H, W, per]
            std = np.sqrt(np.mean((chunk - chunk.mean(axis=0)) ** 2, axis=0) + 1e-8)
            out[i, :, :, f] = std.mean()
    return np.concatenate([x, out], axis=-1)


@pytest.mark.parametrize("n, group_size, num_channels", [
    (8, 4, 1),     # two groups of 4: {0, 2, 4, 6} and {1, 3, 5, 7}
    (8, 4, 2),     # two new features from two channel halves
    (2, 4, 1),     # N < group_size: one group of N
    (3, None, 1),  # None: the whole minibatch
    (6, 2, 3),
])
def test_minibatch_stddev_matches_numpy(n, group_size, num_channels):
    x = np.random.RandomState(n).randn(n, 4, 3, 6).astype(np.float32)
    x[1::2] *= 3.0  # make the groups differ
    y = MinibatchStdDev(group_size, num_channels)(x)
    assert y.shape == (n, 4, 3, 6 + num_channels) and y.dtype == tf.float32
    np.testing.assert_allclose(y.numpy(), mbstd_numpy(x, group_size, num_channels),
                               rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_group_assignment_is_interleaved():
    # Samples 0 and 2 form a group (std 0 apart from eps), 1 and 3 the other.
    x = np.zeros((4, 1, 1, 1), np.float32)
    x[1], x[3] = 1.0, -1.0
    y = MinibatchStdDev(group_size=2)(x).numpy()[:, 0, 0, 1]
    np.testing.assert_allclose(y, [1e-4, 1.0, 1e-4, 1.0], rtol=1e-4)


def test_minibatch_stddev_rejects_indivisible_batch():
    layer = MinibatchStdDev(group_size=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch size.*group size"):
        layer(np.zeros((6, 4, 4, 2), np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 2], tf.float32)])
    def run(x):
        return layer(x)

    assert run(tf.zeros([8, 4, 4, 2])).shape == (8, 4, 4, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Batch size:.*\[6\].*group size:.*\[4\]"):
        run(tf.zeros([6, 4, 4, 2]))


def test_minibatch_stddev_rejects_bad_channels():
    with pytest.raises(ValueError, match="multiple of num_channels"):
        MinibatchStdDev(4, num_channels=2)(np.zeros((4, 4, 4, 3), np.float32))


# --------------------------------------------------------------------------------------
# Whole network.

@pytest.mark.parametrize("architecture", ["resnet", "skip", "orig"])
@pytest.mark.parametrize("c_dim", [0, 5])
def test_output_shape_and_dtype(architecture, c_dim, tiny_discriminator):
    D = tiny_discriminator(c_dim, architecture=architecture)
    img = _images(4)
    inputs = img if c_dim == 0 else (img, _labels(4, c_dim))
    logits = D(inputs)
    assert logits.shape == (4, 1) and logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))
    # call(img, c) is the same as call((img, c)).
    if c_dim:
        np.testing.assert_array_equal(D(img, _labels(4, c_dim)).numpy(), logits.numpy())


def test_unknown_batch_in_tf_function(tiny_discriminator):
    D = tiny_discriminator(3, resolution=8)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3]), tf.TensorSpec([None, 3])])
    def run(img, c):
        return D((img, c))

    img, c = _images(4, 8), _labels(4, 3)
    np.testing.assert_allclose(run(img, c).numpy(), D((img, c)).numpy(), rtol=1e-5, atol=1e-6)


def test_weight_names_and_shapes(tiny_discriminator):
    D = tiny_discriminator(5, resolution=16)
    shapes = {v.path: tuple(v.shape) for v in D.weights}
    assert shapes == {
        "b16/fromrgb/weight": (1, 1, 3, 16), "b16/fromrgb/bias": (16,),
        "b16/conv0/weight": (3, 3, 16, 16), "b16/conv0/bias": (16,),
        "b16/conv1/weight": (3, 3, 16, 32), "b16/conv1/bias": (32,),
        "b16/skip/weight": (1, 1, 16, 32),
        "b8/conv0/weight": (3, 3, 32, 32), "b8/conv0/bias": (32,),
        "b8/conv1/weight": (3, 3, 32, 32), "b8/conv1/bias": (32,),
        "b8/skip/weight": (1, 1, 32, 32),
        "mapping/embed/weight": (5, 32), "mapping/embed/bias": (32,),
        "mapping/fc0/weight": (32, 32), "mapping/fc0/bias": (32,),
        "mapping/fc1/weight": (32, 32), "mapping/fc1/bias": (32,),
        "b4/conv/weight": (3, 3, 33, 32), "b4/conv/bias": (32,),  # +1: the mbstd feature
        "b4/fc/weight": (4 * 4 * 32, 32), "b4/fc/bias": (32,),
        "b4/out/weight": (32, 32), "b4/out/bias": (32,),
    }
    assert all(v.dtype == "float32" and v.trainable for v in D.weights)


def test_architectures_place_fromrgb_and_skip(tiny_discriminator):
    names = {arch: {v.path for v in tiny_discriminator(architecture=arch).weights}
             for arch in ("resnet", "skip", "orig")}
    fromrgb = {arch: sorted(n.split("/")[0] for n in ns if "/fromrgb/weight" in n)
               for arch, ns in names.items()}
    assert fromrgb == {"resnet": ["b16"], "skip": ["b16", "b4", "b8"], "orig": ["b16"]}
    assert {n for n in names["resnet"] if "/skip/" in n} == {"b16/skip/weight", "b8/skip/weight"}
    assert not any("/skip/" in n for n in names["skip"] | names["orig"])
    # Unconditional: one output; no mapping.
    assert "b4/out/weight" in names["orig"]
    assert not any(n.startswith("mapping/") for n in names["orig"])


def test_official_conditioning_is_unscaled_projection_on_c(tiny_discriminator):
    D = tiny_discriminator(4, resolution=8, conditioning="official")
    shapes = {v.path: tuple(v.shape) for v in D.weights}
    assert shapes["b4/out/weight"] == (32, 4) and not any(k.startswith("mapping/") for k in shapes)
    img = _images(4, 8)
    eye = np.eye(4, dtype=np.float32)
    per_class = np.concatenate([D((img, np.tile(eye[k:k + 1], [4, 1]))).numpy() for k in range(4)], 1)
    c = np.random.RandomState(3).randn(4, 4).astype(np.float32)
    np.testing.assert_allclose(D((img, c)).numpy()[:, 0], np.sum(per_class * c, axis=1),
                               rtol=1e-5, atol=1e-5)


def test_epilogue_projection_scaling():
    x = np.random.RandomState(0).randn(4, 4, 4, 8).astype(np.float32)
    cmap = np.random.RandomState(1).randn(4, 6).astype(np.float32)
    for conditioning, scale in (("ada", 1 / np.sqrt(6)), ("official", 1.0)):
        ep = DiscriminatorEpilogue(8, cmap_dim=6, conditioning=conditioning)
        logits = ep(x, None, cmap).numpy()
        out = ep.out(ep.fc(ep.conv(ep.mbstd(x)))).numpy()
        np.testing.assert_allclose(logits, np.sum(out * cmap, 1, keepdims=True) * scale,
                                   rtol=1e-5, atol=1e-6)


def test_mbstd_can_be_disabled(tiny_discriminator):
    D = tiny_discriminator(resolution=8, mbstd_num_channels=0)
    assert D.b4.mbstd is None
    assert {v.path: tuple(v.shape) for v in D.weights}["b4/conv/weight"] == (3, 3, 32, 32)
    assert D(_images(3, 8)).shape == (3, 1)  # any batch size without mbstd


def test_input_checks(tiny_discriminator):
    with pytest.raises(ValueError, match="power of two"):
        tiny_discriminator(0, resolution=24)
    with pytest.raises(ValueError, match="power of two"):
        tiny_discriminator(0, resolution=2)
    with pytest.raises(ValueError, match="architecture"):
        tiny_discriminator(architecture="dense")
    with pytest.raises(ValueError, match="conditioning"):
        tiny_discriminator(2, conditioning="concat")
    with pytest.raises(ValueError, match="cmap_dim"):
        tiny_discriminator(2, conditioning="official", cmap_dim=8)
    D = tiny_discriminator(2, resolution=8)
    img, c = _images(4, 8), _labels(4, 2)
    with pytest.raises(ValueError, match=r"\[N, 8, 8, 3\].*Received: shape \(4, 16, 16, 3\)"):
        D((_images(4, 16), c))
    with pytest.raises(ValueError, match=r"\[N, 8, 8, 3\].*Received: shape \(4, 8, 8, 1\)"):
        D((img[..., :1], c))
    with pytest.raises(ValueError, match=r"Received: shape \(8, 8, 3\)"):
        D((img[0], c))
    with pytest.raises(ValueError, match="conditional"):
        D(img)
    with pytest.raises(ValueError, match=r"c must be \[N, 2\]"):
        D((img, _labels(4, 3)))
    U = tiny_discriminator(0, resolution=8)
    assert U((img, np.zeros((4, 0), np.float32))).shape == (4, 1)  # empty labels are fine
    with pytest.raises(ValueError, match=r"c must be \[N, 0\]"):
        U((img, c))
    with pytest.raises(tf.errors.InvalidArgumentError, match="group size"):
        U(_images(6, 8))


def test_config_round_trip_and_same_outputs(tmp_path, tiny_discriminator):
    D = tiny_discriminator(3, architecture="skip", conv_clamp=256, mbstd_group_size=2,
                           mbstd_num_channels=2, cmap_dim=8, num_fp16_res=1)
    config = D.get_config()
    D2 = Discriminator.from_config(config)
    assert D2.get_config() == config
    _copy_weights(D, D2)
    inputs = (_images(4), _labels(4, 3))
    np.testing.assert_array_equal(D2(inputs).numpy(), D(inputs).numpy())
    # Through Keras serialization too (the registered names).
    D3 = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(D))
    assert type(D3) is Discriminator and D3.get_config() == config
    # And a .keras file.
    D.save(tmp_path / "d.keras")
    D4 = keras.models.load_model(tmp_path / "d.keras")
    np.testing.assert_array_equal(D4(inputs).numpy(), D(inputs).numpy())
    for layer in (D.blocks[0], D.b4, D.b4.mbstd):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    # And tf.train.Checkpoint (what training snapshots use): every variable restored.
    saved = tf.train.Checkpoint(D=D).write(str(tmp_path / "ckpt"))
    D5 = Discriminator.from_config(config)
    tf.train.Checkpoint(D=D5).read(saved).assert_consumed()
    np.testing.assert_array_equal(D5(inputs).numpy(), D(inputs).numpy())


def test_block_alone():
    block = DiscriminatorBlock(0, 8, 16, 8, 3, architecture="skip")
    x, img = block(None, _images(2, 8))
    assert x.shape == (2, 4, 4, 16) and img.shape == (2, 4, 4, 3) and img.dtype == tf.float32
    with pytest.raises(ValueError, match="in_channels"):
        DiscriminatorBlock(4, 8, 16, 8, 3)


# --------------------------------------------------------------------------------------
# Gradients (R1) and implementations.

def r1_gradients(D, img, c):
    """(logits, dD/dimg, d(|dD/dimg|^2)/dweights) as in the R1 penalty.

    After the minibatch stddev everything is piecewise linear, so the second-order
    gradients of the b4 biases are zero; TF may return them as None (disconnected),
    which becomes zeros here.
    """
    img = tf.convert_to_tensor(img)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(img)
            logits = D((img, c))
            total = tf.reduce_sum(logits)
        grad = inner.gradient(total, img)
        penalty = tf.reduce_sum(tf.square(grad))
    second = outer.gradient(penalty, D.trainable_weights)
    second = [np.zeros(v.shape, np.float32) if g is None else g.numpy()
              for v, g in zip(D.trainable_weights, second)]
    return logits.numpy(), grad.numpy(), second


def test_input_gradient_and_r1_custom_matches_reference(tiny_discriminator):
    D = tiny_discriminator(3, architecture="resnet")
    img, c = _images(4), _labels(4, 3)
    with use_impl("ref"):
        ref = r1_gradients(D, img, c)
    with use_impl("custom"):
        custom = r1_gradients(D, img, c)
    assert ref[1].shape == img.shape and np.all(np.isfinite(ref[1])) and np.any(ref[1] != 0)
    np.testing.assert_allclose(custom[0], ref[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(custom[1], ref[1], rtol=1e-4, atol=1e-4 * np.abs(ref[1]).max())
    names = [v.path for v in D.trainable_weights]
    for name, got, want in zip(names, custom[2], ref[2]):
        assert np.all(np.isfinite(got)), name
        if name.startswith(("b16/", "b8/")):  # before the (nonlinear) minibatch stddev
            assert np.any(want != 0), name
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * max(np.abs(want).max(), 1e-6),
                                   err_msg=name)


def test_skip_architecture_second_order_gradient_runs(tiny_discriminator):
    D = tiny_discriminator(resolution=8, architecture="skip")
    with use_impl("custom"):
        _, grad, second = r1_gradients(D, _images(4, 8), None)
    assert np.all(np.isfinite(grad))
    assert all(np.all(np.isfinite(g)) for g in second)
    assert np.any(second[0] != 0)  # b8/fromrgb/weight


def test_mixed_precision_blocks(tiny_discriminator):
    D32 = tiny_discriminator(3, conv_clamp=256)
    D16 = tiny_discriminator(3, conv_clamp=256, num_fp16_res=1)
    assert [b.use_fp16 for b in D16.blocks] == [True, False]  # b16 only; b8 stays float32
    assert all(v.dtype == "float32" for v in D16.weights)
    _copy_weights(D32, D16)
    inputs = (_images(4), _labels(4, 3))
    logits = D16(inputs)
    assert logits.dtype == tf.float32 and logits.shape == (4, 1)
    np.testing.assert_allclose(logits.numpy(), D32(inputs).numpy(), rtol=2e-2, atol=2e-2)
    x, _ = D16.blocks[0](None, inputs[0])
    assert x.dtype == tf.float16
    # R1 through float16 blocks still gives finite gradients.
    _, grad, second = r1_gradients(D16, *inputs)
    assert np.all(np.isfinite(grad)) and all(np.all(np.isfinite(g)) for g in second)
