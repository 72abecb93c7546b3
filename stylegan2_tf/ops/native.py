"""Loading of the compiled op libraries and the `impl` switch shared by every op.

The libraries (`_upfirdn2d.so`, `_bias_act.so`) are built by `pip install .` (or
Bazel) next to this file; `STYLEGAN2_TF_OPS_DIR` points at another directory
holding them. Loading is tried once per process and its outcome cached, so a
missing library costs one failed attempt and one warning, not one per call.
"""

import os
import threading
import warnings
from pathlib import Path

import tensorflow as tf

IMPLS = ("auto", "ref", "custom")
OPS_DIR_ENV = "STYLEGAN2_TF_OPS_DIR"

_lock = threading.Lock()
_loaded = {}  # library name -> loaded module, or the exception that loading raised
_warned = set()


class CustomOpUnavailableError(RuntimeError):
    """The compiled op library cannot be loaded; the message says why and what to do."""


def library_path(name):
    """Path of the compiled library `name` (e.g. "_upfirdn2d.so") that loading will try."""
    directory = os.environ.get(OPS_DIR_ENV) or Path(__file__).resolve().parent
    return Path(directory) / name


def _load(name):
    path = library_path(name)
    if not path.is_file():
        raise CustomOpUnavailableError(
            f"{path} does not exist: the custom ops were not built. Rebuild them with "
            "`pip install -e .` (needs a C++ compiler; see the README's build section), "
            f"set {OPS_DIR_ENV} to a directory holding a Bazel-built {name}, or use impl='ref'."
        )
    try:
        return tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, OSError) as error:
        raise CustomOpUnavailableError(
            f"{path} exists but cannot be loaded ({error}). It was probably built against "
            f"another TensorFlow than the installed {tf.__version__}: rebuild it with "
            "`pip install -e .`, or use impl='ref'."
        ) from error


def load_library(name):
    """Returns the loaded op module for library `name`; raises CustomOpUnavailableError."""
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = _load(name)
            except CustomOpUnavailableError as error:
                _loaded[name] = error
        result = _loaded[name]
    if isinstance(result, Exception):
        raise result
    return result


def use_custom(impl, library, op_name, supported=True, unsupported_reason=""):
    """Resolves `impl` for one call: True for the compiled op, False for the reference.

    Args:
        impl: "auto", "ref" or "custom".
        library: file name of the compiled library, e.g. "_upfirdn2d.so".
        op_name: public op name, for messages.
        supported: whether the compiled op handles this call (dtype, static shapes).
        unsupported_reason: why not, when `supported` is False.

    "custom" raises CustomOpUnavailableError when the library cannot be loaded and
    ValueError when the call is unsupported. "auto" uses the reference for unsupported
    calls silently, and when the library is missing with one warning naming the reason.
    """
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "ref":
        return False
    if impl == "custom":
        if not supported:
            raise ValueError(f"{op_name}: impl='custom' {unsupported_reason}; use impl='ref'")
        load_library(library)
        return True
    if not supported:
        return False
    try:
        load_library(library)
    except CustomOpUnavailableError as error:
        with _lock:
            first = library not in _warned
            _warned.add(library)
        if first:
            warnings.warn(
                f"stylegan2_tf: using the slower pure-TensorFlow {op_name}: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
        return False
    return True
