"""Generator: mapping, modulated convolution against numpy, architectures, noise,
truncation, impl and fused paths, mixed precision, config and saving round trips."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.networks.generator import (
    Generator,
    MappingNetwork,
    channels_at,
    modulated_conv2d,
)
from stylegan2_tf.networks.presets import from_tf1_names
from stylegan2_tf.ops import setup_filter, use_impl


@pytest.fixture(scope="module")
def network_size():
    """16-dim z and w, 16x16 images, 2 mapping layers; 16 channels at 16x16, 32 below."""
    return {"z_dim": 16, "w_dim": 16, "resolution": 16, "mapping_layers": 2, "channel_base": 256,
            "channel_max": 32}


def _z(n, dim=16, seed=0):
    return np.random.RandomState(seed).randn(n, dim).astype(np.float32)


def test_channel_rule_matches_official_fmap_base():
    # Official nf(res_log2 - 1) = clip(fmap_base / 2**(res_log2 - 1), 1, fmap_max).
    for fmap_base, res in itertools.product([2048, 16384], [4, 8, 64, 256, 1024]):
        official = int(np.clip(fmap_base / 2 ** (np.log2(res) - 1), 1, 512))
        assert channels_at(res, from_tf1_names(fmap_base=fmap_base)["channel_base"], 512) == official


def numpy_modulated_conv(x, w, s, demodulate):
    """Per-sample 'same' k x k convolution with modulated, demodulated weights."""
    n, h, wd, _ = x.shape
    k = w.shape[0]
    out = np.zeros((n, h, wd, w.shape[3]))
    pad = k // 2
    for i in range(n):
        wi = w * s[i][None, None, :, None]
        if demodulate:
            wi = wi / np.sqrt((wi ** 2).sum(axis=(0, 1, 2)) + 1e-8)
        xp = np.pad(x[i], [(pad, pad), (pad, pad), (0, 0)])
        for ky, kx in itertools.product(range(k), range(k)):
            out[i] += xp[ky:ky + h, kx:kx + wd] @ wi[ky, kx]
    return out


@pytest.mark.parametrize("kernel", [3, 1])  # 1: per-sample matrix products
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_modulated_conv2d_matches_numpy(kernel, fused, demodulate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 6, 4)).astype(np.float32)
    w = rng.standard_normal((kernel, kernel, 4, 7)).astype(np.float32)
    s = rng.uniform(0.5, 2, (3, 4)).astype(np.float32)
    y = modulated_conv2d(x, w, s, setup_filter([1, 3, 3, 1]), demodulate=demodulate, fused=fused)
    np.testing.assert_allclose(y.numpy(), numpy_modulated_conv(x, w, s, demodulate), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("kernel", [3, 1])
@pytest.mark.parametrize("fused", [False, True])
def test_float16_modulated_conv2d_prenormalizes(kernel, fused):
    """Styles up to 6e4 (x * s and s^2 beyond float16's 65504): pre-normalized as stylegan2-ada
    does, the float16 result is finite and equals the float32 one to float16 precision."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 6, 4)).astype(np.float32)
    w = rng.standard_normal((kernel, kernel, 4, 5)).astype(np.float32) / 6
    s = rng.uniform(2e4, 6e4, (2, 4)).astype(np.float32)
    y = modulated_conv2d(tf.cast(x, tf.float16), w, s, setup_filter([1, 3, 3, 1]), fused=fused)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy().astype(np.float32), numpy_modulated_conv(x, w, s, True),
                               rtol=2e-2, atol=2e-2)


def test_modulated_conv2d_upsampling_fused_equals_unfused():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 6)).astype(np.float32)
    s = rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    f = setup_filter([1, 3, 3, 1])
    a = modulated_conv2d(x, w, s, f, up=2, fused=True)
    b = modulated_conv2d(x, w, s, f, up=2, fused=False)
    assert a.shape == (2, 8, 10, 6)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("conditioning", ["ada", "official"])
