"""scripts/convert.py, generate.py and style_mixing.py end to end on an official-format fixture."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "official"


def run(script, *args):
    """Runs a script against this checkout's package."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    dest = tmp_path_factory.mktemp("net")
    result = run("convert.py", f"--source={FIXTURES / 'stylegan2_config_f_tiny.pkl'}",
                 f"--dest={dest}", "--force_fp32")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["D.keras", "G.keras", "G_ema.keras"]
    return dest


def test_generate_writes_nvidias_images(converted, tmp_path):
    result = run("generate.py", f"--network={converted}", "--seeds=0-3", "--trunc=0.7",
                 f"--outdir={tmp_path}", "--grid")
    assert result.returncode == 0, result.stderr
    reference = np.load(FIXTURES / "stylegan2_config_f_tiny_reference.npz")["img_uint8_psi07"]
    for i in range(4):
        image = np.asarray(Image.open(tmp_path / f"seed{i:04d}.png"))
        assert np.abs(image.astype(int) - reference[i].astype(int)).max() <= 1
    assert np.asarray(Image.open(tmp_path / "grid.png")).shape == (64, 64, 3)


def test_style_mixing_figure(tmp_path):
    result = run("style_mixing.py", f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}",
                 "--rows=1,2", "--cols=3,4,5", "--styles=0-3", f"--outdir={tmp_path}")
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 32, 4 * 32, 3)
    mix = np.asarray(Image.open(tmp_path / "1-3.png"))
    np.testing.assert_array_equal(grid[32:64, 32:64], mix)
    assert not np.array_equal(mix, grid[32:64, :32])  # differs from its row image


@pytest.mark.parametrize("args,message", [
    (["--network=missing.pkl", "--seeds=0", "--outdir=x"], "does not exist"),
    (["--network=README.md", "--seeds=0", "--outdir=x"], "not a complete official StyleGAN2 network pickle"),
    ([f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}", "--seeds=a-b", "--outdir=x"],
     "--seeds: expected numbers"),
    ([f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}", "--seeds=0", "--outdir=x",
      "--class_idx=2"], "unconditional"),
])
def test_generate_bad_flags(args, message):
    result = run("generate.py", *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_truncation_sweep(tmp_path):
    result = run("truncation_sweep.py", f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}",
                 "--seeds=0-2", "--psis=1,0,0.7", f"--outdir={tmp_path}")
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (3 * 32, 3 * 32, 3)
    cells = grid.reshape(3, 32, 3, 32, 3).transpose(0, 2, 1, 3, 4)  # [seed, psi, H, W, C]
    np.testing.assert_array_equal(cells[0, 1], cells[2, 1])  # psi 0: the average image
    reference = np.load(FIXTURES / "stylegan2_config_f_tiny_reference.npz")
    for seed in range(3):  # psi 1 and 0.7 are NVIDIA's images
        assert np.abs(cells[seed, 0].astype(int) - reference["img_uint8_psi1"][seed]).max() <= 1
        assert np.abs(cells[seed, 2].astype(int) - reference["img_uint8_psi07"][seed]).max() <= 1
    bad = run("truncation_sweep.py", f"--network={FIXTURES / 'stylegan2_config_f_tiny.pkl'}",
              "--psis=1,x", f"--outdir={tmp_path}")
    assert bad.returncode != 0 and "--psis: expected comma-separated numbers" in bad.stderr


@pytest.mark.parametrize("to, dest", [("folder", "net"), ("tf1-pickle", "net.pkl")])
def test_a_second_convert_to_the_same_dest_is_refused(tmp_path, to, dest):
    """One writer per --dest (issue 12, item 3): the lock file .<name>.lock next to it."""
    import socket

    from stylegan2_tf.files import lock_output

    dest = tmp_path / dest
    with lock_output(dest):  # held through another open file: refused like another process
        result = run("convert.py", f"--source={FIXTURES / 'stylegan2_config_f_tiny.pkl'}", f"--dest={dest}",
                     f"--to={to}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"--dest: {dest} is in use by pid {os.getpid()} on {socket.gethostname()} "
            f"(lock file {tmp_path / f'.{dest.name}.lock'})") in result.stderr
    assert list(tmp_path.iterdir()) == []
