"""The training loop end to end on a tiny network: ticks, logs, snapshots, samples, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.network_io import load_network
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import RunOptions

REPO = Path(__file__).resolve().parents[2]
TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}


def test_train_snapshot_and_resume(tmp_path):
    data = digits_dataset(tmp_path / "data", resolution=16)
    lines = []
    options = RunOptions(outdir=str(tmp_path / "run"), data=str(data), kimg=0.016,
                         kimg_per_tick=0.008, snap=1, **TINY)
    status = TrainingRun(options, log=lines.append).run()
    assert status["kimg"] == 0.016 and status["skipped_steps"] == 0
    run = tmp_path / "run"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [entry["tick"] for entry in log] == [1, 2]
    assert all(np.isfinite(v) for entry in log for v in entry["losses"].values())
    assert any(line.startswith("tick 2") for line in lines)
    grid = np.asarray(Image.open(run / "samples-000000016.png"))
    assert grid.shape == (64, 64) and grid.std() > 0
    networks = load_network(run / "network")
    assert networks["G_ema"].img_resolution == 16 and networks["D"] is not None

    resumed = TrainingRun(RunOptions(**{**options.__dict__, "kimg": 0.024}), log=lines.append)
    assert resumed.restore() and resumed.kimg() == 0.016
    weights = [w.numpy() for w in resumed.G.weights]
    np.testing.assert_array_equal(weights[0], networks["G"].weights[0].numpy())
    assert resumed.run()["kimg"] == 0.024


def test_train_script_usage_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"),
                             f"--outdir={tmp_path}", f"--data={tmp_path / 'nothing'}"],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "nothing" in result.stderr


def test_fine_tune_an_official_pickle_and_resume_from_another_run(tmp_path, rgb_dataset):

    data = rgb_dataset
    pickle = REPO / "tests" / "fixtures" / "official" / "stylegan2_config_f_tiny.pkl"
    options = RunOptions(outdir=str(tmp_path / "a"), data=str(data), kimg=0.008,
                         kimg_per_tick=0.004, snap=1, batch=4, resume=str(pickle))
    run = TrainingRun(options, log=lambda line: None)
    assert run.G_ema.z_dim == 32 and run.D.b4.mbstd.group_size == 4
    assert run.run()["kimg"] == 0.008
    later = RunOptions(**{**options.__dict__, "outdir": str(tmp_path / "b"), "kimg": 0.012,
                          "resume": str(tmp_path / "a" / "checkpoints")})
    run_b = TrainingRun(later, log=lambda line: None)
    assert run_b.restore() and run_b.kimg() == 0.008
