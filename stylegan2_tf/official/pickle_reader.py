"""Reads NVIDIA's TF1 network pickles without running any code from them.

An official StyleGAN2 / stylegan2-ada (TensorFlow 1) pickle is a tuple of
`dnnlib.tflib.network.Network` objects (G, D, Gs) whose state holds the build
function's keyword arguments, the sub-networks and the variables as numpy
arrays. NVIDIA's own loader `exec`s the Python source stored in the pickle;
this one never does: a restricted unpickler admits only the network stand-in,
`dnnlib.util.EasyDict` and numpy's array reconstruction, and refuses every
other class with an error that names it. A pickle is a program: a downloaded
one must not run.

Nor may it take more memory than its size allows. Before unpickling,
`check_pickle_stream` walks the opcodes without building anything and refuses
a length (BINBYTES8, LONG4, FRAME, ...) beyond the bytes that follow, a memo
index beyond the objects made so far (the C unpickler allocates the memo up to
the index) and more than MAX_PICKLE_OPCODES opcodes. A numpy array is accepted
only as numpy writes it, `_reconstruct(ndarray, (0,), b'b')` (an empty
placeholder) and a state (BUILD) with the shape, dtype and raw bytes, or as
tf1_export writes it, `numpy.ndarray(shape, dtype, raw bytes)`; either way the
raw bytes must hold exactly shape x itemsize bytes (numpy.ndarray(shape) alone
would allocate any shape), so no array is larger than the bytes the file holds
for it, and all arrays together not larger than the file.
"""

import io
import math
import pickle
import pickletools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_PICKLE_OPCODES = 2_000_000  # NVIDIA's networks need ~5-50 thousand; each can make an object
MAX_ARRAY_BYTES = 1 << 30  # one array (the largest official variable is ~10 MB)


class OfficialPickleError(ValueError):
    """The file is not a readable official StyleGAN2 network pickle (message says why)."""


# --------------------------------------------------------------------------------------
# Resource limits shared with torch_pickle.

_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_LENGTH_BYTES = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False), pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
                 pickletools.TAKEN_FROM_ARGUMENT4U: (4, False), pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def check_pickle_stream(data, start=0, error=OfficialPickleError, what="pickle"):
    """Walks the opcodes of the pickle that starts at data[start] without building anything;
    returns the offset after its STOP.

    Raises `error` (its message about `what`) for an unknown opcode, an argument or
    a length-prefixed value (BINBYTES8, BINUNICODE8, LONG4, FRAME, ...) running past
    the end of `data`, a memo index beyond the opcodes read so far, or more than
    MAX_PICKLE_OPCODES opcodes: what would make the unpickler allocate more than
    the data can fill.
    """
    end, pos, count = len(data), start, 0
    while True:
        if pos >= end:
            raise error(f"not a complete {what}: it ends at byte {end} without a STOP opcode")
        op = _OPCODES.get(data[pos:pos + 1])
        if op is None:
            raise error(f"not a complete {what}: unknown opcode {data[pos]:#04x} at byte {pos}")
        at, pos, count = pos, pos + 1, count + 1
        if count > MAX_PICKLE_OPCODES:
            raise error(f"refusing the {what}: more than {MAX_PICKLE_OPCODES:,} opcodes, more than any "
                        "network needs")
        arg, value = op.arg, None
        if arg is None:
            pass
        elif arg.n >= 0:  # a fixed-size argument
            if pos + arg.n > end:
                raise error(f"not a complete {what}: it ends inside the {op.name} at byte {at}")
            value = int.from_bytes(data[pos:pos + arg.n], "little") if arg.name.startswith("uint") else None
            pos += arg.n
        elif arg.n == pickletools.UP_TO_NEWLINE:  # one line, or two for GLOBAL / INST
            for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1):
                newline = data.find(b"\n", pos)
                if newline < 0:
                    raise error(f"not a complete {what}: it ends inside the {op.name} at byte {at}")
                line, pos = data[pos:newline], newline + 1
            if op.name in _MEMO_PUTS:
                value = int(line) if line.isdigit() and len(line) < 20 else -1
        else:  # a length, then that many bytes
            size, signed = _LENGTH_BYTES[arg.n]
            if pos + size > end:
                raise error(f"not a complete {what}: it ends inside the {op.name} at byte {at}")
            value = int.from_bytes(data[pos:pos + size], "little", signed=signed)
            pos += size
            if not 0 <= value <= end - pos:
                raise error(f"not a complete {what}: a {op.name} of {value:,} bytes at byte {at}, but only "
                            f"{end - pos:,} bytes follow")
            pos += value
        if op.name == "FRAME" and value > end - pos:
            raise error(f"not a complete {what}: a frame of {value:,} bytes at byte {at}, but only "
                        f"{end - pos:,} bytes follow")
        if op.name in _MEMO_PUTS and not 0 <= value <= count:
            raise error(f"not a valid {what}: memo entry {value:,} stored at byte {at} after only "
                        f"{count:,} opcodes")
        if op.name == "STOP":
            return pos


