"""Hostile network files: pickles and .keras archives that claim more than they hold.

Each must end as one clear error naming the file and the problem, before anything large is
allocated, unpacked or written. Files stay a few kilobytes: where a limit would need a large
file, the limit is lowered (monkeypatch).
"""

import io
import json
import pickle
import struct
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_ada_pytorch_pickles import PROTO, _call, _global, _storage_stream, _tensor, _v

from stylegan2_tf import archives, network_io
from stylegan2_tf.network_io import NetworkFileError, load_network
from stylegan2_tf.official import pickle_reader, torch_pickle
from stylegan2_tf.official.pickle_reader import OfficialPickleError, read_official_pickle
from stylegan2_tf.official.torch_pickle import AdaPickleError, read_torch_pickle

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TF1_PICKLE = FIXTURES / "official" / "stylegan2_config_f_tiny.pkl"


# --------------------------------------------------------------------------------------
# Official TF1 pickles: numpy arrays only as numpy writes them.


class _Declared:
    """Pickles as numpy's placeholder call with a declared shape and no data (no BUILD)."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (_reconstruct, (np.ndarray, self.shape, b"b"))


class _ArrayState:
    """Pickles as numpy does (placeholder + state), with a state of our choosing."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (_reconstruct, (np.ndarray, (0,), b"b"), self.state)


