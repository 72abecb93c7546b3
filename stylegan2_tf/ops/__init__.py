"""StyleGAN2 ops: upfirdn2d resampling and fused bias + activation.

Each op takes `impl="auto"|"ref"|"custom"`: the compiled op (C++ on CPU, CUDA on
GPU), its pure-TensorFlow reference, or the compiled op when it is built.
"""

from stylegan2_tf.ops.bias_act import activation_funcs, bias_act
from stylegan2_tf.ops.native import CustomOpUnavailableError
from stylegan2_tf.ops.upfirdn2d import (
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

__all__ = [
    "CustomOpUnavailableError",
    "activation_funcs",
    "bias_act",
    "downsample2d",
    "filter2d",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