class ByteBudget:
    """Counts the bytes of arrays made from one file; `error` once they exceed `limit`."""

    def __init__(self, limit, error, what):
        self.limit, self.used, self._error, self._what = limit, 0, error, what

    def take(self, nbytes):
        self.used += nbytes
        if self.used > self.limit:
            raise self._error(f"the {self._what} of the pickle add up to more than {self.limit:,} bytes, "
                              "more than the file holds")


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


class FrozenClass(type):
    """Metaclass of the stand-in classes a pickle may name: BUILD on the class itself cannot
    set its attributes (which would change it for every later load)."""

    def __setattr__(cls, name, value):
        raise OfficialPickleError(f"the pickle tries to set {name!r:.40} on the class {cls.__name__}")


class _EasyDict(dict, metaclass=FrozenClass):
    """Stand-in for dnnlib.util.EasyDict."""


def _checked_array_bytes(shape, dtype, raw, budget):
    """Raises unless `raw` holds exactly an array of `shape` and `dtype` (no objects), within
    MAX_ARRAY_BYTES and the file's `budget`; the dtype as np.dtype."""
    if isinstance(dtype, str):
        dtype = np.dtype(dtype)
    if (not isinstance(shape, tuple) or not all(_is_size(n) for n in shape)
            or not isinstance(dtype, np.dtype) or not isinstance(raw, (bytes, bytearray))):
        raise OfficialPickleError(f"malformed numpy array (shape {shape!r:.60}, dtype {dtype!r:.40}, "
                                  f"data {type(raw).__name__})")
    if dtype.hasobject:
        raise OfficialPickleError("refusing an object-dtype numpy array in the pickle")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != len(raw):
        raise OfficialPickleError(f"a numpy array of shape {shape} and dtype {dtype} needs {nbytes:,} "
                                  f"bytes, but the pickle holds {len(raw):,} for it")
    if nbytes > MAX_ARRAY_BYTES:
        raise OfficialPickleError(f"a numpy array of shape {shape} ({nbytes:,} bytes) is larger than "
                                  f"any network variable ({MAX_ARRAY_BYTES:,} bytes at most)")
    budget.take(nbytes)
    return dtype


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _NumpyNdarray:
    """What the pickle gets for numpy.ndarray: the first argument of numpy's _reconstruct, and
    callable only as numpy.ndarray(shape, dtype, raw bytes), checked (ndarray(shape) would
    allocate any shape the file declares)."""

    __slots__ = ("_budget",)

    def __init__(self, budget):
        self._budget = budget

    def __call__(self, *args):
        if len(args) != 3:
            raise OfficialPickleError("the pickle calls numpy.ndarray() without its data, which would "
                                      "allocate any shape it declares")
        shape, dtype, raw = args
        dtype = _checked_array_bytes(shape, dtype, raw, self._budget)
        return np.ndarray(shape, dtype, raw)