@pytest.fixture
def dnnlib(monkeypatch):
    """Modules named like dnnlib's so pickle writes (and reads back) the official class paths."""
    network = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __setstate__(self, state):
            self.state = state

        def __reduce_ex__(self, protocol):
            return (Network, (), self.state)

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    network.Network = Network
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, module in (("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
                         ("dnnlib.tflib.network", network), ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, module)
    return Network


def test_the_629_kb_pickle_declaring_a_3_gb_array_is_refused(dnnlib, tmp_path):
    """The tiny official fixture with Gs's dlatent_avg declared 93,750,000 x 32 and no data."""
    with open(TF1_PICKLE, "rb") as f:
        G, D, Gs = pickle.load(f)
    Gs.state["variables"] = [(name, _Declared((93_750_000, 32)) if name == "dlatent_avg" else value)
                             for name, value in Gs.state["variables"]]
    path = tmp_path / "declared.pkl"
    path.write_bytes(pickle.dumps((G, D, Gs), protocol=3))
    assert path.stat().st_size < 700_000
    with pytest.raises(OfficialPickleError, match=rf"^{path}: a numpy array placeholder declares shape "
                                                  r"\(93750000, 32\); numpy writes \(0,\)"):
        load_network(path)


@pytest.mark.parametrize("obj, message", [
    (_Declared((1, 2)), r"placeholder declares shape \(1, 2\)"),
    (_ArrayState((1, (1000, 1000), np.dtype("f4"), False, b"\0" * 16)),
     r"a numpy array of shape \(1000, 1000\) and dtype float32 needs 4,000,000 bytes, but the pickle holds 16"),
    (_ArrayState((1, (2,), np.dtype("O"), False, [1, 2])), r"malformed numpy array \(shape \(2,\), .*data list"),
    (_ArrayState((1, (2,), np.dtype("O"), False, b"\0" * 16)), "object-dtype numpy array"),
    (_ArrayState((1, ("2",), np.dtype("f4"), False, b"\0" * 8)), r"malformed numpy array \(shape \('2',\)"),
    (_ArrayState((1, (-2,), np.dtype("f4"), False, b"")), r"malformed numpy array \(shape \(-2,\)"),
    (_ArrayState("nonsense"), "malformed numpy array state str"),
])
def test_numpy_arrays_must_hold_what_they_declare(obj, message):
    with pytest.raises(OfficialPickleError, match=message):
        read_official_pickle(io.BytesIO(pickle.dumps(obj, protocol=3)))


def test_numpy_ndarray_is_called_only_with_its_data():
    """ndarray(shape) and ndarray.__new__(ndarray, shape) would allocate any declared shape;
    ndarray(shape, dtype, bytes), as tf1_export writes arrays, must hold what it declares."""
    reduce = PROTO + _call(_global("numpy", "ndarray"), _v((93_750_000, 32))) + b"."
    with pytest.raises(OfficialPickleError, match=r"^the pickle calls numpy.ndarray\(\) without its data, "
                                                  "which would allocate any shape it declares"):
        read_official_pickle(io.BytesIO(reduce))
    newobj = PROTO + _global("numpy", "ndarray") + _v(((93_750_000, 32),)) + b"\x81."
    with pytest.raises(OfficialPickleError, match="NEWOBJ class argument must be a type"):
        read_official_pickle(io.BytesIO(newobj))
    short = PROTO + _call(_global("numpy", "ndarray"), _v((93_750_000, 32)), _v("<f4"), _v(b"\0" * 8)) + b"."
    with pytest.raises(OfficialPickleError, match=r"a numpy array of shape \(93750000, 32\) and dtype float32 "
                                                  "needs 12,000,000,000 bytes, but the pickle holds 8"):
        read_official_pickle(io.BytesIO(short))
    objects = PROTO + _call(_global("numpy", "ndarray"), _v((1,)), _v("|O"), _v(b"\0" * 8)) + b"."
    with pytest.raises(OfficialPickleError, match="object-dtype"):
        read_official_pickle(io.BytesIO(objects))


def test_one_array_may_not_exceed_the_cap(monkeypatch):
    monkeypatch.setattr(pickle_reader, "MAX_ARRAY_BYTES", 64)
    data = pickle.dumps(np.zeros(32, np.float32), protocol=3)
    with pytest.raises(OfficialPickleError, match=r"a numpy array of shape \(32,\) \(128 bytes\) is larger "
                                                  r"than any network variable \(64 bytes at most\)"):
        read_official_pickle(io.BytesIO(data))


def test_arrays_sharing_their_bytes_may_not_outgrow_the_file():
    """One raw string in the memo, rebuilt as 100 byte-swapped arrays (numpy copies each one)."""
    raw = bytes(4096)
    data = pickle.dumps([_ArrayState((1, (1024,), np.dtype(">f4"), False, raw)) for _ in range(100)], protocol=3)
    assert len(data) < 16_000  # 409,600 bytes of arrays
    with pytest.raises(OfficialPickleError, match=rf"the arrays of the pickle add up to more than {len(data):,} "
                                                  "bytes, more than the file holds"):
        read_official_pickle(io.BytesIO(data))


HUGE = 2**60


@pytest.mark.parametrize("opcodes, message", [
    (b"\x80\x04\x8e" + struct.pack("<Q", HUGE) + b"abc.",
     "a BINBYTES8 of 1,152,921,504,606,846,976 bytes at byte 2, but only 4 bytes follow"),
    (b"\x80\x04\x8d" + struct.pack("<Q", HUGE) + b"abc.", "a BINUNICODE8 of 1,152,921,504,606,846,976 bytes"),
    (b"\x80\x05\x96" + struct.pack("<Q", HUGE) + b"abc.", "a BYTEARRAY8 of"),
    (b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"abc.", "a LONG4 of 2,147,483,647 bytes"),
    (b"\x80\x02\x8b" + struct.pack("<i", -5) + b"abc.", "a LONG4 of -5 bytes"),
    (b"\x80\x03B" + struct.pack("<I", 2**32 - 1) + b"abc.", "a BINBYTES of 4,294,967,295 bytes"),
    (b"\x80\x04\x95" + struct.pack("<Q", HUGE) + b"N.", "a frame of 1,152,921,504,606,846,976 bytes at byte 2"),
    (b"\x80\x02Nr" + struct.pack("<I", 2**28) + b".", "memo entry 268,435,456 stored at byte 3 after only 3"),
    (b"\x80\x02Np268435456\n.", "memo entry 268,435,456 stored"),
    (b"\x80\x02N", "it ends at byte 3 without a STOP opcode"),
    (b"\x80\x02\xff.", "unknown opcode 0xff at byte 2"),
    (b"\x80\x02cnumpy\ndty", "it ends inside the GLOBAL at byte 2"),
])
def test_lengths_and_memo_indices_beyond_the_file_are_refused_before_unpickling(opcodes, message):
    """The C unpickler allocates a declared length (MemoryError) or a memo up to the index
    (a 12-byte pickle with memo index 2**28 fills 4 GiB) before reading."""
    with pytest.raises(OfficialPickleError, match=rf"^not a (complete|valid) official StyleGAN2 network "
                                                  rf"pickle \({len(opcodes)} bytes\): .*{message}"):
        read_official_pickle(io.BytesIO(opcodes))
    with pytest.raises(AdaPickleError, match=message):
        read_torch_pickle(io.BytesIO(opcodes))


def test_opcode_count_is_capped(monkeypatch):
    monkeypatch.setattr(pickle_reader, "MAX_PICKLE_OPCODES", 100)
    with pytest.raises(OfficialPickleError, match="more than 100 opcodes, more than any network needs"):
        read_official_pickle(io.BytesIO(pickle.dumps([{} for _ in range(100)], protocol=3)))


def test_stand_in_classes_cannot_be_changed_by_a_pickle():
    """BUILD on a class sets class attributes: every later load would see them."""
    for reader in (read_official_pickle, read_torch_pickle):
        ops = PROTO + _global("dnnlib.util", "EasyDict") + b"N" + _v({"__getitem__": 1}) + b"\x86b."
        with pytest.raises(OfficialPickleError, match="tries to set '__getitem__' on the class _EasyDict"):
            reader(io.BytesIO(ops))
    assert "__getitem__" not in pickle_reader._EasyDict.__dict__
    assert "__getitem__" not in torch_pickle._EasyDict.__dict__


def test_errors_of_a_file_name_it(tmp_path):
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", HUGE) + b"abc.")
    with pytest.raises(OfficialPickleError, match=rf"^{path}: not a complete official StyleGAN2"):
        load_network(path)


# --------------------------------------------------------------------------------------
# stylegan2-ada-pytorch pickles: storages hold what they declare, tensors do not multiply them.


def _read(ops):
    return read_torch_pickle(io.BytesIO(PROTO + ops + b"."))


def test_storage_element_counts_are_checked_against_the_bytes_present():
    stream = _storage_stream(np.zeros(4, np.float32), numel=HUGE)
    with pytest.raises(AdaPickleError, match=r"storage '94105093043840' declares 1,152,921,504,606,846,976 "
                                             r"elements \(4,611,686,018,427,387,904 bytes\), but only 16 bytes follow"):
        _read(_tensor(stream, 0, (4,), (1,)))
    with pytest.raises(AdaPickleError, match="a storage size must be an integer >= 0, found -1"):
        _read(_tensor(_storage_stream(np.zeros(4, np.float32), numel=-1), 0, (4,), (1,)))


def test_huge_lengths_inside_a_storage_stream_are_refused():
    header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001))
    stream = header + b"\x80\x04\x8e" + struct.pack("<Q", HUGE) + b"abc."
    with pytest.raises(AdaPickleError, match="not a complete tensor storage stream: a BINBYTES8 of "
                                             "1,152,921,504,606,846,976 bytes"):
        _read(_call(_global("torch.storage", "_load_from_bytes"), _v(stream)))


