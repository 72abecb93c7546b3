"""Named configurations: the official StyleGAN2 config-e / config-f and the
stylegan2-ada presets (auto, stylegan2, paper256, paper512, paper1024, cifar).

A `Preset` holds the network sizes and the training hyperparameters that go
with them; `resolve_preset` fills in the resolution-dependent values of "auto";
`build_generator` / `build_discriminator` make the networks.
"""

import dataclasses

from stylegan2_tf.networks.discriminator import Discriminator
from stylegan2_tf.networks.generator import Generator

PRESET_NAMES = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar",
                "config-e", "config-f")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Network and training settings of one configuration.

    channel_base: feature maps at resolution r are min(channel_base // r, channel_max)
        (the official fmap_base is channel_base / 2).
    label_mode, conditioning: "concat"/"official" for the official TF1 networks,
        "embed"/"ada" for stylegan2-ada (how the class label enters G and D).
    batch: global minibatch; mbstd_group_size: minibatch-stddev group.
    lrate: Adam learning rate of G and D (betas 0, 0.99); gamma: R1 weight.
    ema_kimg: G EMA half-life in thousands of images; ema_rampup: None or the
        fraction of seen images the half-life may not exceed.
    """

    name: str
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    g_architecture: str = "skip"
    d_architecture: str = "resnet"
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    label_mode: str = "embed"
    conditioning: str = "ada"
    batch: int = 32
    mbstd_group_size: int = 4
    lrate: float = 0.002
    gamma: float = 10.0
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    kimg: int = 25000


def _ada(name, batch, mbstd, fmaps, lrate, gamma, ema, ramp, mapping, kimg=25000, **overrides):
    return Preset(name=name, batch=batch, mbstd_group_size=mbstd, channel_base=int(fmaps * 32768),
                  lrate=lrate, gamma=gamma, ema_kimg=ema, ema_rampup=ramp,
                  mapping_layers=mapping, num_fp16_res=4, conv_clamp=256.0, kimg=kimg,
                  **overrides)


_PRESETS = {
    # stylegan2-ada-pytorch train.py cfg_specs.
    "stylegan2": _ada("stylegan2", 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": _ada("paper256", 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": _ada("paper512", 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": _ada("paper1024", 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": _ada("cifar", 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2, kimg=100000, pl_weight=0.0,
                  style_mixing_prob=0.0, d_architecture="orig"),
    # Official NVlabs/stylegan2 run_training.py: configs A-E use fmap_base 8 << 10 and
    # config E gamma 100; config F fmap_base 16 << 10 and gamma 10. No mixed precision.
    "config-e": Preset(name="config-e", channel_base=2 * (8 << 10), gamma=100.0,
                       label_mode="concat", conditioning="official"),
    "config-f": Preset(name="config-f", channel_base=2 * (16 << 10), gamma=10.0,
                       label_mode="concat", conditioning="official"),
}


def resolve_preset(name, resolution, num_replicas=1):
    """The Preset called `name` for images of `resolution` trained on `num_replicas` devices.

    "auto" follows stylegan2-ada's heuristics: batch max(min(replicas * min(4096 // res, 32),
    64), replicas), mbstd group min(batch // replicas, 4), channel_base 32768 from 512 px
    up (16384 below), lrate 0.002 from 1024 px (0.0025 below), gamma 0.0002 * res^2 / batch,
    EMA batch * 10 / 32 kimg with ramp-up 0.05, 2 mapping layers.
    """
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    if name != "auto":
        return _PRESETS[name]
    batch = max(min(num_replicas * min(4096 // resolution, 32), 64), num_replicas)
    return _ada("auto", batch=batch, mbstd=min(batch // num_replicas, 4),
                fmaps=1 if resolution >= 512 else 0.5,
                lrate=0.002 if resolution >= 1024 else 0.0025,
                gamma=0.0002 * resolution ** 2 / batch, ema=batch * 10 / 32, ramp=0.05,
                mapping=2)


def build_generator(preset, img_resolution, img_channels=3, c_dim=0, **kwargs):
    """A Generator with the network settings of `preset` (kwargs: more Generator arguments)."""
    return Generator(
        preset.z_dim, c_dim, preset.w_dim, img_resolution, img_channels,
        mapping_kwargs={"num_layers": preset.mapping_layers, "label_mode": preset.label_mode},
        synthesis_kwargs={"architecture": preset.g_architecture,
                          "channel_base": preset.channel_base,
                          "channel_max": preset.channel_max,
                          "num_fp16_res": preset.num_fp16_res,
                          "conv_clamp": preset.conv_clamp}, **kwargs)


def build_discriminator(preset, img_resolution, img_channels=3, c_dim=0, **kwargs):
    """A Discriminator with the network settings of `preset` (kwargs override its args)."""
    settings = {"architecture": preset.d_architecture, "channel_base": preset.channel_base,
                "channel_max": preset.channel_max, "num_fp16_res": preset.num_fp16_res,
                "conv_clamp": preset.conv_clamp, "mbstd_group_size": preset.mbstd_group_size,
                "conditioning": preset.conditioning}
    settings.update(kwargs)
    return Discriminator(c_dim, img_resolution, img_channels, **settings)
