"""stylegan2_tf: StyleGAN2 (Karras et al., CVPR 2020) for TensorFlow 2 and Keras 3."""

import os

# Keras 3 runs on TensorFlow here; set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