def test_storages_rebuilt_from_one_blob_may_not_outgrow_the_file():
    """One 4 KB storage stream in the memo, loaded three times: three copies of 4 KB."""
    blob = _v(_storage_stream(np.zeros(1024, np.float32))) + b"q\x07"  # BINPUT 7 (_v's own memo uses 0)
    load = _global("torch.storage", "_load_from_bytes")
    ops = b"(" + _call(load, blob) + _call(load, b"h\x07") + _call(load, b"h\x07") + b"l"
    with pytest.raises(AdaPickleError, match="the tensor storages of the pickle add up to more than"):
        _read(ops)


def test_tensors_viewing_one_storage_may_not_outgrow_the_file(monkeypatch):
    """Five 1 KB copies of one 1 KB storage in a ~1.6 KB file (each copy is within the storage)."""
    monkeypatch.setattr(torch_pickle, "TENSOR_SLACK_BYTES", 0)
    storage = _call(_global("torch.storage", "_load_from_bytes"), _v(_storage_stream(np.zeros(256, np.float32))))
    rebuild = _global("torch._utils", "_rebuild_tensor_v2")
    tensors = [_call(rebuild, storage + b"q\x07", _v(0), _v((256,)), _v((1,)))]  # BINPUT 7
    tensors += [_call(rebuild, b"h\x07", _v(0), _v((16, 16)), _v((16, 1))) for _ in range(4)]
    with pytest.raises(AdaPickleError, match="the tensors of the pickle add up to more than"):
        _read(b"(" + b"".join(tensors) + b"l")
    monkeypatch.setattr(torch_pickle, "TENSOR_SLACK_BYTES", 1 << 20)
    assert len(_read(b"(" + b"".join(tensors) + b"l")) == 5


