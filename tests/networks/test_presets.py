"""Presets: the official and stylegan2-ada configurations and the 'auto' heuristics; network
settings and their official TF1 names."""

import dataclasses

import numpy as np
import pytest

from stylegan2_tf.networks.presets import (
    PRESET_NAMES,
    PRESETS,
    NetworkSettings,
    build_discriminator,
    build_generator,
    from_tf1_names,
    resolve_preset,
    to_tf1_names,
    with_mixed_precision,
)
from stylegan2_tf.training.trainer import TrainingConfig


def test_official_configs():
    e, f = resolve_preset("config-e", 1024), resolve_preset("config-f", 1024)
    assert (e.network.channel_base, e.training.r1_gamma, f.network.channel_base,
            f.training.r1_gamma) == (16384, 100.0, 32768, 10.0)
    for preset in (e, f):
        network, training = preset.network, preset.training
        assert (network.g_architecture, network.d_architecture) == ("skip", "resnet")
        assert (network.mapping_layers, network.num_fp16_res, network.conv_clamp) == (8, 0, None)
        assert (training.batch, training.lrate, training.pl_weight, training.style_mixing_prob) == (
            32, 0.002, 2.0, 0.9)
        assert (network.conditioning, preset.kimg) == ("official", 25000)


@pytest.mark.parametrize("resolution,replicas,expected", [
    # batch, mbstd, channel_base, lrate, gamma, ema
    (256, 1, (16, 4, 16384, 0.0025, 0.0002 * 256**2 / 16, 5.0)),
    (1024, 8, (32, 4, 32768, 0.002, 0.0002 * 1024**2 / 32, 10.0)),
    (32, 2, (64, 4, 16384, 0.0025, 0.0002 * 32**2 / 64, 20.0)),
])
def test_auto_follows_stylegan2_ada(resolution, replicas, expected):
    p = resolve_preset("auto", resolution, replicas)
    n, t = p.network, p.training
    assert (t.batch, n.mbstd_group_size, n.channel_base, t.lrate) == expected[:4]
    assert t.r1_gamma == pytest.approx(expected[4]) and t.ema_kimg == pytest.approx(expected[5])
    assert (n.mapping_layers, t.ema_rampup, n.num_fp16_res, n.conv_clamp) == (2, 0.05, 4, 256.0)


def test_ada_tables():
    cifar = resolve_preset("cifar", 32)
    assert (cifar.training.pl_weight, cifar.training.style_mixing_prob,
            cifar.network.d_architecture) == (0.0, 0.0, "orig")
    assert resolve_preset("paper256", 256).network.channel_base == 16384
    with pytest.raises(ValueError, match="unknown preset 'paper2048'"):
        resolve_preset("paper2048", 2048)
    assert set(PRESET_NAMES) >= {"auto", "paper256", "paper512", "paper1024", "cifar",
                                 "config-e", "config-f"}


@pytest.mark.parametrize("name", ["config-f", "paper256"])
def test_networks_from_a_preset(name):
    preset = dataclasses.replace(resolve_preset(name, 16).network, z_dim=16, w_dim=16,
                                 mapping_layers=2, channel_base=256, channel_max=32)
    G = build_generator(preset, 16, c_dim=3)
    D = build_discriminator(preset, 16, c_dim=3, mbstd_group_size=2)
    c = np.eye(3, dtype=np.float32)[[0, 2]]
    img = G(np.random.RandomState(0).randn(2, 16).astype(np.float32), c)
    assert D(img, c).shape == (2, 1)
    assert G.mapping.conditioning == D.conditioning == ("official" if name == "config-f" else "ada")


def test_tf1_names_translate_both_ways():
    assert from_tf1_names(fmap_base=8192, fmap_max=256, latent_size=128, dlatent_size=64,
                          mapping_layers=2) == {"channel_base": 16384, "channel_max": 256,
                                                "z_dim": 128, "w_dim": 64, "mapping_layers": 2}
    assert from_tf1_names(fmap_base=None, latent_size=32) == {"z_dim": 32}  # None: not given
    ours = dataclasses.asdict(NetworkSettings(channel_base=16384, z_dim=128))
    assert to_tf1_names(**ours) == {"fmap_base": 8192, "fmap_max": 512, "latent_size": 128,
                                    "dlatent_size": 512, "mapping_layers": 8}
    assert from_tf1_names(**to_tf1_names(**ours)) == {k: ours[k] for k in (
        "channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers")}
    with pytest.raises(ValueError, match=r"unknown TF1 network settings \['fmaps'\]"):
        from_tf1_names(fmaps=1)


def test_presets_are_a_table_of_network_and_training_settings():
    # stylegan2-ada-pytorch cfg_specs: mb, mbstd, fmaps (x 32768), lrate, gamma, ema, ramp, map, kimg.
    cfg_specs = {"stylegan2": (32, 4, 1, 0.002, 10, 10, None, 8, 25000),
                 "paper256": (64, 8, 0.5, 0.0025, 1, 20, None, 8, 25000),
                 "paper512": (64, 8, 1, 0.0025, 0.5, 20, None, 8, 25000),
                 "paper1024": (32, 4, 1, 0.002, 2, 10, None, 8, 25000),
                 "cifar": (64, 32, 1, 0.0025, 0.01, 500, 0.05, 2, 100000)}
    assert PRESET_NAMES == ("auto", *cfg_specs, "config-e", "config-f")
    for name, (mb, mbstd, fmaps, lrate, gamma, ema, ramp, mapping, kimg) in cfg_specs.items():
        preset = PRESETS[name]
        assert isinstance(preset.network, NetworkSettings) and isinstance(preset.training, TrainingConfig)
        assert (preset.network.mbstd_group_size, preset.network.channel_base,
                preset.network.mapping_layers) == (mbstd, fmaps * 32768, mapping), name
        assert (preset.training.batch, preset.training.lrate, preset.training.r1_gamma,
                preset.training.ema_kimg, preset.training.ema_rampup, preset.kimg) == (
            mb, lrate, gamma, ema, ramp, kimg), name
        assert (preset.network.num_fp16_res, preset.network.conv_clamp) == (4, 256.0), name
    # What a preset does not set is TrainingConfig's / NetworkSettings' default.
    assert PRESETS["config-f"].training == TrainingConfig(r1_gamma=10)
    assert PRESETS["config-e"].network == NetworkSettings(channel_base=16384, conditioning="official")


def test_mixed_precision_and_settings_of_built_networks():
    settings = with_mixed_precision(NetworkSettings(z_dim=16, w_dim=16, mapping_layers=2,
                                                    channel_base=256, channel_max=32,
                                                    conditioning="official", mbstd_group_size=2), True)
    assert (settings.num_fp16_res, settings.conv_clamp) == (4, 256.0)
    assert with_mixed_precision(settings, False) == dataclasses.replace(settings, num_fp16_res=0,
                                                                          conv_clamp=None)
    G, D = build_generator(settings, 16, c_dim=3), build_discriminator(settings, 16, c_dim=3)
    assert NetworkSettings.of(G, D) == settings
    # A Preset stands for its network settings (the README's build_generator(resolve_preset(...))).
    assert NetworkSettings.of(build_generator(PRESETS["paper256"], 8),
                              build_discriminator(PRESETS["paper256"], 8)) == PRESETS["paper256"].network