class _PickledArray(np.ndarray):
    """The array numpy's _reconstruct makes, whose state (BUILD) is checked before numpy takes it."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise OfficialPickleError(f"malformed numpy array state {type(state).__name__}")
        shape, dtype, is_fortran, raw = state[-4:]
        if isinstance(dtype, str):
            raise OfficialPickleError("malformed numpy array state (a dtype name, not a dtype)")
        dtype = _checked_array_bytes(shape, dtype, raw, self._budget)
        super().__setstate__((1, shape, dtype, bool(is_fortran), raw))


def _array_placeholder(ndarray):
    """Stand-in for numpy's _reconstruct(ndarray, shape, dtype): an empty array whose BUILD is checked."""

    def reconstruct(subtype, shape, dtype):
        if subtype is not ndarray:
            raise OfficialPickleError(f"numpy _reconstruct of {type(subtype).__name__}: only numpy.ndarray "
                                      "is allowed")
        if not isinstance(shape, tuple) or not all(_is_size(n) for n in shape) or math.prod(shape):
            raise OfficialPickleError(f"a numpy array placeholder declares shape {shape!r:.60}; numpy "
                                      "writes (0,) and the data in the array's state")
        array = np.ndarray.__new__(_PickledArray, (0,), np.uint8)
        array._budget = ndarray._budget
        return array

    return reconstruct


_ALLOWED = {
    ("dnnlib.tflib.network", "Network"): _NetworkStub,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): dict,
}
_NUMPY_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, budget):
        super().__init__(file)
        self._ndarray = _NumpyNdarray(budget)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) == ("numpy", "ndarray"):
            return self._ndarray
        if (module, name) in _NUMPY_RECONSTRUCT:
            return _array_placeholder(self._ndarray)
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
    if not isinstance(dtype, np.dtype) or not isinstance(data, (bytes, bytearray)):
        raise OfficialPickleError(f"malformed numpy scalar ({type(dtype).__name__}, {type(data).__name__})")
    if dtype.hasobject:
        raise OfficialPickleError("refusing an object-dtype numpy scalar in the pickle")
    if len(data) != dtype.itemsize:
        raise OfficialPickleError(f"a numpy {dtype} scalar holds {len(data)} bytes")
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


def read_path(path, read, error_type):
    """read(the open file at `path`), its `error_type` errors prefixed with the path."""
    with open(path, "rb") as f:
        try:
            return read(f)
        except error_type as error:
            raise error_type(f"{path}: {error}") from error


def read_official_pickle(source):
    """Reads an official TF1 StyleGAN2 / stylegan2-ada pickle.

    Args:
        source: a path, or a binary file object.

    Returns:
        dict with "G", "D", "Gs" NetworkStates ("G" and "D" are None when the
        pickle holds only Gs, as some published files do).

    Raises:
        OfficialPickleError: for a truncated, unrelated, disallowed or oversized file (the
            message starts with the path when given one).
        FileNotFoundError: when the path does not exist.
    """
    if isinstance(source, (str, Path)):
        return read_path(source, read_official_pickle, OfficialPickleError)
    data = source.read()
    try:
        check_pickle_stream(data, what=f"official StyleGAN2 network pickle ({len(data)} bytes)")
        obj = _RestrictedUnpickler(io.BytesIO(data), ByteBudget(len(data), OfficialPickleError, "arrays")).load()
    except OfficialPickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, RecursionError, MemoryError) as error:
        raise OfficialPickleError(
            f"not a complete official StyleGAN2 network pickle ({len(data)} bytes): "
            f"{type(error).__name__}: {str(error)[:200]}") from error
    if isinstance(obj, _NetworkStub):
        return {"G": None, "D": None, "Gs": _to_state(obj, "Gs")}
    if not isinstance(obj, tuple) or len(obj) != 3:
        raise OfficialPickleError(
            f"expected the official (G, D, Gs) tuple, found {type(obj).__name__}"
            + (f" of length {len(obj)}" if isinstance(obj, tuple) else ""))
    return {key: _to_state(value, key) for key, value in zip(("G", "D", "Gs"), obj)}