def test_mapping_network(conditioning):
    m = MappingNetwork(8, 3, 6, num_ws=5, num_layers=2, conditioning=conditioning)
    z, c = _z(4, 8), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    w = m(z, c)
    assert w.shape == (4, 5, 6)
    np.testing.assert_array_equal(w[:, 0].numpy(), w[:, 4].numpy())  # broadcast copies
    if conditioning == "ada":  # z is normalized on its own: its scale does not matter
        np.testing.assert_allclose(m(z * 10, c).numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
    else:  # official TF1: [z, c @ label_weight] is normalized as a whole
        y = np.concatenate([z, c @ m.label_weight.numpy()], axis=1)
        y = y / np.sqrt((y ** 2).mean(axis=1, keepdims=True) + 1e-8)
        x = y
        for fc in m.fcs:
            x = x @ (fc.weight.numpy() * fc.weight_gain) + fc.bias.numpy() * fc.lr_multiplier
            x = np.where(x > 0, x, 0.2 * x) * np.sqrt(2)
        np.testing.assert_allclose(w[:, 0].numpy(), x, rtol=1e-4, atol=1e-5)


def test_truncation_and_w_avg():
    m = MappingNetwork(8, 0, 6, num_ws=4, num_layers=2, w_avg_beta=0.5)
    z = _z(3, 8)
    m(z)
    w = m(z, update_w_avg=True)
    expected_avg = 0.5 * w[:, 0].numpy().mean(axis=0)  # from zeros, beta 0.5
    np.testing.assert_allclose(m.w_avg.numpy(), expected_avg, rtol=1e-5, atol=1e-6)
    wt = m(z, truncation_psi=0.7, truncation_cutoff=2).numpy()
    avg = m.w_avg.numpy()
    np.testing.assert_allclose(wt[:, :2], avg + 0.7 * (w.numpy()[:, :2] - avg), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wt[:, 2:], w.numpy()[:, 2:], rtol=1e-6)
    np.testing.assert_allclose(m(z, truncation_psi=0.0).numpy(), np.broadcast_to(avg, wt.shape),
                               atol=1e-6)


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_draw_images(architecture, tiny_generator):
    G = tiny_generator(synthesis={"architecture": architecture})
    img = G(_z(2), noise_mode="const")
    assert img.shape == (2, 16, 16, 3) and img.dtype == tf.float32
    assert np.all(np.isfinite(img.numpy())) and float(tf.math.reduce_std(img)) > 1e-3
    assert G.num_ws == 6


def test_conditional_generator_needs_c(tiny_generator):
    G = tiny_generator(c_dim=4)
    c = np.eye(4, dtype=np.float32)[[0, 3]]
    a, b = G(_z(2), c, noise_mode="const"), G(_z(2), c[::-1], noise_mode="const")
    assert not np.allclose(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="conditional"):
        G(_z(2))
    with pytest.raises(ValueError, match=r"z must be \[N, 16\]"):
        G(_z(2, 5))


def test_noise_modes(tiny_generator):
    G = tiny_generator()
    for layer in G.synthesis.blocks[-1].conv1, G.synthesis.blocks[0].conv1:
        layer.noise_strength.assign(0.5)
    z = _z(2)
    const = G(z, noise_mode="const").numpy()
    np.testing.assert_array_equal(const, G(z, noise_mode="const").numpy())
    assert not np.allclose(const, G(z, noise_mode="random").numpy())
    assert not np.allclose(const, G(z, noise_mode="none").numpy())
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_custom_and_reference_ops_agree_with_gradients(tiny_generator):
    G = tiny_generator()
    z = tf.constant(_z(2))
    grads = []
    for impl in ("custom", "ref"):
        with tf.GradientTape() as tape, use_impl(impl):
            img = G(z, noise_mode="const")
            loss = tf.reduce_sum(img * tf.sin(img))
        grads.append((img.numpy(), [g.numpy() for g in tape.gradient(loss, G.trainable_weights)]))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-4)
    for a, b in zip(grads[0][1], grads[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * max(1, np.abs(b).max()))


def test_fused_and_unfused_generator_agree(tiny_generator):
    G = tiny_generator(synthesis={"architecture": "resnet"})
    z = _z(3)
    np.testing.assert_allclose(G(z, noise_mode="const", fused_modconv=True).numpy(),
                               G(z, noise_mode="const", fused_modconv=False).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_mixed_precision_blocks(tiny_generator):
    G = tiny_generator(synthesis={"num_fp16_res": 2, "conv_clamp": 256})
    assert [b.use_fp16 for b in G.synthesis.blocks] == [False, True, True]  # the 2 highest
    assert all(w.dtype == "float32" for w in G.weights)
    img = G(_z(2), noise_mode="const")
    assert img.dtype == tf.float32 and np.all(np.isfinite(img.numpy()))


def test_float16_blocks_with_large_styles_stay_finite(tiny_generator):
    G = tiny_generator(synthesis={"num_fp16_res": 2, "conv_clamp": 256})
    reference = tiny_generator()
    for layer in (G, reference):
        layer.set_weights(G.get_weights())
        for block in layer.synthesis.blocks:
            for conv in (block.conv0, block.conv1):
                if conv is not None:
                    conv.conv.affine.bias.assign(tf.fill(conv.conv.affine.bias.shape, 3e4))
    z = _z(2)
    img = G(z, noise_mode="const").numpy()
    assert np.all(np.isfinite(img))
    # Demodulation cancels the style scale: the float32 network draws the same image.
    np.testing.assert_allclose(img, reference(z, noise_mode="const").numpy(), atol=0.05)


def test_config_round_trip_and_saving(tmp_path, tiny_generator):
    G = tiny_generator(c_dim=2, mapping={"conditioning": "official"})
    z, c = _z(2), np.eye(2, dtype=np.float32)
    expected = G(z, c, noise_mode="const").numpy()
    clone = Generator.from_config(G.get_config())
    assert clone.get_config() == G.get_config()
    clone.set_weights(G.get_weights())
    np.testing.assert_array_equal(clone(z, c, noise_mode="const").numpy(), expected)

    path = tmp_path / "g.keras"
    G.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded(z, c, noise_mode="const").numpy(), expected)

    checkpoint = tf.train.Checkpoint(G=G)
    saved = checkpoint.write(str(tmp_path / "ckpt"))
    fresh = tiny_generator(c_dim=2, mapping={"conditioning": "official"})
    tf.train.Checkpoint(G=fresh).read(saved).assert_consumed()
    np.testing.assert_array_equal(fresh(z, c, noise_mode="const").numpy(), expected)


def test_bad_resolution_is_refused(tiny_generator):
    with pytest.raises(ValueError, match="power of two"):
        tiny_generator(resolution=24)


def test_import_stylegan2_tf_is_enough_for_keras_load_model(tmp_path, tiny_generator):
    """keras.saving.load_model finds our classes after a bare `import stylegan2_tf` (a fresh
    process, where nothing else imported the network modules)."""
    import subprocess
    import sys

    G = tiny_generator()
    G.save(tmp_path / "G.keras")
    code = ("import stylegan2_tf, keras, numpy as np, sys; G = keras.saving.load_model(sys.argv[1]); "
            "print(type(G).__name__, G.img_resolution, float(np.abs(G.get_weights()[0]).sum()))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "G.keras")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    name, resolution, total = result.stdout.split()
    assert (name, int(resolution)) == ("Generator", 16)
    assert np.isclose(float(total), np.abs(G.get_weights()[0]).sum(), rtol=1e-6)
