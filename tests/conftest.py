"""Test setup shared by the whole suite: tiny networks and stand-in weight files.

Tiny networks. The fixtures `tiny_generator`, `tiny_discriminator` and `tiny_networks` return
builders (`build_generator`, `build_discriminator`, `build_networks` below) with the module's
network size filled in: TINY_SIZE, updated by the module's `network_size` fixture where the
module overrides it (pytest's override of a fixture by a test module), e.g.

    @pytest.fixture(scope="module")
    def network_size():
        return {"resolution": 16, "mapping_layers": 2}

Any size argument may still be given per call (`tiny_generator(c_dim=3, resolution=16)`).
The builders are plain functions too, for code that runs outside pytest (a subprocess).

Stand-in weight files. `inception_standin` and `lpips_standin` are the paths of small graphs
with the node names of the real Inception and LPIPS files (tests/standins.py), written once per
session under the real files' names; tests read them and never change them.

TensorFlow and stylegan2_tf are imported when a builder or a stand-in is first used, not here,
so that tests/cuda still runs (skipping what needs TensorFlow) where TensorFlow is missing.
"""

import functools
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The size arguments of the tiny networks and their defaults: 8-dim z and w, 8x8 RGB images,
# one mapping layer, min(channel_base // res, channel_max) channels: 16 at 4x4, 8 at 8x8.
TINY_SIZE = {"z_dim": 8, "w_dim": 8, "resolution": 8, "channels": 3, "mapping_layers": 1,
             "channel_base": 64, "channel_max": 16}


def _split_size(kwargs):
    """(TINY_SIZE updated with the size arguments among kwargs, the other kwargs)."""
    size = {**TINY_SIZE, **{key: kwargs[key] for key in TINY_SIZE if key in kwargs}}
    return size, {key: value for key, value in kwargs.items() if key not in TINY_SIZE}


def build_generator(c_dim=0, *, mapping=None, synthesis=None, seed=None, noise_strength=None,
                    **kwargs):
    """A Generator of TINY_SIZE, or of the size arguments among kwargs.

    mapping, synthesis: more mapping_kwargs / synthesis_kwargs (they win over the size).
    seed: keras.utils.set_random_seed(seed) first, so the weights are those of that seed.
    noise_strength: assigned to every noise strength (they start at 0: noise switched off).
    kwargs: size arguments (TINY_SIZE's keys) and more Generator arguments.
    """
    import keras

    from stylegan2_tf.networks.generator import Generator

    size, kwargs = _split_size(kwargs)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    G = Generator(size["z_dim"], c_dim, size["w_dim"], size["resolution"], size["channels"],
                  mapping_kwargs={"num_layers": size["mapping_layers"], **(mapping or {})},
                  synthesis_kwargs={"channel_base": size["channel_base"],
                                    "channel_max": size["channel_max"], **(synthesis or {})},
                  **kwargs)
    if noise_strength is not None:
        for variable in G.weights:
            if variable.path.endswith("noise_strength"):
                variable.assign(noise_strength)
    return G


def build_discriminator(c_dim=0, **kwargs):
    """A Discriminator of TINY_SIZE, or of the size arguments among kwargs (z_dim and w_dim
    do not apply); the other kwargs are more Discriminator arguments.

    A conditional one of conditioning "ada" maps its labels with `mapping_layers` layers
    (unless kwargs give mapping_kwargs).
    """
    from stylegan2_tf.networks.discriminator import Discriminator

    size, kwargs = _split_size(kwargs)
    if c_dim > 0 and kwargs.get("conditioning", "ada") == "ada":
        kwargs.setdefault("mapping_kwargs", {"num_layers": size["mapping_layers"]})
    return Discriminator(c_dim, size["resolution"], size["channels"],
                         channel_base=size["channel_base"], channel_max=size["channel_max"],
                         **kwargs)


def build_networks(c_dim=0, *, seed=None, mbstd_group_size=2, **size):
    """(G, D, G_ema) for training: G_ema starts as a copy of G; D's minibatch-stddev groups
    hold `mbstd_group_size` samples. seed: keras.utils.set_random_seed(seed) first.
    size: size arguments (TINY_SIZE's keys)."""
    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)
    G, G_ema = build_generator(c_dim, **size), build_generator(c_dim, **size)
    G_ema.set_weights(G.get_weights())
    D = build_discriminator(c_dim, mbstd_group_size=mbstd_group_size, **size)
    return G, D, G_ema


@pytest.fixture(scope="module")
def network_size():
    """The tiny networks' size arguments that differ from TINY_SIZE; a test module may
    override this fixture to give its own."""
    return {}


def _sized(builder, size):
    unknown = set(size) - set(TINY_SIZE)
    if unknown:
        raise TypeError(f"network_size: unknown keys {sorted(unknown)}; expected some of "
                        f"{sorted(TINY_SIZE)}")
    return functools.partial(builder, **size)


@pytest.fixture(scope="module")
def tiny_generator(network_size):
    """build_generator with the module's network_size (any argument can still be given)."""
    return _sized(build_generator, network_size)


@pytest.fixture(scope="module")
def tiny_discriminator(network_size):
    """build_discriminator with the module's network_size (any argument can still be given)."""
    return _sized(build_discriminator, network_size)


@pytest.fixture(scope="module")
def tiny_networks(network_size):
    """build_networks with the module's network_size: (G, D, G_ema)."""
    return _sized(build_networks, network_size)


@pytest.fixture(scope="session")
def inception_standin(tmp_path_factory):
    """Path of a stand-in Inception graph named classify_image_graph_def.pb (read only)."""
    from standins import make_inception_standin

    return make_inception_standin(tmp_path_factory.mktemp("standins") / "classify_image_graph_def.pb")


@pytest.fixture(scope="session")
def lpips_standin(tmp_path_factory):
    """Path of a stand-in LPIPS graph named net-lin_vgg_v0.1.pb (read only)."""
    from standins import make_lpips_standin

    return make_lpips_standin(tmp_path_factory.mktemp("standins") / "net-lin_vgg_v0.1.pb")


@pytest.fixture(scope="session")
def rgb_dataset(tmp_path_factory):
    """Path of a converted dataset of 8 random 32x32 RGB images without labels (read only)."""
    import numpy as np
    from PIL import Image

    from stylegan2_tf.data.convert import convert_dataset

    root = tmp_path_factory.mktemp("rgb_dataset")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
    return convert_dataset(root / "images", root / "data", progress=False).dest