def test_an_ada_pickle_error_names_the_file(tmp_path):
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(PROTO + b"(" + _global("torch_utils.persistence", "_reconstruct_persistent_obj")
                     + b"Nr" + struct.pack("<I", 2**28) + b"l.")
    with pytest.raises(AdaPickleError, match=rf"^{path}: not a valid stylegan2-ada-pytorch / stylegan3 network "
                                             r"pickle \(\d+ bytes\): memo entry 268,435,456"):
        load_network(path)


# --------------------------------------------------------------------------------------
# .keras files: checked as archives before Keras reads them.


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A generator .keras file of ours (from the tiny official fixture) and its members."""
    path = tmp_path_factory.mktemp("keras") / "G_ema.keras"
    load_network(TF1_PICKLE)["G_ema"].save(path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    return path, members


def _keras(tmp_path, members, compression=zipfile.ZIP_STORED, name="G_ema.keras"):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names
        with zipfile.ZipFile(path, "w", compression) as archive:
            for member, data in members:
                archive.writestr(member, data)
    return path


def _config(keras_file, **changes):
    config = json.loads(keras_file[1]["config.json"])
    return json.dumps({**config, **changes}).encode()


def test_a_valid_keras_file_still_loads(keras_file, tmp_path):
    G = load_network(keras_file[0])["G_ema"]
    assert G.__class__.__name__ == "Generator"
    deflated = _keras(tmp_path, keras_file[1].items(), zipfile.ZIP_DEFLATED)  # recompressed: fine
    assert load_network(deflated)["G_ema"].count_params() == G.count_params()


def test_a_bit_flipped_keras_file_is_a_clear_error(keras_file, tmp_path):
    data = bytearray(keras_file[0].read_bytes())
    with zipfile.ZipFile(keras_file[0]) as archive:
        info = archive.getinfo("model.weights.h5")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 5000] ^= 0x10
    flipped = tmp_path / "flipped.keras"
    flipped.write_bytes(bytes(data))
    with pytest.raises(NetworkFileError, match=rf"^{flipped}: member model.weights.h5 is damaged: Bad CRC-32"):
        load_network(flipped)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(NetworkFileError, match=rf"^{truncated} is not a .keras file \(a zip archive\): "
                                               "File is not a zip file; is it truncated or damaged"):
        load_network(truncated)


def test_extra_members_are_refused_before_anything_is_unpacked(keras_file, tmp_path, monkeypatch):
    """Keras extracts a whole archive of more than 3 members to TMPDIR."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    members = [*keras_file[1].items(), ("assets/junk.bin", b"\0" * 100_000)]
    path = _keras(tmp_path, members, zipfile.ZIP_DEFLATED)
    with pytest.raises(NetworkFileError, match=rf"^{path}: unexpected member 'assets/junk.bin' in a .keras "
                                               r"file \(it holds only config.json, metadata.json, "
                                               r"model.weights.h5\)"):
        load_network(path)
    assert not (tmp_path / "tmp").exists()


