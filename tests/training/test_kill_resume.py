"""A run killed with SIGKILL in the middle of a tick resumes from its last snapshot."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stylegan2_tf.data.builtin import digits_dataset

REPO = Path(__file__).resolve().parents[2]


def train_command(data, outdir, kimg):
    return [sys.executable, str(REPO / "scripts" / "train.py"), f"--data={data}",
            f"--outdir={outdir}", f"--kimg={kimg}", "--kimg_per_tick=0.008", "--snap=1",
            "--batch=4", "--fmap_base=64", "--fmap_max=16", "--latent_size=16",
            "--mapping_layers=1"]


def test_sigkill_then_resume(tmp_path):
    data = digits_dataset(tmp_path / "data", resolution=16)
    outdir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(train_command(data, outdir, 10), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = outdir / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    try:
        while not index.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert index.exists(), "no snapshot was written"
        time.sleep(1.0)  # now in the middle of a later tick
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    numbers = [int(p.name.split("-")[1].split(".")[0])
               for p in (outdir / "checkpoints").glob("ckpt-*.index")]
    last = max(numbers, default=0)  # images seen at the last complete snapshot
    assert last >= 8
    target_kimg = (last + 16) / 1000
    result = subprocess.run(train_command(data, outdir, target_kimg), env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resumed from {outdir / 'checkpoints' / f'ckpt-{last}'}" in result.stdout + result.stderr
    assert f"done at {target_kimg:g}" in result.stdout
