"""scripts/export.py and stylegan2_tf.serving: SavedModels that TF Serving can run.

Exported models are run in a fresh Python process that never imports our
package (so our custom ops are not registered), through the TF1 loader that
TF Serving mimics (feeding only the inputs a request names) and through
tf.saved_model.load, and compared with the library's images.
"""

import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.inference import to_uint8
from stylegan2_tf.network_io import load_network
from stylegan2_tf.networks.generator import channels_at
from stylegan2_tf.serving import ServingGenerator, default_max_batch, export_saved_model

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "official"

# Runs {name: (api, key, feeds)} against a SavedModel; api "session" is the TF1 loader
# (as TF Serving), "signature" loaded.signatures[key], "function" getattr(loaded, key).
PROBE = r"""
import pickle, sys
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

export_dir, requests_file, results_file = sys.argv[1:]
with open(requests_file, "rb") as file:
    requests = pickle.load(file)
model = saved_model_pb2.SavedModel()
with open(f"{export_dir}/saved_model.pb", "rb") as file:
    model.ParseFromString(file.read())
graph = model.meta_graphs[0].graph_def
functions = {function.signature.name for function in graph.library.function}
ops = {node.op for node in graph.node}
for function in graph.library.function:
    ops |= {node.op for node in function.node_def}
ops -= functions  # a node may call a library function by name
results = {"ops": sorted(ops),
           "unregistered": sorted(op for op in ops if op_def_registry.get(op) is None)}

def run(call):
    try:
        return {key: value.numpy() if tf.is_tensor(value) else value
                for key, value in call().items()}
    except (tf.errors.OpError, TypeError, ValueError) as error:
        return f"error: {error}"

with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], export_dir)
    for name, (api, key, feeds) in requests.items():
        if api == "session":
            signature = meta.signature_def[key]
            fetches = {out: tensor.name for out, tensor in signature.outputs.items()}
            feed_dict = {signature.inputs[k].name: v for k, v in feeds.items()}
            results[name] = run(lambda: sess.run(fetches, feed_dict))
loaded = tf.saved_model.load(export_dir)
for name, (api, key, feeds) in requests.items():
    tensors = {k: tf.constant(v) for k, v in feeds.items()}
    if api == "signature":
        results[name] = run(lambda: loaded.signatures[key](**tensors))
    elif api == "function":
        results[name] = run(lambda: getattr(loaded, key)(**tensors))
results["imported_stylegan2_tf"] = "stylegan2_tf" in sys.modules
with open(results_file, "wb") as file:
    pickle.dump(results, file)
"""


