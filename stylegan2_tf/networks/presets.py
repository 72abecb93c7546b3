"""Network settings, their official TF1 names, and the named configurations (presets).

One vocabulary: network settings use stylegan2-ada-pytorch's names (channel_base,
channel_max, z_dim, w_dim, mapping_layers, ...). The official TF1 names (fmap_base,
fmap_max, latent_size, dlatent_size) are translated at the border, by `from_tf1_names`
and `to_tf1_names` (the flags of scripts/train.py and scripts/benchmark.py, the official
pickle converter, the messages about a run's flags).

Presets are a keyword table (`PRESETS`), as stylegan2-ada-pytorch's cfg_specs: each
`Preset` gives network settings (`NetworkSettings`), training settings (a
`stylegan2_tf.training.trainer.TrainingConfig`, whose defaults are the only training
defaults) and, where it is not 25000, its length in kimg. `resolve_preset` returns one,
computing "auto" from the resolution; `build_generator` / `build_discriminator` make the
networks of a NetworkSettings.
"""

import dataclasses

from stylegan2_tf.networks.discriminator import Discriminator
from stylegan2_tf.networks.generator import Generator
from stylegan2_tf.training.trainer import TrainingConfig

DEFAULT_PRESET = "auto"

# Official TF1 name -> (our name, TF1 value -> ours, ours -> TF1 value). TF1's feature maps
# are nf(stage) = min(fmap_base / 2^stage, fmap_max) with stage 1 at 4x4; ours are
# min(channel_base // res, channel_max): channel_base = 2 * fmap_base.
TF1_NAMES = {
    "fmap_base": ("channel_base", lambda value: 2 * value, lambda value: value // 2),
    "fmap_max": ("channel_max", lambda value: value, lambda value: value),
    "latent_size": ("z_dim", lambda value: value, lambda value: value),
    "dlatent_size": ("w_dim", lambda value: value, lambda value: value),
    "mapping_layers": ("mapping_layers", lambda value: value, lambda value: value),
}


def from_tf1_names(**settings):
    """{our name: value} for network settings given in the official TF1 names (see TF1_NAMES);
    None values are left out: from_tf1_names(fmap_base=8192, latent_size=None) == {"channel_base": 16384}."""
    unknown = sorted(set(settings) - set(TF1_NAMES))
    if unknown:
        raise ValueError(f"unknown TF1 network settings {unknown}; expected some of {list(TF1_NAMES)}")
    return {TF1_NAMES[name][0]: TF1_NAMES[name][1](value)
            for name, value in settings.items() if value is not None}


def to_tf1_names(**settings):
    """The inverse of from_tf1_names: {TF1 name: value} for settings in our names that have one."""
    ours = {our: (tf1, to_tf1) for tf1, (our, _, to_tf1) in TF1_NAMES.items()}
    return {ours[name][0]: ours[name][1](value) for name, value in settings.items() if name in ours}


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    """What G and D are, in stylegan2-ada-pytorch's names.

    z_dim, w_dim: sizes of the latents z and w; mapping_layers: depth of G's mapping.
    channel_base, channel_max: feature maps at resolution r are min(channel_base // r, channel_max).
    g_architecture, d_architecture: "orig", "skip" or "resnet".
    num_fp16_res: how many of the highest resolutions compute in float16; conv_clamp: the
        clamp of their activations (None: none).
    conditioning: how class labels enter G and D: "ada" or "official" (networks.layers.CONDITIONINGS).
    mbstd_group_size: D's minibatch-stddev group (None: the whole minibatch).
    """

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    g_architecture: str = "skip"
    d_architecture: str = "resnet"
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    conditioning: str = "ada"
    mbstd_group_size: int | None = 4

    @classmethod
    def of(cls, G, D):
        """The settings of built networks (G's where G and D could differ)."""
        return cls(z_dim=G.z_dim, w_dim=G.w_dim, mapping_layers=G.mapping.num_layers,
                   channel_base=G.synthesis.channel_base, channel_max=G.synthesis.channel_max,
                   g_architecture=G.synthesis.architecture, d_architecture=D.architecture,
                   num_fp16_res=G.synthesis.num_fp16_res, conv_clamp=G.synthesis.conv_clamp,
                   conditioning=G.mapping.conditioning, mbstd_group_size=D.mbstd_group_size)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named configuration: network settings, training settings, and how long to train."""

    name: str
    network: NetworkSettings
    training: TrainingConfig
    kimg: float = 25000


# stylegan2-ada's mixed precision, in all its configurations: float16 in the 4 highest
# resolutions, activations clamped to 256.
MIXED_PRECISION = {"num_fp16_res": 4, "conv_clamp": 256.0}


def with_mixed_precision(settings, mixed):
    """NetworkSettings `settings` with MIXED_PRECISION, or (not `mixed`) float32 throughout."""
    return dataclasses.replace(settings, **(MIXED_PRECISION if mixed else
                                            {"num_fp16_res": 0, "conv_clamp": None}))


PRESETS = {preset.name: preset for preset in [
    # stylegan2-ada-pytorch train.py cfg_specs ("auto": resolve_preset computes it).
    Preset("stylegan2",
           NetworkSettings(channel_base=32768, mapping_layers=8, mbstd_group_size=4, **MIXED_PRECISION),
           TrainingConfig(batch=32, lrate=0.002, r1_gamma=10, ema_kimg=10)),
    Preset("paper256",
           NetworkSettings(channel_base=16384, mapping_layers=8, mbstd_group_size=8, **MIXED_PRECISION),
           TrainingConfig(batch=64, lrate=0.0025, r1_gamma=1, ema_kimg=20)),
    Preset("paper512",
           NetworkSettings(channel_base=32768, mapping_layers=8, mbstd_group_size=8, **MIXED_PRECISION),
           TrainingConfig(batch=64, lrate=0.0025, r1_gamma=0.5, ema_kimg=20)),
    Preset("paper1024",
           NetworkSettings(channel_base=32768, mapping_layers=8, mbstd_group_size=4, **MIXED_PRECISION),
           TrainingConfig(batch=32, lrate=0.002, r1_gamma=2, ema_kimg=10)),
    Preset("cifar",
           NetworkSettings(channel_base=32768, mapping_layers=2, mbstd_group_size=32,
                           d_architecture="orig", **MIXED_PRECISION),
           TrainingConfig(batch=64, lrate=0.0025, r1_gamma=0.01, ema_kimg=500, ema_rampup=0.05,
                          pl_weight=0, style_mixing_prob=0),
           kimg=100000),
    # Official NVlabs/stylegan2 run_training.py: configs A-E use fmap_base 8 << 10 and config E
    # gamma 100; config F fmap_base 16 << 10 and gamma 10. No mixed precision; the other
    # training settings are TrainingConfig's defaults, the paper's.
    Preset("config-e",
           NetworkSettings(**from_tf1_names(fmap_base=8 << 10), conditioning="official"),
           TrainingConfig(r1_gamma=100)),
    Preset("config-f",
           NetworkSettings(**from_tf1_names(fmap_base=16 << 10), conditioning="official"),
           TrainingConfig(r1_gamma=10)),
]}
PRESET_NAMES = (DEFAULT_PRESET, *PRESETS)


def resolve_preset(name, resolution, num_replicas=1):
    """The Preset called `name` for images of `resolution` trained on `num_replicas` devices.

    "auto" follows stylegan2-ada's heuristics: batch max(min(replicas * min(4096 // res, 32),
    64), replicas), mbstd group min(batch // replicas, 4), channel_base 32768 from 512 px
    up (16384 below), lrate 0.002 from 1024 px (0.0025 below), gamma 0.0002 * res^2 / batch,
    EMA batch * 10 / 32 kimg with ramp-up 0.05, 2 mapping layers.
    """
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    if name != DEFAULT_PRESET:
        return PRESETS[name]
    batch = max(min(num_replicas * min(4096 // resolution, 32), 64), num_replicas)
    return Preset(
        DEFAULT_PRESET,
        NetworkSettings(channel_base=32768 if resolution >= 512 else 16384, mapping_layers=2,
                        mbstd_group_size=min(batch // num_replicas, 4), **MIXED_PRECISION),
        TrainingConfig(batch=batch, lrate=0.002 if resolution >= 1024 else 0.0025,
                       r1_gamma=0.0002 * resolution ** 2 / batch, ema_kimg=batch * 10 / 32,
                       ema_rampup=0.05))


def _network_settings(settings):
    return settings.network if isinstance(settings, Preset) else settings


def build_generator(settings, img_resolution, img_channels=3, c_dim=0, synthesis_kwargs=None):
    """A Generator of `settings` (a NetworkSettings or a Preset); synthesis_kwargs: more
    SynthesisNetwork arguments (e.g. fused_modconv)."""
    settings = _network_settings(settings)
    return Generator(
        settings.z_dim, c_dim, settings.w_dim, img_resolution, img_channels,
        mapping_kwargs={"num_layers": settings.mapping_layers, "conditioning": settings.conditioning},
        synthesis_kwargs={"architecture": settings.g_architecture,
                          "channel_base": settings.channel_base,
                          "channel_max": settings.channel_max,
                          "num_fp16_res": settings.num_fp16_res,
                          "conv_clamp": settings.conv_clamp, **(synthesis_kwargs or {})})


def build_discriminator(settings, img_resolution, img_channels=3, c_dim=0, **kwargs):
    """A Discriminator of `settings` (a NetworkSettings or a Preset); kwargs override its arguments."""
    settings = _network_settings(settings)
    arguments = {"architecture": settings.d_architecture, "channel_base": settings.channel_base,
                 "channel_max": settings.channel_max, "num_fp16_res": settings.num_fp16_res,
                 "conv_clamp": settings.conv_clamp, "mbstd_group_size": settings.mbstd_group_size,
                 "conditioning": settings.conditioning}
    return Discriminator(c_dim, img_resolution, img_channels, **{**arguments, **kwargs})
