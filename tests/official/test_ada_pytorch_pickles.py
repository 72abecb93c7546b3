"""stylegan2-ada-pytorch / stylegan3 pickles: read without torch or their code, drawing NVIDIA's images.

The fixtures (tests/fixtures/ada_pytorch/README.md) are tiny random-weight networks saved
as NVIDIA's training loops save snapshots, with reference outputs from NVIDIA's own code
for seeds 0-3 (z = RandomState(seed).randn(1, z_dim)), noise_mode const, psi 1.0 and 0.7.
Hostile pickles are written here with plain pickle opcodes: no torch needed.
"""

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from stylegan2_tf.official.ada_convert import (
    discriminator_from_module,
    generator_from_module,
    load_ada_pytorch,
)
from stylegan2_tf.official.torch_pickle import AdaPickleError, is_ada_pytorch_pickle, read_torch_pickle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ada_pytorch"
NAMES = ["ada_uncond_skip_resnet", "ada_cond_fp16_resnet_skip", "sg3_stylegan2_orig_orig"]
BGC = {"xflip": 1, "rotate90": 1, "xint": 1, "scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1, "brightness": 1,
       "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}


@pytest.fixture(scope="module")
def loaded():
    """{name: (load_ada_pytorch(..., force_fp32=True), reference npz, c or None)}, loaded once."""
    cache = {}

    def get(name):
        if name not in cache:
            reference = np.load(FIXTURES / f"{name}_reference.npz")
            c = reference["c"] if reference["c"].shape[1] else None
            cache[name] = load_ada_pytorch(FIXTURES / f"{name}.pkl", force_fp32=True), reference, c
        return cache[name]

    return get


def _uint8(images):
    return np.clip(images * 127.5 + 128, 0, 255).astype(np.uint8)


def _max_diff(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.mark.parametrize("name", NAMES)
def test_generator_draws_nvidias_images(name, loaded):
    networks, reference, c = loaded(name)
    G = networks["G_ema"]
    z = np.concatenate([np.random.RandomState(s).randn(1, G.z_dim) for s in reference["seeds"]])
    np.testing.assert_array_equal(z.astype(np.float32), reference["z"])  # NVIDIA's seed convention
    for key, psi in (("psi1", 1.0), ("psi07", 0.7)):
        w = G.mapping(reference["z"], c, truncation_psi=psi).numpy()
        assert _max_diff(w, reference[f"w_{key}"]) <= 1e-4
        images = G(reference["z"], c, truncation_psi=psi, noise_mode="const").numpy()
        assert _max_diff(images, reference[f"img_{key}"]) <= 1e-4
        assert _max_diff(_uint8(images), reference[f"img_uint8_{key}"]) <= 1


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_gives_nvidias_logits(name, loaded):
    networks, reference, c = loaded(name)
    for key, count in (("d_logits_batch4", 4), ("d_logits_batch2", 2)):
        logits = networks["D"](reference["img_psi1"][:count], None if c is None else c[:count]).numpy()
        assert _max_diff(logits, reference[key]) <= 1e-4


def test_trained_and_averaged_generators_differ(loaded):
    networks, reference, _ = loaded("ada_uncond_skip_resnet")
    images = [networks[key](reference["z"], noise_mode="const").numpy() for key in ("G", "G_ema")]
    assert _max_diff(*images) > 0.01


def test_float16_blocks_stay_close_to_nvidias_float16():
    name = "ada_cond_fp16_resnet_skip"  # num_fp16_res=2: both 16 px blocks in float16
    networks = load_ada_pytorch(FIXTURES / f"{name}.pkl")
    reference = np.load(FIXTURES / f"{name}_reference.npz")
    assert networks["G_ema"].synthesis.b16.use_fp16 and networks["D"].b16.use_fp16
    images = networks["G_ema"](reference["z"], reference["c"], noise_mode="const").numpy()
    assert _max_diff(images, reference["img_fp16_psi1"]) <= 5e-3
    logits = networks["D"](reference["img_psi1"], reference["c"]).numpy()
    assert _max_diff(logits, reference["d_logits_fp16_batch4"]) <= 1e-3


@pytest.mark.parametrize("name, p", [("ada_uncond_skip_resnet", 0.123), ("ada_cond_fp16_resnet_skip", None),
                                     ("sg3_stylegan2_orig_orig", 0.25)])
def test_snapshot_data_is_returned_as_plain_data(name, p, loaded):
    networks, reference, c = loaded(name)
    pipe = networks["augment_pipe"]
    if p is None:
        assert pipe is None
    else:
        assert pipe == {"class_name": "AugmentPipe", "init_args": [], "init_kwargs": BGC,
                        "p": pytest.approx(p, abs=1e-7)}
    kwargs = networks["training_set_kwargs"]
    assert type(kwargs) is dict and kwargs["resolution"] == reference["img_psi1"].shape[1]
    assert kwargs["use_labels"] == (c is not None)


def test_conversion_reads_every_setting(loaded):
    networks, _, _ = loaded("ada_cond_fp16_resnet_skip")
    G, D = networks["G_ema"], networks["D"]
    assert (G.z_dim, G.w_dim, G.c_dim) == (12, 20, 3)
    assert G.mapping.num_layers == 3 and G.mapping.layer_features == 24
    assert G.synthesis.architecture == "resnet" and G.synthesis.conv_clamp == 1.5
    assert D.architecture == "skip" and D.conv_clamp == 0.5 and D.b4.cmap_dim == 12
    assert D.mapping.num_layers == 2 and (D.mbstd_group_size, D.mbstd_num_channels) == (2, 2)
    fp16 = load_ada_pytorch(FIXTURES / "sg3_stylegan2_orig_orig.pkl")  # stylegan3 defaults
    assert fp16["G_ema"].synthesis.num_fp16_res == 4 and fp16["G_ema"].synthesis.conv_clamp == 256
    assert fp16["D"].num_fp16_res == 4 and fp16["D"].conv_clamp == 256


def test_reads_file_objects_and_is_sniffed():
    with open(FIXTURES / "sg3_stylegan2_orig_orig.pkl", "rb") as f:
        assert load_ada_pytorch(f)["G_ema"].img_resolution == 16
    for name in NAMES:
        assert is_ada_pytorch_pickle(FIXTURES / f"{name}.pkl")
    official = FIXTURES.parent / "official" / "stylegan2_config_f_tiny.pkl"
    assert not is_ada_pytorch_pickle(official)
    assert not is_ada_pytorch_pickle(FIXTURES / "missing.pkl")
    assert not is_ada_pytorch_pickle(FIXTURES / "torch_tensors_expected.npz")


@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_tensor_layouts_of_torch_storages(kind):
    """Storages as torch.save writes them (legacy and zip streams), views with offsets and strides."""
    tensors = read_torch_pickle(FIXTURES / f"torch_tensors_{kind}.pkl")
    expected = np.load(FIXTURES / "torch_tensors_expected.npz")
    assert sorted(tensors) == sorted(expected.files)
    for key in expected.files:
        assert tensors[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(tensors[key], expected[key], err_msg=key)


# --------------------------------------------------------------------------------------
# Pickles written opcode by opcode.

PROTO = b"\x80\x03"


def _v(obj):
    """The opcodes that push obj (plain data only), without PROTO and STOP."""
    return pickle.dumps(obj, protocol=3)[2:-1]


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(function, *args):
    """function(*args) by REDUCE; function and args are opcodes."""
    return function + b"(" + b"".join(args) + b"tR"


def _dict(**items):
    return b"}(" + b"".join(_v(key) + value for key, value in items.items()) + b"u"


def _storage_stream(array, storage="FloatStorage", key="94105093043840", view=None, numel=None,
                    payload=None, extra_global=b""):
    """A legacy torch.save stream of one storage, as torch 1.7-2.x write it (protocol 2)."""
    array = np.ascontiguousarray(array).reshape(-1)
    n = array.size if numel is None else numel
    header = b"".join(pickle.dumps(x, protocol=2) for x in (
        0x1950A86A20F9469CFC6C, 1001,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    pid = (b"\x80\x02(" + _v("storage") + _global("torch", storage) + _v(key) + _v("cpu") + _v(n)
           + _v(view) + b"tQ" + extra_global + b".")
    data = struct.pack("<q", n) + (array.astype(array.dtype.newbyteorder("<")).tobytes()
                                   if payload is None else payload)
    return header + pid + pickle.dumps([key], protocol=2) + data


def _tensor(stream, offset, size, stride):
    storage = _call(_global("torch.storage", "_load_from_bytes"), _v(stream))
    return _call(_global("torch._utils", "_rebuild_tensor_v2"), storage, _v(offset), _v(tuple(size)),
                 _v(tuple(stride)), _v(False), _call(_global("collections", "OrderedDict")))


def _persistent(class_name, source, init_kwargs=b"}", parameters=b"}"):
    state = _dict(_parameters=parameters, _buffers=b"}", _modules=b"}", _init_args=_v(()),
                  _init_kwargs=init_kwargs, training=_v(False))
    meta = _dict(type=_v("class"), version=_v(6), module_src=_v(source), class_name=_v(class_name), state=state)
    return _call(_global("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)


def _read(ops):
    return read_torch_pickle(io.BytesIO(PROTO + ops + b"."))


def test_reads_storages_of_every_torch_version():
    """torch 1.7-2.x pickle storages as legacy streams (address keys, no views); older ones had views."""
    values = np.arange(12, dtype=np.float32) - 5.5
    tensors = _read(_dict(
        plain=_tensor(_storage_stream(values), 0, (3, 4), (4, 1)),
        strided=_tensor(_storage_stream(values, key="0"), 1, (2, 2), (1, 4)),
        view=_tensor(_storage_stream(values, view=("1", 4, 6)), 2, (2,), (1,)),
        half=_tensor(_storage_stream(values.astype(np.float16), "HalfStorage"), 0, (), ()),
        parameter=_call(_global("torch._utils", "_rebuild_parameter"),
                        _tensor(_storage_stream(values), 0, (12,), (1,)), _v(False), _v({}))))
    np.testing.assert_array_equal(tensors["plain"], values.reshape(3, 4))
    np.testing.assert_array_equal(tensors["strided"], [[values[1], values[5]], [values[2], values[6]]])
    np.testing.assert_array_equal(tensors["view"], values[6:8])
    assert tensors["half"].dtype == np.float16 and tensors["half"].shape == () and tensors["half"] == -5.5
    np.testing.assert_array_equal(tensors["parameter"], values)


@pytest.mark.parametrize("ops, message", [
    (_tensor(_storage_stream(np.zeros(4, np.float32)), 2, (3,), (1,)), "does not fit its storage"),
    (_tensor(_storage_stream(np.zeros(4, np.float32)), 0, (4, 4), (0, 1)), "does not fit its storage"),
    (_tensor(_storage_stream(np.zeros(4, np.float32), numel=5), 0, (4,), (1,)), "truncated"),
    (_tensor(_storage_stream(np.zeros(4, np.float32), payload=b"\0" * 15), 0, (4,), (1,)), "truncated"),
    (_tensor(b"\x80\x02K\x01." * 5, 0, (1,), (1,)), "not a torch.save stream"),
    (b"(" + _v("x") + b"tQ", "unexpected persistent id"),
])
def test_refuses_malformed_tensors(ops, message):
    with pytest.raises(AdaPickleError, match=message):
        _read(ops)


def _evil_source(path):
    return f"open({str(path)!r}, 'w').write('pwned')\nclass Generator:\n    pass\n"


@pytest.mark.parametrize("make_ops, refused", [
    (lambda p: _call(_global("os", "system"), _v(f"touch {p}")), "refusing to load os.system from the pickle"),
    (lambda p: _call(_global("builtins", "exec"), _v(_evil_source(p))), "refusing to load builtins.exec"),
    (lambda p: _call(_global("torch_utils.persistence", "_src_to_module"), _v(_evil_source(p))),
     "refusing to load torch_utils.persistence._src_to_module"),
    (lambda p: _dict(G_ema=_persistent("Generator", "", init_kwargs=_dict(
        z_dim=_call(_global("subprocess", "call"), _v(("touch", str(p))))))), "refusing to load subprocess.call"),
    (lambda p: _tensor(_storage_stream(np.zeros(1, np.float32),
                                       extra_global=b"0" + _call(_global("os", "system"), _v(f"touch {p}"))),
                       0, (1,), (1,)), "refusing to load os.system from a tensor storage"),
    (lambda p: _global("torch._utils", "_rebuild_parameter") + _v({"_name": "x"}) + b"b",
     "tries to set the state of torch._utils._rebuild_parameter"),
])
def test_hostile_pickles_are_refused_without_effect(tmp_path, make_ops, refused):
    path = tmp_path / "pwned"
    with pytest.raises(AdaPickleError, match=refused):
        _read(make_ops(path))
    assert not path.exists()


def test_embedded_source_is_kept_as_text_and_never_run(tmp_path):
    path = tmp_path / "pwned"
    ops = _dict(G_ema=_persistent("Generator", _evil_source(path)))
    network = _read(ops)["G_ema"]
    assert network.class_name == "Generator" and "pwned" in network.module_src
    with pytest.raises(AdaPickleError, match="G_ema lacks the constructor argument z_dim"):
        load_ada_pytorch(io.BytesIO(PROTO + ops + b"."))
    assert not path.exists() and not any(tmp_path.iterdir())


def test_truncated_unrelated_and_other_files(tmp_path):
    data = (FIXTURES / "ada_uncond_skip_resnet.pkl").read_bytes()
    for cut in (len(data) // 2, 100):
        with pytest.raises(AdaPickleError, match="not a complete stylegan2-ada-pytorch / stylegan3"):
            load_ada_pytorch(io.BytesIO(data[:cut]))
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0 JFIF not a pickle")
    with pytest.raises(AdaPickleError, match="not a complete"):
        load_ada_pytorch(jpeg)
    with pytest.raises(AdaPickleError, match="refusing to load dnnlib.tflib.network.Network"):
        load_ada_pytorch(FIXTURES.parent / "official" / "stylegan2_config_f_tiny.pkl")
    with pytest.raises(AdaPickleError, match="holds no G_ema"):
        load_ada_pytorch(io.BytesIO(pickle.dumps({"a": 1})))
    with pytest.raises(AdaPickleError, match="expected a dict of networks"):
        load_ada_pytorch(io.BytesIO(pickle.dumps([1, 2])))
    with pytest.raises(FileNotFoundError):
        load_ada_pytorch(tmp_path / "missing.pkl")
    assert isinstance(AdaPickleError("x"), ValueError)


# --------------------------------------------------------------------------------------
# What cannot be converted is refused, never dropped.


def _snapshot(name="ada_cond_fp16_resnet_skip"):
    return read_torch_pickle(FIXTURES / f"{name}.pkl")


def _modules(network, path):
    for name in path.split("."):
        network = network.modules[name]
    return network


def _edit_generator(edit):
    G = _snapshot()["G_ema"]
    edit(G)
    return lambda: generator_from_module(G, where="G_ema")


@pytest.mark.parametrize("edit, message", [
    (lambda G: setattr(G, "module_src", G.module_src + "\nclass SynthesisInput: pass\n"),
     "StyleGAN3 \\(alias-free"),
    (lambda G: setattr(G, "class_name", "SuperResolutionGenerator"), "expected Generator"),
    (lambda G: G.init_kwargs["synthesis_kwargs"].update(use_noise=False), "use_noise=False is not supported"),
    (lambda G: G.init_kwargs["synthesis_kwargs"].update(kernel_size=1), "kernel_size=1 is not supported"),
    (lambda G: G.init_kwargs["synthesis_kwargs"].update(architecture="fancy"), "architecture='fancy'"),
    (lambda G: G.init_kwargs.update(img_size=16), r"unsupported constructor arguments \['img_size'\]"),
    (lambda G: G.init_kwargs["mapping_kwargs"].update(embed_features=7), "embed_features=7"),
    (lambda G: _modules(G, "synthesis.b8.conv0").buffers.update(extra=np.zeros(2, np.float32)),
     r"no counterpart here: \['synthesis.b8.conv0.extra'\]"),
    (lambda G: _modules(G, "synthesis.b8.conv1").parameters.pop("noise_strength"),
     "lacks synthesis.b8.conv1.noise_strength"),
    (lambda G: _modules(G, "synthesis.b8.conv1").parameters.update(bias=np.zeros(3, np.float32)),
     "synthesis.b8.conv1.bias has shape"),
    (lambda G: _modules(G, "synthesis.b16").buffers.update(resample_filter=np.ones((4, 4), np.float32) / 16),
     "synthesis.b16.resample_filter is not the resample_filter"),
    (lambda G: _modules(G, "synthesis.b8").attributes.update(use_fp16=False), "records use_fp16=False"),
    (lambda G: _modules(G, "synthesis.b16.conv1").attributes.update(conv_clamp=None), "records conv_clamp=None"),
    (lambda G: _modules(G, "synthesis").modules.update(input=_modules(G, "mapping")),
     "unexpected submodule synthesis.input"),
])
def test_unconvertible_generators_are_refused(edit, message):
    with pytest.raises(AdaPickleError, match=message):
        _edit_generator(edit)()


def test_unconvertible_discriminators_and_snapshots_are_refused():
    data = _snapshot()
    D = data["D"]
    D.init_kwargs["epilogue_kwargs"]["activation"] = "relu"
    with pytest.raises(AdaPickleError, match="activation='relu' is not supported"):
        discriminator_from_module(D)
    data = _snapshot("sg3_stylegan2_orig_orig")
    data["D"].init_kwargs["block_kwargs"]["extra"] = 1
    with pytest.raises(AdaPickleError, match=r"D block_kwargs: unsupported constructor arguments \['extra'\]"):
        discriminator_from_module(data["D"])
    ops = _dict(G_ema=_persistent("Generator", ""), G_ema_copies=b"]" + _persistent("Generator", "") + b"a")
    with pytest.raises(AdaPickleError, match=r"networks under \['G_ema_copies'\]"):
        load_ada_pytorch(io.BytesIO(PROTO + ops + b"."))


def test_explicit_defaults_as_legacy_py_writes_them_are_accepted(loaded):
    """legacy.py (TF1 -> PyTorch) states every default: use_noise, activation, freeze_layers, ..."""
    data = _snapshot("ada_uncond_skip_resnet")
    data["G_ema"].init_kwargs["synthesis_kwargs"].update(use_noise=True, activation="lrelu",
                                                         resample_filter=[1, 3, 3, 1])
    data["G_ema"].init_kwargs["mapping_kwargs"].update(embed_features=None, layer_features=16,
                                                       activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995)
    data["D"].init_kwargs.update(cmap_dim=None)
    data["D"].init_kwargs["block_kwargs"].update(activation="lrelu", resample_filter=[1, 3, 3, 1], freeze_layers=0)
    data["D"].init_kwargs["mapping_kwargs"].update(num_layers=0, embed_features=None, layer_features=None,
                                                   activation="lrelu", lr_multiplier=0.1)
    data["D"].init_kwargs["epilogue_kwargs"].update(mbstd_num_channels=1, activation="lrelu")
    G, D = generator_from_module(data["G_ema"], force_fp32=True), discriminator_from_module(data["D"])
    _, reference, _ = loaded("ada_uncond_skip_resnet")
    assert _max_diff(G(reference["z"], noise_mode="const").numpy(), reference["img_psi1"]) <= 1e-4
    assert _max_diff(D(reference["img_psi1"]).numpy(), reference["d_logits_batch4"]) <= 1e-4


def test_frozen_layers_are_read_from_buffers():
    """Freeze-D keeps the first layer's weights as buffers; they are read like parameters."""
    D = _snapshot("sg3_stylegan2_orig_orig")["D"]
    assert set(D.modules["b16"].modules["fromrgb"].buffers) >= {"weight", "bias"}
    assert not D.modules["b16"].modules["fromrgb"].parameters
