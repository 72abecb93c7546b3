"""Loading of the compiled op libraries and the `impl` switch shared by every op.

Which implementation runs is a run-time choice, never part of a network: an op
called with impl=None (every layer calls them so) uses `current_impl()`, which is
the innermost `use_impl(...)` block of this thread, else the process setting
(`set_impl`, default: the STYLEGAN2_TF_IMPL environment variable, else "auto").
tf.function and Keras read it when they trace: a traced function keeps the ops
it was traced with.

The libraries (`_upfirdn2d.so`, `_bias_act.so`, `_bilinear_sample.so`) are built by `pip install .` (or
Bazel) next to this file; `STYLEGAN2_TF_OPS_DIR` points at another directory
holding them. Loading is tried once per process and its outcome cached, so a
missing library costs one failed attempt and one warning, not one per call.

On x86-64, `_upfirdn2d.so` also holds its CPU loops compiled for AVX-512 and uses them for
float32 on CPUs that run AVX-512; `STYLEGAN2_TF_CPU_ISA=baseline` (read once, when the
library first runs) keeps the baseline loops, e.g. to compare the two ("auto": the default).
"""

import contextlib
import os
import threading
import warnings
from pathlib import Path

import tensorflow as tf

IMPLS = ("auto", "ref", "custom")
OPS_DIR_ENV = "STYLEGAN2_TF_OPS_DIR"
IMPL_ENV = "STYLEGAN2_TF_IMPL"
CPU_ISA_ENV = "STYLEGAN2_TF_CPU_ISA"
CPU_ISAS = ("auto", "baseline")

_lock = threading.Lock()
_loaded = {}  # library name -> loaded module, or the exception that loading raised
_warned = set()


class CustomOpUnavailableError(RuntimeError):
    """The compiled op library cannot be loaded; the message says why and what to do."""


def check_impl(impl, where="impl"):
    """`impl` if it is one of IMPLS, else ValueError naming `where`."""
    if impl not in IMPLS:
        raise ValueError(f"{where} must be one of {', '.join(IMPLS)}. Received: {impl!r}")
    return impl


_process_impl = None  # set_impl's choice; None: the environment's
_scoped = threading.local()  # .stack: the impls of this thread's open use_impl blocks


def set_impl(impl):
    """Sets the op implementation of this process ("auto", "ref", "custom"); None: the default."""
    global _process_impl
    _process_impl = None if impl is None else check_impl(impl)


def current_impl():
    """The implementation an op called with impl=None uses now (see the module docstring)."""
    stack = getattr(_scoped, "stack", None)
    if stack:
        return stack[-1]
    if _process_impl is not None:
        return _process_impl
    return check_impl(os.environ.get(IMPL_ENV) or "auto", f"${IMPL_ENV}")


@contextlib.contextmanager
def use_impl(impl):
    """Within the block, ops called with impl=None in this thread use `impl` (None: no change)."""
    if impl is None:
        yield
        return
    stack = _scoped.__dict__.setdefault("stack", [])
    stack.append(check_impl(impl))
    try:
        yield
    finally:
        stack.pop()


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


def impl_under_xla(impl):
    """The implementation to trace with for XLA (jit_compile): XLA compiles only the reference
    ops, so "auto" and "ref" give "ref" and "custom" is refused."""
    if check_impl(impl) == "custom":
        raise ValueError("XLA compiles the reference ops only; --impl=custom cannot be used with --xla")
    return "ref"


def _check_cpu_isa_setting():
    cpu_isa = os.environ.get(CPU_ISA_ENV)
    if cpu_isa and cpu_isa not in CPU_ISAS:
        raise ValueError(f"${CPU_ISA_ENV}={cpu_isa!r}: expected auto (AVX-512 CPU loops where the "
                         "CPU runs them) or baseline (never)")


def check_settings():
    """Raises ValueError, one line naming the variable, for a malformed $STYLEGAN2_TF_IMPL (unless
    set_impl overrides it) or $STYLEGAN2_TF_CPU_ISA: scripts call it at start, before any op is
    traced (inside a trace the same error would come wrapped in TensorFlow's traceback)."""
    current_impl()
    _check_cpu_isa_setting()


def load_library(name):
    """Returns the loaded op module for library `name`; raises CustomOpUnavailableError
    (ValueError for a malformed $STYLEGAN2_TF_CPU_ISA)."""
    _check_cpu_isa_setting()
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
        impl: "auto", "ref", "custom", or None for current_impl().
        library: file name of the compiled library, e.g. "_upfirdn2d.so".
        op_name: public op name, for messages.
        supported: whether the compiled op handles this call (dtype, static shapes).
        unsupported_reason: why not, when `supported` is False.

    "custom" raises CustomOpUnavailableError when the library cannot be loaded and
    ValueError when the call is unsupported. "auto" uses the reference for calls the
    compiled op does not support (e.g. float64, unknown spatial sizes) without a word,
    and when the library is missing with one warning naming the reason.
    """
    impl = current_impl() if impl is None else check_impl(impl, f"{op_name}: impl")
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
