"""Reads stylegan2-ada-pytorch and stylegan3 network pickles without torch, running nothing from them.

A training snapshot of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3 is a
plain `pickle.dump` of a dict (`G`, `D`, `G_ema`, `augment_pipe`,
`training_set_kwargs`). Each network is a `torch_utils.persistence` object,
reduced to `_reconstruct_persistent_obj(meta)` with meta = {type, version,
module_src, class_name, state}: NVIDIA's loader `exec`s `module_src` and
builds the class from it. This reader never does. It reads the file in five
steps:

1. A restricted unpickler admits only the names in `_SNAPSHOT_GLOBALS` (the
   persistence hook, torch's tensor and storage rebuild functions,
   `torch.device`, numpy scalars: stand-ins written here) and
   `_SNAPSHOT_TYPES` (`collections.OrderedDict`, `set`, `frozenset`,
   `dnnlib.util.EasyDict`, `numpy.dtype`), and refuses every other global
   with an error that names it (`module.name`).
2. `_reconstruct_persistent_obj` keeps the meta as a `TorchModule`: class
   name, the embedded source as text (never run), the recorded constructor
   arguments, and the `nn.Module` state (`_parameters`, `_buffers`,
   `_modules`, plain attributes).
3. A storage is pickled as `torch.storage._load_from_bytes(b)`, where `b` is
   a complete `torch.save` stream of that one storage. The legacy (non-zip)
   stream, which torch writes here (torch 1.7-1.9 of NVIDIA's published files
   and torch 2.x alike), is five pickled records: the magic number
   0x1950a86a20f9469cfc6c, the protocol version 1001, the sys_info dict, the
   object (a persistent id ('storage', storage_type, key, location, numel,
   view_metadata), with storage_type a global such as `torch.FloatStorage`),
   the sorted list of storage keys; then for each key an int64 element count
   and the raw elements, little-endian. The zip stream (`<archive>/data.pkl`
   + `<archive>/data/<key>`) that torch.load also accepts is read as well.
4. `_rebuild_tensor_v2(storage, offset, size, stride, ...)` becomes a numpy
   array copied out of the storage (bounds checked against the storage);
   `_rebuild_parameter(data, ...)` the array itself.
5. The result is plain data: dicts, lists, numbers, strings, numpy arrays and
   `TorchModule`s. `stylegan2_tf.official.ada_convert` maps it onto our
   networks.

Memory stays within what the file's size allows: the opcodes of the pickle and of
each storage stream are checked first (`pickle_reader.check_pickle_stream`), a
storage's element count must match the bytes it holds, the storages together may
not hold more bytes than the file, nor the tensors copied out of them more than
twice as many (every tensor is a copy; bfloat16 ones are widened to float32).
"""

import collections
import functools
import io
import math
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stylegan2_tf.official.pickle_reader import (
    ByteBudget,
    FrozenClass,
    OfficialPickleError,
    _numpy_scalar,
    check_pickle_stream,
    read_path,
)

PERSISTENCE_VERSION = 6  # torch_utils.persistence._version of both NVIDIA repositories
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PROTOCOL = 1001
_SNIFF_BYTES = 1 << 16
TENSOR_SLACK_BYTES = 16 << 20  # beyond twice the file's size, for tensors that share a storage


class AdaPickleError(OfficialPickleError):
    """The file is not a readable stylegan2-ada-pytorch / stylegan3 pickle (the message says why)."""


@dataclass
class TorchModule:
    """One `torch_utils.persistence` object (an `nn.Module`), as plain data.

    class_name: e.g. "Generator", "SynthesisBlock" (the module path is not stored).
    module_src: the embedded Python source of the defining module, as text; never run.
    init_args, init_kwargs: the recorded constructor arguments.
    parameters, buffers: name -> numpy array (or None), in torch's layouts.
    modules: name -> TorchModule (or None).
    attributes: the rest of the module's `__dict__` (training, z_dim, ...).
    """

    class_name: str
    module_src: str
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)

    def tensors(self, prefix=""):
        """{"synthesis.b4.conv1.weight": array, ...}: parameters and buffers, recursively."""
        found = {}
        for group in (self.parameters, self.buffers):
            found.update({prefix + name: value for name, value in group.items() if value is not None})
        for name, module in self.modules.items():
            if module is not None:
                found.update(module.tensors(f"{prefix}{name}."))
        return found


class _StandIn:
    """A callable the pickle may name; BUILD on it is refused (it has no state to set)."""

    __slots__ = ("_function", "_name")

    def __init__(self, name, function):
        self._name = name
        self._function = function

    def __call__(self, *args):
        return self._function(*args)

    def __setstate__(self, state):
        raise AdaPickleError(f"the pickle tries to set the state of {self._name}")


