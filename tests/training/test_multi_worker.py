"""Two worker processes on localhost train together (MultiWorkerMirroredStrategy, TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from stylegan2_tf.data.builtin import digits_dataset

REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_a_few_steps(tmp_path):
    data = digits_dataset(tmp_path / "data", resolution=16)
    outdir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    command = [sys.executable, str(REPO / "scripts" / "train.py"), f"--data={data}",
               f"--outdir={outdir}", "--kimg=0.016", "--kimg_per_tick=0.008", "--snap=1",
               "--batch=4", "--fmap_base=64", "--fmap_max=16", "--latent_size=16",
               "--mapping_layers=1"]
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CONFIG=json.dumps(config))
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    chief_out = outputs[0][0]
    assert "tick 2" in chief_out and "done at 0.016" in chief_out
    assert "tick" not in outputs[1][0]  # only the chief reports
    log = [json.loads(line) for line in (outdir / "log.jsonl").read_text().splitlines()]
    assert [entry["kimg"] for entry in log] == [0.008, 0.016]
    assert (outdir / "checkpoints" / "checkpoint").exists()
    assert not list(outdir.glob(".checkpoints-worker*"))  # the worker's copies are removed