def run_export(*args):
    """Runs scripts/export.py against this checkout's package, with the script's log levels
    (not the TF_CPP_MIN_LOG_LEVEL of conftest)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "export.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


def probe(export_dir, requests, tmp_path):
    """{request name: {output: array} or 'error: ...'} from a process without stylegan2_tf."""
    requests_file, results_file = tmp_path / "requests.pkl", tmp_path / "results.pkl"
    requests_file.write_bytes(pickle.dumps(requests))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", PROBE, str(export_dir), str(requests_file),
                             str(results_file)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    results = pickle.loads(results_file.read_bytes())
    assert results["imported_stylegan2_tf"] is False
    return results


def assert_images_close(images, expected):
    """uint8 images equal up to one step (float rounding at quantization boundaries)."""
    assert images.dtype == np.uint8 and images.shape == expected.shape
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1


@pytest.fixture(scope="module")
def network_size():
    """16x16 generators with 2 mapping layers."""
    return {"resolution": 16, "mapping_layers": 2}


def with_noise_and_w_avg(G):
    """G with its noise strengths and w_avg set (from 0), so noise modes and truncation matter."""
    rng = np.random.RandomState(1)
    for variable in G.variables:
        if variable.path.endswith(("noise_strength", "w_avg")):
            variable.assign(rng.uniform(0.3, 1.0, variable.shape).astype(np.float32))
    return G


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_generator):
    """(G, z, ws, probe results) for a tiny generator exported by the script with --trunc=0.7
    and --max_batch=5."""
    folder = tmp_path_factory.mktemp("tiny")
    G = with_noise_and_w_avg(tiny_generator())
    G.save(folder / "g.keras")
    result = run_export(f"--network={folder / 'g.keras'}", f"--export_dir={folder / 'model' / '1'}",
                        "--trunc=0.7", "--max_batch=5")
    assert result.returncode == 0, result.stderr
    assert "serving_default(z float32 [N, 8], truncation_psi float32 [] = 0.7" in result.stdout
    assert "N <= 5 (max_batch)" in result.stdout
    # TensorFlow's logs are hidden without --verbose: start-up (C++) and saving (Python).
    for noise in ("absl::InitializeLog", "oneDNN", "cuInit", "signature_serialization",
                  "functional_saver", "fingerprint", "Assets written"):
        assert noise not in result.stderr, result.stderr[-2000:]
    assert sorted(p.name for p in (folder / "model").iterdir()) == ["1"]  # no partial folder left
    z = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    ws = G.mapping(z, truncation_psi=0.5).numpy()
    all_inputs = {"z": z, "truncation_psi": 0.7, "truncation_cutoff": 0, "noise_mode": "const"}
    requests = {
        "default": ("session", "serving_default", {"z": z}),
        "psi1": ("session", "serving_default", {"z": z, "truncation_psi": 1.0}),
        "cutoff2": ("session", "serving_default",
                    {"z": z, "truncation_psi": 0.5, "truncation_cutoff": 2}),
        "none": ("session", "serving_default", {"z": z, "noise_mode": "none"}),
        "random": ("session", "serving_default", {"z": z, "noise_mode": "random"}),
        "mapping": ("session", "mapping", {"z": z}),
        "synthesis": ("session", "synthesis", {"ws": ws}),
        "signature": ("signature", "serving_default", all_inputs),
        "function": ("function", "generate", {"z": z}),
        "function_mapping": ("function", "mapping", {"z": z, "truncation_psi": 1.0}),
        "bad_z_dim": ("session", "serving_default", {"z": z[:, :7]}),
        "bad_z_dim_signature": ("signature", "serving_default", {**all_inputs, "z": z[:, :7]}),
        "bad_noise_mode": ("session", "serving_default", {"z": z, "noise_mode": "fresh"}),
        "bad_ws": ("session", "synthesis", {"ws": ws[:, 1:]}),
        "int_z": ("function", "generate", {"z": z.astype(np.int64)}),
        "batch_6": ("session", "serving_default", {"z": np.zeros([6, 8], np.float32)}),
        "batch_6_function": ("function", "generate", {"z": np.zeros([6, 8], np.float32)}),
        "batch_6_mapping": ("session", "mapping", {"z": np.zeros([6, 8], np.float32)}),
        "batch_6_ws": ("session", "synthesis", {"ws": np.zeros([6, *ws.shape[1:]], np.float32)}),
        "batch_5": ("session", "serving_default", {"z": np.zeros([5, 8], np.float32)}),
        "nan_z": ("session", "serving_default", {"z": np.where(z > 1, np.nan, z)}),
        "inf_z": ("function", "generate", {"z": np.where(z > 1, np.inf, z)}),
        "inf_ws": ("session", "synthesis", {"ws": np.where(ws > 0.5, -np.inf, ws)}),
        "nan_psi": ("session", "serving_default", {"z": z, "truncation_psi": np.float32(np.nan)}),
        "inf_psi": ("session", "mapping", {"z": z, "truncation_psi": np.float32(np.inf)}),
        "empty": ("session", "serving_default", {"z": np.zeros([0, 8], np.float32)}),
        "empty_function": ("function", "generate", {"z": np.zeros([0, 8], np.float32)}),
        "empty_mapping": ("session", "mapping", {"z": np.zeros([0, 8], np.float32)}),
        "empty_ws": ("session", "synthesis", {"ws": np.zeros([0, *ws.shape[1:]], np.float32)}),
        "bytes_noise_mode": ("session", "serving_default", {"z": z, "noise_mode": b"\xff\xfenone"}),
        "bytes_noise_mode_function": ("function", "generate", {"z": z, "noise_mode": b"\xc3"}),
    }
    return G, z, ws, probe(folder / "model" / "1", requests, folder)


def test_request_with_only_z_uses_export_defaults(tiny):
    G, z, _, results = tiny
    assert_images_close(results["default"]["images"],
                        to_uint8(G(z, truncation_psi=0.7, noise_mode="const")))


@pytest.mark.parametrize("name,kwargs", [
    ("psi1", {"truncation_psi": 1.0}),
    ("cutoff2", {"truncation_psi": 0.5, "truncation_cutoff": 2}),
    ("none", {"truncation_psi": 0.7, "noise_mode": "none"}),
])
def test_optional_inputs_match_library(tiny, name, kwargs):
    G, z, _, results = tiny
    assert_images_close(results[name]["images"], to_uint8(G(z, **{"noise_mode": "const", **kwargs})))


def test_random_noise_is_fresh(tiny):
    _, _, _, results = tiny
    images = results["random"]["images"].astype(int)
    for other in ("default", "none"):
        assert np.abs(images - results[other]["images"]).max() > 1


def test_mapping_and_synthesis_signatures(tiny):
    G, z, ws, results = tiny
    np.testing.assert_allclose(results["mapping"]["ws"], G.mapping(z, truncation_psi=0.7).numpy(),
                               atol=1e-5, rtol=1e-5)
    assert_images_close(results["synthesis"]["images"], to_uint8(G.synthesis(ws, noise_mode="const")))


def test_tf2_callers(tiny):
    G, z, _, results = tiny
    # loaded.signatures take every input; loaded.generate / mapping take the defaults.
    np.testing.assert_array_equal(results["signature"]["images"], results["default"]["images"])
    np.testing.assert_array_equal(results["function"]["images"], results["default"]["images"])
    np.testing.assert_allclose(results["function_mapping"]["ws"], G.mapping(z).numpy(),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,message", [
    ("bad_z_dim", "expected z float32 [N, 8]; received shape] [4 7]"),
    ("bad_z_dim_signature", "expected z float32 [N, 8]; received shape] [4 7]"),
    ("bad_noise_mode", "noise_mode must be one of random, const, none; received] [fresh]"),
    ("bad_ws", "expected ws float32 [N, 6, 8]; received shape] [4 5 8]"),
    ("int_z", "dtype=tf.int64, name='z') to TensorSpec(shape=(None, None), dtype=tf.float32"),
    ("nan_z", "z must be finite; NaN or inf values received:] [{}]"),
    ("inf_z", "z must be finite; NaN or inf values received:] [{}]"),
    ("inf_ws", "ws must be finite; NaN or inf values received:] [{}]"),
    ("nan_psi", "truncation_psi must be finite; received] [nan]"),
    ("inf_psi", "truncation_psi must be finite; received] [inf]"),
    # Bytes that are not UTF-8 are shown replaced (U+FFFD), so the message still decodes.
    ("bytes_noise_mode", "noise_mode must be one of random, const, none; received] [\ufffd\ufffdnone]"),
    ("bytes_noise_mode_function", "noise_mode must be one of random, const, none; received] [\ufffd]"),
])
def test_bad_inputs_name_the_input(tiny, name, message):
    _, z, ws, results = tiny
    poisoned = {"nan_z": (z, 1), "inf_z": (z, 1), "inf_ws": (ws, 0.5)}.get(name)  # values above set bad
    if poisoned is not None:
        array, threshold = poisoned
        bad = (array > threshold).sum()
        assert 0 < bad < array.size
        message = message.format(bad)
    assert isinstance(results[name], str) and message in results[name], results[name]


@pytest.mark.parametrize("name,input_name", [
    ("batch_6", "z"), ("batch_6_function", "z"), ("batch_6_mapping", "z"), ("batch_6_ws", "ws"),
])
def test_batch_above_max_batch_names_the_limit(tiny, name, input_name):
    _, _, _, results = tiny
    message = (f"batch too large: at most 5 rows of {input_name} per request "
               f"(max_batch of this export); received] [6]")
    assert isinstance(results[name], str) and message in results[name], results[name]
    assert results["batch_5"]["images"].shape == (5, 16, 16, 3)


def test_empty_batch_gives_empty_result(tiny):
    G, _, _, results = tiny
    for name in ("empty", "empty_function", "empty_ws"):
        images = results[name]["images"]
        assert images.dtype == np.uint8 and images.shape == (0, 16, 16, 3), name
    assert results["empty_mapping"]["ws"].shape == (0, G.num_ws, G.w_dim)


def test_default_max_batch_keeps_requests_to_about_2_gib():
    def generator(resolution):  # config-f widths; only what default_max_batch reads
        res = [2**i for i in range(2, resolution.bit_length())]
        blocks = [SimpleNamespace(out_channels=channels_at(r, 32768, 512)) for r in res]
        return SimpleNamespace(synthesis=SimpleNamespace(block_resolutions=res, blocks=blocks))

    assert [default_max_batch(generator(r)) for r in (16, 32, 64, 256, 1024)] == [64, 64, 32, 8, 2]


def test_only_stock_ops(tiny):
    _, _, _, results = tiny
    assert results["unregistered"] == []
    assert not [op for op in results["ops"] if op.startswith("StyleGAN2")]
    assert {"Case", "RandomStandardNormal", "Assert", "PlaceholderWithDefault"} <= set(results["ops"])


def test_rank_is_checked_in_the_graph(tiny_generator):
    # TF Serving's C++ session does not compare fed shapes with the placeholders.
    serving = ServingGenerator(with_noise_and_w_avg(tiny_generator()))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected z float32 \[N, 8\]"):
        serving.mapping(tf.zeros([2, 8, 1]), None, tf.constant(1.0), tf.constant(0))


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(reference npz, probe results) for the official conditional fixture, exported by the script."""
    folder = tmp_path_factory.mktemp("official")
    export_dir = folder / "model" / "1"
    result = run_export(f"--network={FIXTURES / 'stylegan2_config_e_cond_tiny.pkl'}",
                        f"--export_dir={export_dir}", "--trunc=0.7")
    assert result.returncode == 0, result.stderr
    assert "N <= 64 (max_batch)" in result.stdout  # the default
    reference = np.load(FIXTURES / "stylegan2_config_e_cond_tiny_reference.npz")
    z, c = reference["z"], reference["c"]
    requests = {
        "default": ("session", "serving_default", {"z": z, "c": c}),
        "psi1": ("session", "serving_default", {"z": z, "c": c, "truncation_psi": 1.0}),
        "mapping": ("session", "mapping", {"z": z, "c": c}),
        "no_c": ("session", "serving_default", {"z": z}),
        "c_rows": ("session", "serving_default", {"z": z, "c": c[:2]}),
        "c_dim": ("session", "serving_default", {"z": z, "c": c[:, :3]}),
    }
    return reference, probe(export_dir, requests, folder)


