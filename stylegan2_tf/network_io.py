"""Loading and saving networks: NVIDIA's pickles, our `.keras` files and network folders.

`load_network` takes every format: NVIDIA's TF1 pickles (NVlabs/stylegan2 and the TF1
stylegan2-ada), stylegan2-ada-pytorch and stylegan3 (StyleGAN2) pickles, a network
folder, or one generator `.keras`.

A network folder (what scripts/convert.py and training write) holds
`G_ema.keras` and, when known, `G.keras` and `D.keras`. Files are written
aside and renamed into place, so an interrupted save leaves no partial file.
"""

import zipfile
from pathlib import Path

import keras

from stylegan2_tf.files import atomic_write

# Importing the converter also registers our layers for keras.saving.load_model.
from stylegan2_tf.official.ada_convert import load_ada_pytorch
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.official.torch_pickle import is_ada_pytorch_pickle

NETWORK_NAMES = ("G", "D", "G_ema")


def load_network(source):
    """{"G", "D", "G_ema"} from a NVIDIA .pkl (TF1 or PyTorch), a network folder, or one
    generator .keras.

    Entries the source does not hold are None. Raises FileNotFoundError or
    ValueError with the reason.
    """
    path = Path(source)
    if not str(source):
        raise ValueError("no network given (an empty path)")
    if not path.exists():
        raise FileNotFoundError(f"network {source} does not exist")
    if path.is_dir():
        found = {name: path / f"{name}.keras" for name in NETWORK_NAMES}
        if not found["G_ema"].is_file():
            raise ValueError(f"{source} is not a network folder: it has no G_ema.keras")
        return {name: _load_keras(file) if file.is_file() else None for name, file in found.items()}
    if path.suffix == ".keras":
        return {"G": None, "D": None, "G_ema": _load_keras(path)}
    if path.suffix == ".pkl":
        if is_ada_pytorch_pickle(path):
            networks = load_ada_pytorch(path)
            return {name: networks[name] for name in NETWORK_NAMES}
        return load_official(path)
    raise ValueError(f"{source}: expected an official .pkl, a .keras file or a network folder")


def _load_keras(path):
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras file (a zip archive); is it empty or truncated?")
    try:
        return keras.saving.load_model(path)
    except (ValueError, OSError, KeyError) as error:
        raise ValueError(f"cannot load {path}: {error}") from error


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