def test_a_whitespace_config_is_refused_by_its_declared_size(keras_file, tmp_path):
    """The 4 MB file whose config.json unpacks to 3.5 GiB, at 5 MiB."""
    members = dict(keras_file[1])
    members["config.json"] = members["config.json"][:-1] + b" " * (5 << 20) + b"}"
    path = _keras(tmp_path, members.items(), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 400_000
    with pytest.raises(NetworkFileError, match=rf"^{path}: member config.json unpacks to 5,243,5\d\d bytes, more "
                                               r"than the 4,194,304 a .keras file needs"):
        load_network(path)


def test_a_compression_bomb_is_refused(keras_file, tmp_path, monkeypatch):
    monkeypatch.setattr(archives, "RATIO_FLOOR_BYTES", 1000)
    members = dict(keras_file[1])
    members["metadata.json"] = members["metadata.json"][:-1] + b" " * 200_000 + b"}"
    path = _keras(tmp_path, members.items(), zipfile.ZIP_DEFLATED)
    with pytest.raises(NetworkFileError, match=r"member metadata.json unpacks [\d,]+ bytes to 200,0\d\d, more "
                                               r"than 20x: a zip bomb, not a .keras file"):
        load_network(path)


def test_oversized_weights_are_refused(keras_file, tmp_path, monkeypatch):
    monkeypatch.setitem(network_io.KERAS_MEMBER_LIMITS, "model.weights.h5", 1000)
    with pytest.raises(NetworkFileError, match=r"member model.weights.h5 unpacks to [\d,]+ bytes, more than "
                                               "the 1,000"):
        load_network(keras_file[0])


@pytest.mark.parametrize("members, message", [
    (lambda m: [*m.items(), ("config.json", m["config.json"])], "member 'config.json' appears twice"),
    (lambda m: [(k, v) for k, v in m.items() if k != "model.weights.h5"], "it lacks model.weights.h5"),
    (lambda m: {**m, "config.json": b"{not json"}.items(), "config.json is not valid JSON"),
    (lambda m: {**m, "config.json": b"[" * 100_000 + b"]" * 100_000}.items(), "config.json is not valid JSON"),
    (lambda m: {**m, "config.json": b"[1, 2]"}.items(), "config.json does not describe a Keras object"),
])
def test_malformed_archives_and_configs(keras_file, tmp_path, members, message):
    path = _keras(tmp_path, members(keras_file[1]))
    with pytest.raises(NetworkFileError, match=message) as failure:
        load_network(path)
    assert str(failure.value).startswith(str(path))


def test_foreign_and_unknown_classes_are_clear_errors(keras_file, tmp_path):
    members = dict(keras_file[1])
    members["config.json"] = _config(keras_file, module="keras", class_name="Sequential",
                                     registered_name="Sequential")
    path = _keras(tmp_path, members.items())
    with pytest.raises(NetworkFileError, match=rf"^{path} holds a 'Sequential' \(module 'keras'\), not a "
                                               "stylegan2_tf network"):
        load_network(path)
    members["config.json"] = _config(keras_file, class_name="Evil", registered_name="stylegan2_tf>Evil")
    path = _keras(tmp_path, members.items(), name="evil.keras")
    with pytest.raises(NetworkFileError, match=rf"^cannot load {path}: TypeError: Could not locate class 'Evil'"):
        load_network(path)