def test_official_conditional_network_draws_nvidias_images(official):
    reference, results = official
    assert_images_close(results["default"]["images"], reference["img_uint8_psi07"])
    assert_images_close(results["psi1"]["images"], reference["img_uint8_psi1"])
    np.testing.assert_allclose(results["mapping"]["ws"], reference["w_psi07"], atol=1e-4, rtol=1e-4)
    assert results["unregistered"] == []


def test_official_network_matches_library(official):
    reference, results = official
    G = load_network(FIXTURES / "stylegan2_config_e_cond_tiny.pkl")["G_ema"]
    expected = G(reference["z"], reference["c"], truncation_psi=0.7, noise_mode="const")
    assert_images_close(results["default"]["images"], to_uint8(expected))


@pytest.mark.parametrize("name,message", [
    ("no_c", "serving_default_c"),
    ("c_rows", "c must have one row per row of z"),
    ("c_dim", "expected c float32 [N, 4]; received shape] [4 3]"),
])
def test_bad_labels_name_c(official, name, message):
    _, results = official
    assert isinstance(results[name], str) and message in results[name]


def test_bad_flags_are_usage_errors(tmp_path, tiny_discriminator):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "saved_model.pb").write_bytes(b"")
    tiny_discriminator(resolution=8).save(tmp_path / "d.keras")
    pkl = FIXTURES / "stylegan2_config_f_tiny.pkl"
    for args, message in [
        ([f"--network={tmp_path / 'd.keras'}", f"--export_dir={tmp_path / 'a'}"], "not a generator"),
        (["--network=missing.pkl", f"--export_dir={tmp_path / 'a'}"], "does not exist"),
        (["--network=README.md", f"--export_dir={tmp_path / 'a'}"], "not a complete official StyleGAN2 network pickle"),
        ([f"--network={pkl}", f"--export_dir={tmp_path / 'taken'}"], "is not an empty folder"),
        ([f"--network={pkl}", f"--export_dir={tmp_path / 'a'}", "--noise_mode=fresh"], "noise_mode"),
        ([f"--network={pkl}", f"--export_dir={tmp_path / 'a'}", "--max_batch=0"], "--max_batch=0"),
    ]:
        result = run_export(*args)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.keras", "taken"]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch, tiny_generator):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(with_noise_and_w_avg(tiny_generator()), tmp_path / "model" / "1")
    assert list((tmp_path / "model").iterdir()) == []


