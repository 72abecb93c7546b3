"""The restricted reader of official TF1 pickles: reads network states, runs nothing."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest

from stylegan2_tf.official.pickle_reader import OfficialPickleError, read_official_pickle


def _fake_dnnlib(monkeypatch):
    """Modules named like dnnlib's, so pickle writes the official class paths."""
    network = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __init__(self, state):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__ = "dnnlib.tflib.network"
    Network.__qualname__ = "Network"
    network.Network = Network
    for name, module in (("dnnlib", types.ModuleType("dnnlib")),
                         ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
                         ("dnnlib.tflib.network", network)):
        monkeypatch.setitem(sys.modules, name, module)
    return Network


def _state(name, variables, components=None):
    return {"version": 4, "name": name, "static_kwargs": {"resolution": 8},
            "components": components or {}, "build_module_src": "raise SystemExit('ran!')",
            "build_func_name": f"training.networks_stylegan2.{name}", "variables": variables}


def _official_bytes(monkeypatch):
    Network = _fake_dnnlib(monkeypatch)
    mapping = Network(_state("G_mapping", [("Dense0/weight", np.ones((2, 3), np.float32))]))
    g = Network(_state("G_main", [("lod", np.float32(0))], {"mapping": mapping}))
    d = Network(_state("D_stylegan2", [("Output/bias", np.zeros(1, np.float32))]))
    return pickle.dumps((g, d, g))


def test_reads_states_without_running_their_code(monkeypatch):
    data = _official_bytes(monkeypatch)
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.delitem(sys.modules, name)
    nets = read_official_pickle(io.BytesIO(data))
    assert nets["G"].name == "G_main" and nets["D"].name == "D_stylegan2"
    mapping = nets["Gs"].components["mapping"]
    np.testing.assert_array_equal(mapping.variables["Dense0/weight"], np.ones((2, 3)))
    assert nets["G"].static_kwargs == {"resolution": 8}


def test_refuses_any_other_class(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with pytest.raises(OfficialPickleError, match=r"refusing to load posix.system"):
        read_official_pickle(io.BytesIO(pickle.dumps(Evil())))
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_unrelated_files(monkeypatch, tmp_path):
    data = _official_bytes(monkeypatch)
    with pytest.raises(OfficialPickleError, match="not a complete official StyleGAN2"):
        read_official_pickle(io.BytesIO(data[: len(data) // 2]))
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 JFIF not a pickle")
    with pytest.raises(OfficialPickleError, match="not a complete official StyleGAN2"):
        read_official_pickle(path)
    with pytest.raises(OfficialPickleError, match="expected the official"):
        read_official_pickle(io.BytesIO(pickle.dumps({"a": 1})))
    with pytest.raises(FileNotFoundError):
        read_official_pickle(tmp_path / "missing.pkl")
