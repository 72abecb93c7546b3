"""stylegan2_tf: StyleGAN2 (Karras et al., CVPR 2020) for TensorFlow 2 and Keras 3.

Importing the package registers its Keras classes (`Generator`, `Discriminator`
and their layers), so `keras.saving.load_model("G_ema.keras")` works after
`import stylegan2_tf`; `stylegan2_tf.load_network` loads every format.
"""

import os

# Keras 3 runs on TensorFlow here; set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

from stylegan2_tf.networks.discriminator import Discriminator  # registers the classes with Keras
from stylegan2_tf.networks.generator import Generator  # registers the classes with Keras

_LAZY = {
    "load_official": "stylegan2_tf.official.convert",
    "load_ada_pytorch": "stylegan2_tf.official.ada_convert",
    "load_network": "stylegan2_tf.network_io",
    "save_network": "stylegan2_tf.network_io",
}

__all__ = ["Discriminator", "Generator", "load_ada_pytorch", "load_network", "load_official",
           "save_network"]


def __getattr__(name):
    """The loading functions import their module on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stylegan2_tf' has no attribute {name!r}")
