"""Hostile inputs to the scripts: each gets a usage error naming the flag, never a traceback,
and leaves no partial output behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.network_io import save_network

REPO = Path(__file__).resolve().parents[2]
PICKLE = REPO / "tests" / "fixtures" / "official" / "stylegan2_config_f_tiny.pkl"


def command(script, *args):
    return [sys.executable, str(REPO / "scripts" / script), *map(str, args)]


def run(script, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(command(script, *args), cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)


def assert_usage_error(result, message):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr, result.stderr[-1000:]


@pytest.fixture(scope="module")
def network_size():
    """Grayscale 16x16 images, as the digits."""
    return {"resolution": 16, "channels": 1}


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_generator, tiny_discriminator):
    """A tiny generator folder, a discriminator .keras, a truncated .keras, a file, digits at 16 px."""
    root = tmp_path_factory.mktemp("hostile")
    G = tiny_generator()
    save_network({"G_ema": G}, root / "net")
    D = tiny_discriminator()
    D(tf.zeros([1, 16, 16, 1]))
    D.save(root / "D.keras")
    data = (root / "net" / "G_ema.keras").read_bytes()
    (root / "truncated.keras").write_bytes(data[:len(data) // 2])
    (root / "a_file").write_text("not a folder")
    return {"root": root, "net": root / "net", "D": root / "D.keras",
            "truncated": root / "truncated.keras", "file": root / "a_file",
            "data": digits_dataset(root / "data", resolution=16)}


@pytest.mark.parametrize("case", ["discriminator", "truncated", "outdir_file", "nan", "huge_seeds"])
def test_generate(files, case):
    net, outdir = files["net"], files["root"] / "out"
    args, message = {
        "discriminator": ([f"--network={files['D']}"], "holds a Discriminator, not a generator"),
        "truncated": ([f"--network={files['truncated']}"], "is not a .keras file"),
        "outdir_file": ([f"--network={net}", f"--outdir={files['file']}"], "--outdir: "),
        "nan": ([f"--network={net}", "--trunc=nan"], "--trunc=nan: expected a finite number"),
        "huge_seeds": ([f"--network={net}", "--seeds=0-99999999999"], "--seeds: 99999999999 is larger"),
    }[case]
    defaults = {"--network": net, "--seeds": "0", "--outdir": outdir}
    given = {arg.split("=")[0] for arg in args}
    args += [f"{k}={v}" for k, v in defaults.items() if k not in given]
    assert_usage_error(run("generate.py", *args), message)


def test_convert_refuses_to_mix_networks(files):
    before = (files["net"] / "G_ema.keras").read_bytes()
    result = run("convert.py", f"--source={PICKLE}", f"--dest={files['net']}")
    assert_usage_error(result, "--dest: ")
    assert "--overwrite" in result.stderr
    assert (files["net"] / "G_ema.keras").read_bytes() == before
    assert sorted(p.name for p in files["net"].iterdir()) == ["G_ema.keras"]


def test_export_dir_below_a_file(files):
    result = run("export.py", f"--network={files['net']}", f"--export_dir={files['file']}/1")
    assert_usage_error(result, "--export_dir: ")


def test_export_sigterm_leaves_nothing_aside(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(command("export.py", f"--network={PICKLE}", f"--export_dir={tmp_path}/1"),
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".1.*.partial")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the export ended before it was interrupted"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["swd_larger_than_dataset", "output_is_a_folder", "cache_is_a_file"])
def test_metrics(files, case):
    args, message = {
        "swd_larger_than_dataset": (["--metrics=swd2k"], "swd2k needs at least 2000 dataset images"),
        "output_is_a_folder": (["--metrics=swd8", f"--output={files['root']}"], "--output: "),
        "cache_is_a_file": (["--metrics=swd8", f"--cache_dir={files['file']}"],
                            "is not a folder"),
    }[case]
    result = run("metrics.py", f"--network={files['net']}", f"--data={files['data']}", *args)
    assert_usage_error(result, message)
    assert result.stdout == ""  # failed before measuring anything


def test_train_checks_metrics_before_training(files, tmp_path):
    result = run("train.py", f"--outdir={tmp_path / 'run'}", f"--data={files['data']}",
                 "--metrics=swd2k", "--kimg=0.008", "--kimg_per_tick=0.004", "--fmap_base=64",
                 "--fmap_max=16", "--latent_size=16", "--mapping_layers=1", "--batch=4")
    assert_usage_error(result, "swd2k needs at least 2000 dataset images")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_dataset_tool_binary_labels(tmp_path):
    (tmp_path / "src").mkdir()
    Image.fromarray(np.zeros([16, 16], np.uint8)).save(tmp_path / "src" / "0.png")
    (tmp_path / "labels.json").write_bytes(bytes(range(128, 256)))
    result = run("dataset_tool.py", f"--source={tmp_path / 'src'}", f"--dest={tmp_path / 'dest'}",
                 f"--labels={tmp_path / 'labels.json'}")
    assert_usage_error(result, "cannot read labels")
    assert not (tmp_path / "dest").exists()
