"""What a user meets when a run stops and starts again: Ctrl-C / SIGTERM write a snapshot,
tick numbers and logs continue, and a restart that asks for other networks or gives
another dataset is refused with the differences."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import RunOptions

REPO = Path(__file__).resolve().parents[2]
SIZE_FLAGS = ["--batch=4", "--fmap_base=64", "--fmap_max=16", "--latent_size=16", "--mapping_layers=1"]
TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}
ENV = dict(os.environ, PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return digits_dataset(tmp_path_factory.mktemp("data"), resolution=16)


def train(data, outdir, *flags):
    return [sys.executable, "-u", str(REPO / "scripts" / "train.py"), f"--data={data}",
            f"--outdir={outdir}", *flags]


def log_rows(outdir):
    return [json.loads(line) for line in (Path(outdir) / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_writes_a_snapshot_and_the_rerun_continues(digits, tmp_path, signum, code):
    outdir = tmp_path / "run"
    process = subprocess.Popen(train(digits, outdir, "--kimg=100", "--kimg_per_tick=0.008",
                                     "--snap=1000", *SIZE_FLAGS),
                               env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        lines = []
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("tick 2 "):
                break
        assert any(line.startswith("tick 2 ") for line in lines), "".join(lines) + process.stderr.read()
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err[-2000:]
    assert "Traceback" not in err
    stopped = [line for line in out.splitlines() if line.startswith("stopped at ")]
    assert len(stopped) == 1 and "the same command resumes from" in stopped[0], out
    kimg = float(stopped[0].split()[2])
    checkpoint = outdir / "checkpoints" / f"ckpt-{round(kimg * 1000)}.index"
    assert kimg >= 0.016 and checkpoint.is_file()
    rows = log_rows(outdir)
    assert rows[-1]["kimg"] == kimg and [row["tick"] for row in rows] == list(range(1, len(rows) + 1))
    if signum == signal.SIGTERM:
        return
    rerun = subprocess.run(train(digits, outdir, f"--kimg={kimg + 0.016:.3f}", "--kimg_per_tick=0.008",
                                 "--snap=1000", *SIZE_FLAGS),
                           env=ENV, capture_output=True, text=True, check=False, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"at {kimg:.3f} kimg, tick {len(rows)}" in rerun.stdout
    ticks = [row["tick"] for row in log_rows(outdir)]
    assert ticks == list(range(1, len(rows) + 3))


def test_resume_drops_log_rows_after_the_snapshot(digits, tmp_path):
    outdir = tmp_path / "run"
    options = RunOptions(outdir=str(outdir), data=str(digits), kimg=0.024, kimg_per_tick=0.008,
                         snap=2, **TINY)
    TrainingRun(options, log=lambda line: None).run()  # snapshots at 16 and 24 images
    assert [row["kimg"] for row in log_rows(outdir)] == [0.008, 0.016, 0.024]
    (outdir / "metric-fake.jsonl").write_text(json.dumps({"kimg": 0.016}) + "\n"
                                              + json.dumps({"kimg": 0.024}) + "\n")
    for path in (outdir / "checkpoints").glob("ckpt-24.*"):  # as if killed before snapshot 24
        path.unlink()
    index = outdir / "checkpoints" / "checkpoint"
    index.write_text(index.read_text().replace("ckpt-24", "ckpt-16"))
    lines = []
    run = TrainingRun(RunOptions(**{**options.__dict__, "kimg": 0.032}), log=lines.append)
    run.run()
    assert any("dropped 1 rows after 0.016 kimg" in line for line in lines)
    rows = log_rows(outdir)
    assert [row["tick"] for row in rows] == [1, 2, 3, 4]
    assert [row["kimg"] for row in rows] == [0.008, 0.016, 0.024, 0.032]
    assert (outdir / "metric-fake.jsonl").read_text().splitlines() == [json.dumps({"kimg": 0.016})]


@pytest.fixture(scope="module")
def existing_run(digits, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("existing") / "run"
    TrainingRun(RunOptions(outdir=str(outdir), data=str(digits), kimg=0.004, kimg_per_tick=0.004,
                           snap=1, **TINY), log=lambda line: None).run()
    return outdir


def test_restart_with_other_size_flags_is_refused(digits, existing_run):
    flags = ["--kimg=1", "--batch=4", "--fmap_base=128", "--fmap_max=16", "--latent_size=32",
             "--mapping_layers=1"]
    result = subprocess.run(train(digits, existing_run, *flags), env=ENV, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()
    assert len(message) <= 3, result.stderr
    assert (f"the run {existing_run} holds networks with other settings: "
            "fmap_base is 64 in the run, --fmap_base asks for 128; "
            "latent_size is 16 in the run, --latent_size asks for 32. ") in result.stderr
    assert "another --outdir" in result.stderr
    before = log_rows(existing_run)
    same = subprocess.run(train(digits, existing_run, "--kimg=0.004", *SIZE_FLAGS), env=ENV,
                          capture_output=True, text=True, check=False, timeout=300)
    assert same.returncode == 0, same.stderr[-2000:]  # the same flags continue the run
    assert log_rows(existing_run) == before


def test_restart_on_another_dataset_is_refused(existing_run, rgb_dataset):
    other = rgb_dataset
    result = subprocess.run(train(other, existing_run, "--kimg=1"), env=ENV, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "\x1b[" not in result.stderr
    assert (f"the dataset {other} holds 32x32 RGB images without labels, but the run "
            f"{existing_run} has networks for 16x16 grayscale images with 10 classes") in result.stderr
