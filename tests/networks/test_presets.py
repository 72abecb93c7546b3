"""Presets: the official and stylegan2-ada configurations and the 'auto' heuristics."""

import dataclasses

import numpy as np
import pytest

from stylegan2_tf.networks.presets import (
    PRESET_NAMES,
    build_discriminator,
    build_generator,
    resolve_preset,
)


def test_official_configs():
    e, f = resolve_preset("config-e", 1024), resolve_preset("config-f", 1024)
    assert (e.channel_base, e.gamma, f.channel_base, f.gamma) == (16384, 100.0, 32768, 10.0)
    for preset in (e, f):
        assert (preset.g_architecture, preset.d_architecture) == ("skip", "resnet")
        assert (preset.mapping_layers, preset.num_fp16_res, preset.conv_clamp) == (8, 0, None)
        assert (preset.batch, preset.lrate, preset.pl_weight, preset.style_mixing_prob) == (
            32, 0.002, 2.0, 0.9)


@pytest.mark.parametrize("resolution,replicas,expected", [
    # batch, mbstd, channel_base, lrate, gamma, ema
    (256, 1, (16, 4, 16384, 0.0025, 0.0002 * 256**2 / 16, 5.0)),
    (1024, 8, (32, 4, 32768, 0.002, 0.0002 * 1024**2 / 32, 10.0)),
    (32, 2, (64, 4, 16384, 0.0025, 0.0002 * 32**2 / 64, 20.0)),
])
def test_auto_follows_stylegan2_ada(resolution, replicas, expected):
    p = resolve_preset("auto", resolution, replicas)
    assert (p.batch, p.mbstd_group_size, p.channel_base, p.lrate) == expected[:4]
    assert p.gamma == pytest.approx(expected[4]) and p.ema_kimg == pytest.approx(expected[5])
    assert (p.mapping_layers, p.ema_rampup, p.num_fp16_res, p.conv_clamp) == (2, 0.05, 4, 256.0)


def test_ada_tables():
    cifar = resolve_preset("cifar", 32)
    assert (cifar.pl_weight, cifar.style_mixing_prob, cifar.d_architecture) == (0.0, 0.0, "orig")
    assert resolve_preset("paper256", 256).channel_base == 16384
    with pytest.raises(ValueError, match="unknown preset 'paper2048'"):
        resolve_preset("paper2048", 2048)
    assert set(PRESET_NAMES) >= {"auto", "paper256", "paper512", "paper1024", "cifar",
                                 "config-e", "config-f"}


@pytest.mark.parametrize("name", ["config-f", "paper256"])
def test_networks_from_a_preset(name):
    preset = dataclasses.replace(resolve_preset(name, 16), z_dim=16, w_dim=16, mapping_layers=2,
                                 channel_base=256, channel_max=32)
    G = build_generator(preset, 16, c_dim=3)
    D = build_discriminator(preset, 16, c_dim=3, mbstd_group_size=2)
    c = np.eye(3, dtype=np.float32)[[0, 2]]
    img = G(np.random.RandomState(0).randn(2, 16).astype(np.float32), c)
    assert D(img, c).shape == (2, 1)
    assert G.mapping.label_mode == ("concat" if name == "config-f" else "embed")