def test_float16_network_exported_in_float32(tmp_path):
    G = load_network(FIXTURES / "stylegan2_ada_tf_tiny.pkl")["G_ema"]  # float16 blocks
    assert G.synthesis.num_fp16_res > 0
    export_saved_model(G, tmp_path / "1", force_fp32=True)
    reference = np.load(FIXTURES / "stylegan2_ada_tf_tiny_reference.npz")  # NVIDIA's, in float32
    loaded = tf.saved_model.load(str(tmp_path / "1"))  # keep it: it owns the variables
    assert_images_close(loaded.generate(reference["z"], reference["c"])["images"].numpy(),
                        reference["img_uint8_psi1"])


def test_a_second_export_to_the_same_folder_is_refused(tmp_path):
    """One writer per --export_dir (issue 12, item 3): the lock file .1.lock next to it."""
    import socket

    from stylegan2_tf.files import lock_output

    export_dir = tmp_path / "model" / "1"
    with lock_output(export_dir):  # held through another open file: refused like another process
        result = run_export(f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}", f"--export_dir={export_dir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"--export_dir: {export_dir} is in use by pid {os.getpid()} on {socket.gethostname()} "
            f"(lock file {tmp_path / 'model' / '.1.lock'})") in result.stderr
    assert list((tmp_path / "model").iterdir()) == []  # nothing written, the lock file went with its lock
