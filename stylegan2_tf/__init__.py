"""stylegan2_tf: StyleGAN2 (Karras et al., CVPR 2020) for TensorFlow 2 and Keras 3."""

import os

# Keras 3 runs on TensorFlow here; set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_LAZY = {
    "load_official": "stylegan2_tf.official.convert",
    "load_network": "stylegan2_tf.network_io",
    "save_network": "stylegan2_tf.network_io",
    "Generator": "stylegan2_tf.networks.generator",
    "Discriminator": "stylegan2_tf.networks.discriminator",
}


def __getattr__(name):
    """Top-level names import their module on first use, so `import stylegan2_tf` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stylegan2_tf' has no attribute {name!r}")