class _EasyDict(dict, metaclass=FrozenClass):
    """Stand-in for dnnlib.util.EasyDict."""


# --------------------------------------------------------------------------------------
# Storages: torch.save streams inside the pickle.

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 below
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass
class _Storage:
    """A flat typed storage: `data` is a 1-D array in native byte order."""

    name: str
    data: np.ndarray


@dataclass(frozen=True)
class _StorageRef:
    storage_type: _StorageType
    key: str
    numel: int
    view: tuple | None


def _check_int(value, what, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AdaPickleError(f"{what} must be an integer >= {minimum}, found {value!r}")
    return int(value)


def _storage_pid(pid, declared):
    """persistent_load of a torch.save stream: records the storage a persistent id names."""
    if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
        raise AdaPickleError(f"unexpected persistent id in a tensor storage: {pid!r:.80}")
    storage_type, key, location, numel = pid[1:5]
    view = pid[5] if len(pid) == 6 else None
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
        raise AdaPickleError(f"malformed storage id in a tensor storage: {pid!r:.120}")
    ref = _StorageRef(storage_type, key, _check_int(numel, "a storage size"), view)
    if key in declared and declared[key].storage_type != storage_type:
        raise AdaPickleError(f"storage {key!r} is declared with two types")
    declared.setdefault(key, ref)
    return ref


class _StorageStreamUnpickler(pickle.Unpickler):
    """The records of a torch.save stream: only storage types and plain data."""

    def __init__(self, file, declared=None):
        super().__init__(file)
        self._declared = declared

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise AdaPickleError(f"refusing to load {module}.{name} from a tensor storage of the pickle: "
                             "a storage holds only its type and data")

    def persistent_load(self, pid):
        if self._declared is None:
            raise AdaPickleError("unexpected persistent id in a tensor storage header")
        return _storage_pid(pid, self._declared)


def _read_elements(raw, storage_type):
    array = np.frombuffer(raw, dtype=storage_type.dtype)
    if storage_type.name == "BFloat16Storage":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(storage_type.dtype.newbyteorder("="))


def _resolve(ref, arrays):
    """The storage a persistent id refers to (a slice of its root for pre-1.6 views)."""
    data = arrays[ref.key]
    if ref.view is not None:
        if not isinstance(ref.view, tuple) or len(ref.view) != 3:
            raise AdaPickleError(f"malformed storage view {ref.view!r:.80}")
        offset = _check_int(ref.view[1], "a storage view offset")
        size = _check_int(ref.view[2], "a storage view size")
        if offset + size > data.size:
            raise AdaPickleError("a storage view lies outside its storage")
        data = data[offset:offset + size]
    return _Storage(ref.storage_type.name, data)


def _load_stream_record(blob, stream, declared=None):
    """The next pickled record of a torch.save stream, its opcodes checked first."""
    check_pickle_stream(blob, stream.tell(), AdaPickleError, "tensor storage stream")
    return _StorageStreamUnpickler(stream, declared).load()


def _load_legacy_storage(blob, budget):
    stream = io.BytesIO(blob)
    header = [_load_stream_record(blob, stream) for _ in range(3)]
    if header[0] != TORCH_MAGIC_NUMBER or header[1] != TORCH_LEGACY_PROTOCOL or not isinstance(header[2], dict):
        raise AdaPickleError("a tensor storage is not a torch.save stream (wrong magic number or protocol)")
    declared = {}
    ref = _load_stream_record(blob, stream, declared)
    keys = _load_stream_record(blob, stream)
    if not isinstance(ref, _StorageRef) or not isinstance(keys, list) or set(keys) != set(declared):
        raise AdaPickleError("a tensor storage stream does not hold exactly one storage")
    arrays = {}
    for key in keys:
        count = stream.read(8)
        if len(count) != 8:
            raise AdaPickleError("a tensor storage is truncated")
        numel = struct.unpack("<q", count)[0]
        storage_type = declared[key].storage_type
        if numel != declared[key].numel:
            raise AdaPickleError(f"storage {key!r} declares {declared[key].numel} elements, holds {numel}")
        nbytes = numel * storage_type.dtype.itemsize
        if nbytes > len(blob) - stream.tell():
            raise AdaPickleError(f"storage {key!r} declares {numel:,} elements ({nbytes:,} bytes), but only "
                                 f"{len(blob) - stream.tell():,} bytes follow: truncated")
        budget.take(nbytes)
        arrays[key] = _read_elements(stream.read(nbytes), storage_type)
    return _resolve(ref, arrays)


def _load_zip_storage(blob, budget):
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        names = archive.namelist()
        if any(info.file_size > len(blob) for info in archive.infolist()):
            # torch stores its entries uncompressed: nothing in it unpacks to more than the blob.
            raise AdaPickleError("a tensor storage zip unpacks to more than its size")
        roots = [name[: -len("data.pkl")] for name in names if re.fullmatch(r"[^/]*/data\.pkl", name)]
        if len(roots) != 1:
            raise AdaPickleError("a tensor storage zip holds no single <archive>/data.pkl")
        root = roots[0]
        byteorder = archive.read(root + "byteorder").decode() if root + "byteorder" in names else "little"
        if byteorder != "little":
            raise AdaPickleError(f"a tensor storage was written {byteorder}-endian: not supported")
        declared = {}
        header = archive.read(root + "data.pkl")
        check_pickle_stream(header, 0, AdaPickleError, "tensor storage stream")
        ref = _StorageStreamUnpickler(io.BytesIO(header), declared).load()
        if not isinstance(ref, _StorageRef) or len(declared) != 1:
            raise AdaPickleError("a tensor storage stream does not hold exactly one storage")
        name = f"{root}data/{ref.key}"
        if name not in names:
            raise AdaPickleError(f"a tensor storage zip lacks {name}")
        expected = ref.numel * ref.storage_type.dtype.itemsize
        if archive.getinfo(name).file_size != expected:
            raise AdaPickleError(f"{name} does not hold the {ref.numel} elements it declares")
        budget.take(expected)
        return _resolve(ref, {ref.key: _read_elements(archive.read(name), ref.storage_type)})


def _load_from_bytes(budget, blob):
    """Stand-in for torch.storage._load_from_bytes: the storage, as a flat numpy array.

    `budget` (bound by the unpickler, not from the pickle) counts the storages' bytes.
    """
    if not isinstance(blob, (bytes, bytearray)):
        raise AdaPickleError(f"a tensor storage is {type(blob).__name__}, not bytes")
    blob = bytes(blob)
    if blob.startswith(b"PK\x03\x04"):
        return _load_zip_storage(blob, budget)
    return _load_legacy_storage(blob, budget)


def _rebuild_tensor_v2(budget, storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for torch._utils._rebuild_tensor_v2: a numpy array copied out of the storage.

    `budget` (bound by the unpickler, not from the pickle) counts the tensors' bytes.
    """
    if not isinstance(storage, _Storage):
        raise AdaPickleError(f"a tensor's storage is {type(storage).__name__}, not a torch storage")
    if backward_hooks or metadata:
        raise AdaPickleError("a tensor carries backward hooks or metadata: not a saved network tensor")
    offset = _check_int(storage_offset, "a tensor offset")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)) or len(size) != len(stride):
        raise AdaPickleError(f"a tensor has size {size!r:.60} and stride {stride!r:.60}")
    shape = tuple(_check_int(n, "a tensor dimension") for n in size)
    steps = tuple(_check_int(s, "a tensor stride") for s in stride)
    data = storage.data
    if 0 in shape:
        return np.zeros(shape, data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(shape, steps))
    count = math.prod(shape)
    if last >= data.size or count > data.size:
        raise AdaPickleError(f"a tensor of shape {shape} (offset {offset}, stride {steps}) does not fit its "
                             f"storage of {data.size} elements")
    budget.take(count * data.itemsize)
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=shape,
                                           strides=[s * data.itemsize for s in steps], writeable=False)
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stand-in for torch._utils._rebuild_parameter: the parameter's array."""
    if not isinstance(data, np.ndarray) or backward_hooks:
        raise AdaPickleError("a parameter is not a plain tensor")
    return data


def _device(kind, index=None):
    """Stand-in for torch.device: its name."""
    if not isinstance(kind, str) or not (index is None or isinstance(index, int)):
        raise AdaPickleError(f"malformed torch.device({kind!r:.40}, {index!r:.20})")
    return kind if index is None else f"{kind}:{index}"


_MODULE_STATE = ("_parameters", "_buffers", "_modules")


def _reconstruct_persistent_obj(meta):
    """Stand-in for torch_utils.persistence._reconstruct_persistent_obj: keeps the meta, runs nothing."""
    if not isinstance(meta, dict) or set(meta) != {"type", "version", "module_src", "class_name", "state"}:
        keys = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise AdaPickleError(f"malformed torch_utils.persistence object (meta {keys!r:.120})")
    if meta["type"] != "class" or meta["version"] != PERSISTENCE_VERSION:
        raise AdaPickleError(f"unsupported torch_utils.persistence object: type {meta['type']!r:.40}, "
                             f"version {meta['version']!r:.20} (expected 'class', {PERSISTENCE_VERSION})")
    name, source, state = meta["class_name"], meta["module_src"], meta["state"]
    if not isinstance(name, str) or not name.isidentifier() or not isinstance(source, str):
        raise AdaPickleError(f"malformed torch_utils.persistence object (class name {name!r:.60})")
    if not isinstance(state, dict) or any(not isinstance(state.get(key), dict) for key in _MODULE_STATE):
        raise AdaPickleError(f"persistent object {name}: its state is not that of a torch.nn.Module")
    for kind in ("_parameters", "_buffers"):
        for key, value in state[kind].items():
            if value is not None and not isinstance(value, np.ndarray):
                raise AdaPickleError(f"persistent object {name}: {kind[1:-1]} {key!r} is not a tensor")
    for key, value in state["_modules"].items():
        if value is not None and not isinstance(value, TorchModule):
            raise AdaPickleError(f"persistent object {name}: submodule {key!r} is a "
                                 f"{type(value).__name__}, not a persistent module")
    init_args, init_kwargs = state.get("_init_args", ()), state.get("_init_kwargs", {})
    if not isinstance(init_args, (tuple, list)) or not isinstance(init_kwargs, dict):
        raise AdaPickleError(f"persistent object {name}: malformed constructor arguments")
    attributes = {key: value for key, value in state.items()
                  if key not in _MODULE_STATE + ("_init_args", "_init_kwargs")}
    return TorchModule(class_name=name, module_src=source, init_args=tuple(init_args),
                       init_kwargs=plain_data(init_kwargs), parameters=dict(state["_parameters"]),
                       buffers=dict(state["_buffers"]), modules=dict(state["_modules"]),
                       attributes=attributes)


def plain_data(value):
    """EasyDicts and OrderedDicts as dicts, recursively (lists, tuples kept)."""
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_data(item) for item in value)
    return value


_SNAPSHOT_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "device"): _device,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}
_SNAPSHOT_TYPES = {  # data types, returned as they are (BUILD on a class fails)
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset, ("__builtin__", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("numpy", "dtype"): np.dtype,
}


class _SnapshotUnpickler(pickle.Unpickler):
    def __init__(self, file, file_size):
        super().__init__(file)
        self._budgets = {  # honest files: storages fill the file, tensors partition the storages
            _load_from_bytes: ByteBudget(file_size, AdaPickleError, "tensor storages"),
            _rebuild_tensor_v2: ByteBudget(2 * file_size + TENSOR_SLACK_BYTES, AdaPickleError, "tensors"),
        }

    def find_class(self, module, name):
        if (module, name) in _SNAPSHOT_TYPES:
            return _SNAPSHOT_TYPES[(module, name)]
        if (module, name) in _SNAPSHOT_GLOBALS:
            function = _SNAPSHOT_GLOBALS[(module, name)]
            if function in self._budgets:
                function = functools.partial(function, self._budgets[function])
            return _StandIn(f"{module}.{name}", function)
        raise AdaPickleError(
            f"refusing to load {module}.{name} from the pickle: a stylegan2-ada-pytorch / stylegan3 "
            "network pickle holds only torch_utils.persistence networks, tensors and plain data, and "
            "nothing in it is run")

    def persistent_load(self, pid):
        raise AdaPickleError("unexpected persistent id in the pickle (a torch.save file, not a network pickle?)")


def read_torch_pickle(source):
    """Reads a stylegan2-ada-pytorch / stylegan3 pickle as plain data.

    Args:
        source: a path, or a binary file object.

    Returns:
        The unpickled object (for a snapshot, a dict with "G", "D", "G_ema",
        "augment_pipe", "training_set_kwargs"), with every persistent network
        a `TorchModule`, every tensor a numpy array, every EasyDict a dict.

    Raises:
        AdaPickleError: for a truncated, unrelated, disallowed or oversized file (the message
            starts with the path when given one).
        FileNotFoundError: when the path does not exist.
    """
    if isinstance(source, (str, Path)):
        return read_path(source, read_torch_pickle, AdaPickleError)
    data = source.read()
    try:
        check_pickle_stream(data, 0, AdaPickleError,
                            f"stylegan2-ada-pytorch / stylegan3 network pickle ({len(data)} bytes)")
        return _SnapshotUnpickler(io.BytesIO(data), len(data)).load()
    except AdaPickleError:
        raise
    except OfficialPickleError as error:  # from the shared numpy scalar reader
        raise AdaPickleError(str(error)) from error
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, zipfile.BadZipFile, UnicodeDecodeError, RecursionError, MemoryError,
            OverflowError) as error:
        raise AdaPickleError(
            f"not a complete stylegan2-ada-pytorch / stylegan3 network pickle ({len(data)} bytes): "
            f"{type(error).__name__}: {str(error)[:200]}") from error


def is_ada_pytorch_pickle(path):
    """Cheap sniff: a pickle whose first 64 KiB name torch_utils.persistence (runs nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    return head[:1] == b"\x80" and b"torch_utils.persistence" in head
