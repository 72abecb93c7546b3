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
