"""load_network and the scripts take every pickle format NVIDIA published, by content."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan2_tf.network_io import load_network

REPO = Path(__file__).resolve().parents[2]
ADA = REPO / "tests" / "fixtures" / "ada_pytorch"
TF1 = REPO / "tests" / "fixtures" / "official"


@pytest.mark.parametrize("path", [ADA / "ada_uncond_skip_resnet.pkl", ADA / "sg3_stylegan2_orig_orig.pkl",
                                  TF1 / "stylegan2_config_f_tiny.pkl"])
def test_load_network_reads_each_pickle_format(path):
    networks = load_network(path)
    assert sorted(networks) == ["D", "G", "G_ema"]
    assert all(networks[name] is not None for name in networks)
    reference = np.load(str(path).replace(".pkl", "_reference.npz"))
    G = networks["G_ema"]
    w = G.mapping(reference["z"], None).numpy()
    np.testing.assert_allclose(w, reference["w_psi1"], atol=1e-4)


@pytest.mark.parametrize("name", ["ada_uncond_skip_resnet", "sg3_stylegan2_orig_orig"])
def test_generate_draws_nvidias_images_from_a_pytorch_pickle(name, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "generate.py"),
                             f"--network={ADA / f'{name}.pkl'}", "--seeds=0-3", "--trunc=0.7",
                             f"--outdir={tmp_path}"], env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    reference = np.load(ADA / f"{name}_reference.npz")
    assert list(reference["seeds"]) == [0, 1, 2, 3]
    for i in range(4):
        image = np.asarray(Image.open(tmp_path / f"seed{i:04d}.png"))
        assert np.abs(image.astype(int) - reference["img_uint8_psi07"][i].astype(int)).max() <= 1


def _script(name, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving the fixture folders, and its base URL; stopped after."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO / "tests" / "fixtures"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_network_by_url_is_downloaded_once_then_read_from_the_cache(served, tmp_path):
    server, base = served
    url = f"{base}/ada_pytorch/ada_uncond_skip_resnet.pkl"
    cache = tmp_path / "cache"
    first = _script("generate.py", f"--network={url}", "--seeds=0", "--trunc=0.7",
                    f"--outdir={tmp_path / 'a'}", f"--cache_dir={cache}")
    assert first.returncode == 0, first.stderr
    assert len(list((cache / "networks").glob("*-ada_uncond_skip_resnet.pkl"))) == 1
    server.shutdown()  # offline from now on
    second = _script("generate.py", f"--network={url}", "--seeds=0", "--trunc=0.7",
                     f"--outdir={tmp_path / 'b'}", f"--cache_dir={cache}")
    assert second.returncode == 0, second.stderr
    reference = np.load(ADA / "ada_uncond_skip_resnet_reference.npz")["img_uint8_psi07"][0]
    for folder in ("a", "b"):
        image = np.asarray(Image.open(tmp_path / folder / "seed0000.png")).astype(int)
        assert np.abs(image - reference.astype(int)).max() <= 1


@pytest.mark.parametrize("source", [ADA / "ada_uncond_skip_resnet.pkl", TF1 / "stylegan2_ada_tf_tiny.pkl"])
def test_convert_any_pickle_to_a_folder_and_back_to_a_tf1_pickle(source, tmp_path):
    folder = tmp_path / "net"
    result = _script("convert.py", f"--source={source}", f"--dest={folder}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["D.keras", "G.keras", "G_ema.keras"]
    result = _script("convert.py", "--to=tf1-pickle", f"--source={folder}", f"--dest={tmp_path / 'back.pkl'}")
    assert result.returncode == 0, result.stderr
    assert "holding G, D and Gs" in result.stdout
    original, back = load_network(folder), load_network(tmp_path / "back.pkl")
    for name in ("G", "D", "G_ema"):
        weights = {w.path: w.numpy() for w in original[name].weights}
        for w in back[name].weights:
            np.testing.assert_allclose(w.numpy(), weights[w.path], rtol=0, atol=2e-7, err_msg=w.path)
    again = _script("convert.py", "--to=tf1-pickle", f"--source={folder}", f"--dest={tmp_path / 'back.pkl'}")
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_fine_tuning_starts_from_a_pytorch_pickle_by_url(served, tmp_path, monkeypatch, rgb_dataset):
    from stylegan2_tf.training.loop import TrainingRun
    from stylegan2_tf.training.setup import RunOptions

    _, base = served
    data = rgb_dataset
    monkeypatch.setenv("STYLEGAN2_CACHE", str(tmp_path / "cache"))
    run = TrainingRun(RunOptions(outdir=str(tmp_path / "run"), data=str(data), kimg=0.004,
                                 kimg_per_tick=0.004, snap=1, batch=4,
                                 resume=f"{base}/ada_pytorch/ada_uncond_skip_resnet.pkl"),
                      log=lambda line: None)
    expected = load_network(ADA / "ada_uncond_skip_resnet.pkl")
    for name in ("G", "D", "G_ema"):
        got = {w.path: w.numpy() for w in getattr(run, name).weights}
        for w in expected[name].weights:
            np.testing.assert_array_equal(got[w.path], w.numpy(), err_msg=f"{name} {w.path}")
    assert run.run()["kimg"] == 0.004
