"""Reads NVIDIA's TF1 network pickles without running any code from them.

An official StyleGAN2 / stylegan2-ada (TensorFlow 1) pickle is a tuple of
`dnnlib.tflib.network.Network` objects (G, D, Gs) whose state holds the build
function's keyword arguments, the sub-networks and the variables as numpy
arrays. NVIDIA's own loader `exec`s the Python source stored in the pickle;
this one never does: a restricted unpickler admits only the network stand-in,
`dnnlib.util.EasyDict` and numpy's array reconstruction, and refuses every
other class with an error that names it. A pickle is a program: a downloaded
one must not run.
"""

import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct


class OfficialPickleError(ValueError):
    """The file is not a readable official StyleGAN2 network pickle (message says why)."""


@dataclass
class NetworkState:
    """One `dnnlib.tflib.network.Network`, as plain data.

    name: the network's name ("G", "D", "Gs", "G_mapping", "G_synthesis", ...).
    build_func_name: the official build function, e.g. "training.networks_stylegan2.G_main".
    static_kwargs: its keyword arguments (resolution, fmap_base, architecture, ...).
    components: sub-networks by name ("mapping", "synthesis").
    variables: name -> array, in the official (TF1, NCHW-era) layouts.
    """

    name: str
    build_func_name: str
    static_kwargs: dict
    components: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)


class _NetworkStub:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state, runs nothing."""

    def __setstate__(self, state):
        self.state = state


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict."""


_ALLOWED = {
    ("dnnlib.tflib.network", "Network"): _NetworkStub,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): dict,
}
_NUMPY_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) in _NUMPY_RECONSTRUCT:
            return _numpy_reconstruct
        if (module, name) in _NUMPY_SCALAR:
            return _numpy_scalar
        hint = ""
        if module.split(".")[0] in ("torch", "torch_utils", "training"):
            hint = (" This looks like a stylegan2-ada-pytorch pickle; this loader reads the "
                    "TensorFlow 1 pickles of NVlabs/stylegan2 and NVlabs/stylegan2-ada.")
        raise OfficialPickleError(
            f"refusing to load {module}.{name} from the pickle: an official network pickle holds "
            f"only dnnlib network states and numpy arrays, and nothing in it is run.{hint}")


def _numpy_scalar(dtype, data=None):
    """numpy's scalar reconstruction, limited to non-object dtypes."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise OfficialPickleError("refusing an object-dtype numpy scalar in the pickle")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _to_state(obj, where):
    if not isinstance(obj, _NetworkStub) or not isinstance(getattr(obj, "state", None), dict):
        raise OfficialPickleError(f"{where} is not a dnnlib network (found {type(obj).__name__})")
    state = obj.state
    missing = {"name", "static_kwargs", "build_func_name", "variables"} - set(state)
    if missing:
        raise OfficialPickleError(f"{where} lacks {sorted(missing)} in its network state")
    if state.get("version") not in (2, 3, 4):
        raise OfficialPickleError(f"{where}: unsupported network state version {state.get('version')!r}")
    variables = {}
    for entry in state["variables"]:
        name, value = entry
        # Session.run gives arrays, and numpy scalars for 0-d variables (noise_strength).
        if not isinstance(value, (np.ndarray, np.generic)) or value.dtype.hasobject:
            raise OfficialPickleError(f"{where}: variable {name!r} is not a numeric array")
        variables[str(name)] = np.asarray(value)
    components = {str(key): _to_state(value, f"{where}.{key}")
                  for key, value in dict(state.get("components") or {}).items()}
    return NetworkState(name=str(state["name"]), build_func_name=str(state["build_func_name"]),
                        static_kwargs=dict(state["static_kwargs"]), components=components,
                        variables=variables)


def read_official_pickle(source):
    """Reads an official TF1 StyleGAN2 / stylegan2-ada pickle.

    Args:
        source: a path, or a binary file object.

    Returns:
        dict with "G", "D", "Gs" NetworkStates ("G" and "D" are None when the
        pickle holds only Gs, as some published files do).

    Raises:
        OfficialPickleError: for a truncated, unrelated or disallowed file.
        FileNotFoundError: when the path does not exist.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return read_official_pickle(f)
    data = source.read()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except OfficialPickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as error:
        raise OfficialPickleError(
            f"not a complete official StyleGAN2 network pickle ({len(data)} bytes): "
            f"{type(error).__name__}: {error}") from error
    if isinstance(obj, _NetworkStub):
        return {"G": None, "D": None, "Gs": _to_state(obj, "Gs")}
    if not isinstance(obj, tuple) or len(obj) != 3:
        raise OfficialPickleError(
            f"expected the official (G, D, Gs) tuple, found {type(obj).__name__}"
            + (f" of length {len(obj)}" if isinstance(obj, tuple) else ""))
    return {key: _to_state(value, key) for key, value in zip(("G", "D", "Gs"), obj)}
