"""stylegan2_tf: StyleGAN2 (Karras et al., CVPR 2020) for TensorFlow 2 and Keras 3."""

__version__ = "0.1.0"
