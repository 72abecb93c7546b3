"""StyleGAN2 ops: upfirdn2d resampling, fused bias + activation, bilinear sampling.

Each op takes `impl="auto"|"ref"|"custom"`: the compiled op (C++ on CPU, CUDA on
GPU), its pure-TensorFlow reference, or the compiled op when it is built. The
default, impl=None, is the run-time setting: `use_impl("ref")` for a block,
`set_impl` for the process, or the STYLEGAN2_TF_IMPL environment variable.
"""

from stylegan2_tf.ops.bias_act import activation_funcs, bias_act
from stylegan2_tf.ops.bilinear_sample import bilinear_sample
from stylegan2_tf.ops.native import IMPLS, CustomOpUnavailableError, current_impl, set_impl, use_impl
from stylegan2_tf.ops.upfirdn2d import (
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

__all__ = [
    "IMPLS",
    "CustomOpUnavailableError",
    "activation_funcs",
    "bias_act",
    "bilinear_sample",
    "current_impl",
    "downsample2d",
    "filter2d",
    "set_impl",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "use_impl",
]
