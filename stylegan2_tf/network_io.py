"""Loading and saving networks: NVIDIA's pickles, our `.keras` files and network folders.

`load_network` takes every format: NVIDIA's TF1 pickles (NVlabs/stylegan2 and the TF1
stylegan2-ada), stylegan2-ada-pytorch and stylegan3 (StyleGAN2) pickles, a network
folder, or one generator `.keras`.

A network folder (what scripts/convert.py and training write) holds
`G_ema.keras` and, when known, `G.keras` and `D.keras`. Files are written
aside and renamed into place, so an interrupted save leaves no partial file.

A `.keras` file is checked before Keras reads it (`_load_keras`): a zip holding
only config.json, metadata.json and model.weights.h5, each within
KERAS_MEMBER_LIMITS and not compressed like a zip bomb, every member's CRC
intact, and a config whose top-level object is one of our networks.
"""

import json
import zipfile
from pathlib import Path

import keras

from stylegan2_tf.archives import ArchiveError, open_checked_zip, read_member, verify_members
from stylegan2_tf.downloads import cached_download, is_url
from stylegan2_tf.files import atomic_write
from stylegan2_tf.known_networks import known_network
from stylegan2_tf.networks.layers import PACKAGE

# Importing the converter also registers our layers for keras.saving.load_model.
from stylegan2_tf.official.ada_convert import load_ada_pytorch
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.official.torch_pickle import is_ada_pytorch_pickle

NETWORK_NAMES = ("G", "D", "G_ema")
KERAS_MEMBER_LIMITS = {  # what a Keras 3 .keras file of ours holds, and the most each may unpack to
    "config.json": 4 << 20,  # ours are ~1 KB
    "metadata.json": 1 << 20,  # ~64 bytes
    "model.weights.h5": 4 << 30,  # config-f at 1024 px: ~120 MB
}
_KERAS_REQUIRED = ("config.json", "model.weights.h5")
# What keras.saving.load_model raises for a file it cannot use (h5py's errors are OSError, KeyError,
# ValueError, RuntimeError; an unknown class is a TypeError).
_KERAS_ERRORS = (ValueError, OSError, KeyError, TypeError, AttributeError, IndexError, RuntimeError,
                 RecursionError, zipfile.BadZipFile)


class NetworkFileError(ValueError):
    """A network file that cannot be loaded; the message names it and why."""


def load_network(source, force_fp32=False, cache_dir=None):
    """{"G", "D", "G_ema"} from any network source; entries it does not hold are None.

    `source`, tried in this order: a local path (a NVIDIA pickle, TF1 or PyTorch, told apart by
    content; a network folder; one generator .keras); an http(s) URL; a known network's name
    (stylegan2_tf.known_networks, e.g. "ffhq-config-f"). URLs and names are downloaded once into
    `cache_dir` (default $STYLEGAN2_CACHE, else ~/.cache/stylegan2_tf) and read from there.
    force_fp32: networks read from pickles compute in float32 where they ask for float16 blocks.

    Raises FileNotFoundError, or ValueError (DownloadError, NetworkFileError, ...) with the reason.
    """
    return load_network_and_state(source, force_fp32, cache_dir)[0]


def load_network_and_state(source, force_fp32=False, cache_dir=None):
    """(networks, state): load_network's networks, and what the source holds of a training state:
    {"augment_p": the augmentation probability p of a stylegan2-ada-pytorch snapshot, else None}."""
    no_state = {"augment_p": None}
    if not str(source):
        raise ValueError("no network given (an empty path)")
    path = Path(source)
    if not path.exists():
        url = _source_url(str(source))
        if url is None:
            raise FileNotFoundError(f"network {source} does not exist (not a file, folder, URL or "
                                    "known network name)")
        path = cached_download(url, cache_dir=cache_dir, progress=True)
    if path.is_dir():
        found = {name: path / f"{name}.keras" for name in NETWORK_NAMES}
        if not found["G_ema"].is_file():
            raise ValueError(f"{source} is not a network folder: it has no G_ema.keras")
        return {name: _load_keras(file) if file.is_file() else None for name, file in found.items()}, no_state
    if path.suffix == ".keras":
        return {"G": None, "D": None, "G_ema": _load_keras(path)}, no_state
    if zipfile.is_zipfile(path):
        raise NetworkFileError(f"{source} is a zip archive but not named .keras (Keras reads "
                               "network files only under that suffix)")
    if is_ada_pytorch_pickle(path):
        networks = load_ada_pytorch(path, force_fp32=force_fp32)
        pipe = networks["augment_pipe"]
        return ({name: networks[name] for name in NETWORK_NAMES},
                {"augment_p": None if pipe is None else pipe["p"]})
    return load_official(path, force_fp32=force_fp32), no_state


def _source_url(source):
    """The URL to download for `source` (a URL or a known network's name), or None."""
    if is_url(source):
        return source
    known = known_network(source)
    return None if known is None else known.url


def _load_keras(path):
    """The model of a .keras file, checked first (see the module docstring); NetworkFileError
    (a ValueError naming the file) for a damaged, oversized or foreign file."""
    try:
        with open_checked_zip(path, KERAS_MEMBER_LIMITS, _KERAS_REQUIRED, ".keras file") as archive:
            verify_members(archive, path)
            config_text = read_member(archive, "config.json", path)
    except ArchiveError as error:
        raise NetworkFileError(str(error)) from error
    _check_keras_config(config_text, path)
    try:
        return keras.saving.load_model(path)
    except _KERAS_ERRORS as error:
        raise NetworkFileError(f"cannot load {path}: {type(error).__name__}: {str(error)[:300]}") from error


def _check_keras_config(text, path):
    """Refuses a config.json that is not JSON or whose top-level object is not one of our networks."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise NetworkFileError(f"{path}: config.json is not valid JSON: {str(error)[:200]}") from error
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise NetworkFileError(f"{path}: config.json does not describe a Keras object")
    registered = config.get("registered_name")
    if not isinstance(registered, str) or not registered.startswith(f"{PACKAGE}>"):
        raise NetworkFileError(f"{path} holds a {config.get('class_name')!r:.60} (module "
                               f"{config.get('module')!r:.60}), not a {PACKAGE} network")


def save_network(networks, folder):
    """Writes each non-None network of {"G", "D", "G_ema"} to folder/<name>.keras."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in networks.items():
        if name not in NETWORK_NAMES:
            raise ValueError(f"unknown network {name!r}; expected one of {NETWORK_NAMES}")
        if model is not None:
            atomic_write(folder / f"{name}.keras", model.save)


def float32_generator(G):
    """G when it computes in float32 throughout, else a copy with G's weights whose every
    block computes in float32 (no num_fp16_res), as NVIDIA's force_fp32."""
    from stylegan2_tf.networks.generator import Generator

    if not G.synthesis.num_fp16_res:
        return G
    config = G.get_config()
    config["synthesis_kwargs"] = {**config["synthesis_kwargs"], "num_fp16_res": 0}
    copy = Generator.from_config(config)
    copy.set_weights(G.get_weights())
    return copy
