"""Training meets a dataset that lies or breaks (issue 12, item 5) or a full disk (item 10).

- A record that breaks in the middle of a run stops it with a snapshot and one message naming
  the shard file and the record's index in it (train.py exits 65); the same command stops there
  again; --on_bad_record=skip leaves such records out and counts them (status line, log.jsonl,
  checkpoint), and a run resumed after skipped records trains exactly as an uninterrupted one.
- A bad first batch, or metadata that lies, refuses the start before networks.json is written.
- A full disk while writing a snapshot ends in "no space left on ... while writing snapshot N;
  the run resumes from snapshot M" (train.py exits 74), its partial files removed or set aside.
"""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data import records
from stylegan2_tf.data.convert import convert_dataset
from stylegan2_tf.data.records import BadRecordError, DatasetFormatError
from stylegan2_tf.training import loop
from stylegan2_tf.training.loop import BadRecordStop, NoSpaceStop, TrainingRun
from stylegan2_tf.training.setup import RunOptions

REPO = Path(__file__).resolve().parents[2]
TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}
FLAGS = [f"--{key}={value}" for key, value in TINY.items()]
SHARD1 = "data-00001-of-00002.tfrecord"


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """32 gray 16x16 images in 4 classes, 2 shards (read only)."""
    root = tmp_path_factory.mktemp("original")
    source = root / "src"
    source.mkdir()
    rng = np.random.RandomState(0)
    for i in range(32):
        Image.fromarray(rng.randint(0, 256, [16, 16]).astype(np.uint8)).save(source / f"{i:02d}.png")
    (source / "dataset.json").write_text(json.dumps({"labels": [[f"{i:02d}.png", i % 4] for i in range(32)]}))
    return convert_dataset(source, root / "data", shards=2, progress=False).dest


@pytest.fixture
def damaged(original, tmp_path):
    """A copy whose shard 1 has a bit flipped in record 5: records 5-15 of it cannot be read
    (the file keeps its size, so the start checks pass)."""
    data = Path(shutil.copytree(original, tmp_path / "data"))
    path = data / SHARD1
    offset, length = list(records.record_spans(path))[5]
    content = bytearray(path.read_bytes())
    content[offset + length // 2] ^= 0x01
    path.write_bytes(bytes(content))
    return data


def options_for(data, outdir, **changes):
    return RunOptions(**{"outdir": str(outdir), "data": str(data), "kimg": 0.032, "kimg_per_tick": 0.008,
                         "snap": 1, **TINY, **changes})


def train(options):
    lines = []
    try:
        status = TrainingRun(options, log=lines.append).run()
    except loop.RunStopped as stop:
        return stop, lines
    return status, lines


def log_rows(outdir):
    return [json.loads(line) for line in (Path(outdir) / "log.jsonl").read_text().splitlines()]


STOP = re.compile(r"corrupt record (\d+) of shard (\S+)(?: \(and \d+ more bad record\(s\) just before it in "
                  r"the shuffled stream\))?: (it cannot be read: .*); stopped at ([\d.]+) kimg "
                  r"with the snapshot (\S+); the same command resumes from (ckpt-\d+) \(and stops at this "
                  r"record again\), or use --on_bad_record=skip to leave such records out "
                  r"\(scripts/dataset_tool.py --verify=\S+ lists every bad record\)$")


def test_a_bad_record_stops_with_a_snapshot_and_skip_resumes_exactly(damaged, tmp_path):
    outdir = tmp_path / "run"
    stop, _ = train(options_for(damaged, outdir))
    assert isinstance(stop, BadRecordStop) and stop.exit_code == 65
    match = STOP.fullmatch(str(stop))
    assert match, str(stop)
    index, shard, snapshot = int(match[1]), match[2], match[5]
    assert shard == str(damaged / SHARD1) and index >= 5
    assert match[3].startswith("it cannot be read: its checksum fails" if index == 5 else
                               "it cannot be read: record 5 before it in this shard is damaged")
    assert Path(snapshot).name == match[6] == f"ckpt-{round(float(match[4]) * 1000)}"
    assert Path(f"{snapshot}.index").is_file() and (outdir / "networks.json").is_file()

    again, _ = train(options_for(damaged, outdir))  # the same command stops at the same record
    assert str(again) == str(stop)

    # skip: half way (a snapshot after skipped records), then on to the end
    status, lines = train(options_for(damaged, outdir, on_bad_record="skip", kimg=0.016))
    status, more = train(options_for(damaged, outdir, on_bad_record="skip"))
    lines += more
    assert status["kimg"] == 0.032 and status["bad_records"] >= 11  # every pass loses records 5-15
    skipped = [line for line in lines if line.startswith("skipped corrupt record ")]
    assert skipped and all(re.fullmatch(rf"skipped corrupt record \d+ of shard {damaged / SHARD1}( \(.*\))?: "
                                        "it cannot be read: .*", line) for line in skipped)
    assert all(f" bad_records {row['bad_records']}" in line for row in log_rows(outdir)[-1:]
               for line in lines if line.startswith(f"tick {row['tick']} "))
    assert [row["bad_records"] for row in log_rows(outdir)] == sorted(row["bad_records"]
                                                                      for row in log_rows(outdir))

    straight, _ = train(options_for(damaged, tmp_path / "straight", on_bad_record="skip"))
    assert straight["bad_records"] == status["bad_records"]
    resumed = tf.train.load_checkpoint(str(outdir / "checkpoints" / "ckpt-32"))
    uninterrupted = tf.train.load_checkpoint(str(tmp_path / "straight" / "checkpoints" / "ckpt-32"))
    names = [name for name in resumed.get_variable_to_shape_map() if name.startswith("G_ema/")]
    assert names
    for name in names:
        np.testing.assert_array_equal(resumed.get_tensor(name), uninterrupted.get_tensor(name))


def test_train_py_stops_at_a_bad_record_with_one_line_and_exit_65(damaged, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), f"--data={damaged}",
                             f"--outdir={tmp_path / 'run'}", "--kimg=0.032", "--kimg_per_tick=0.008", *FLAGS],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                            check=False, timeout=600)
    assert result.returncode == 65, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert re.search(rf"^train.py: corrupt record \d+ of shard {damaged / SHARD1}( \(.*\))?: .*; stopped at",
                     result.stderr, re.MULTILINE)


def test_a_bad_first_batch_leaves_no_networks_json(original, tmp_path):
    data = Path(shutil.copytree(original, tmp_path / "data"))
    shard = data / "data-00000-of-00002.tfrecord"
    items = [record.numpy() for record in tf.data.TFRecordDataset(str(shard))]
    items[1] = records.serialize_example(b"not an image", 2)  # image 2, in the first batch
    with tf.io.TFRecordWriter(str(shard)) as writer:
        for item in items:
            writer.write(item)
    metadata = json.loads((data / "metadata.json").read_text())
    metadata["shards"][0]["bytes"] = shard.stat().st_size
    (data / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BadRecordError, match=(
            f"^corrupt record 1 of shard {shard}: its image cannot be decoded \\(Unknown image file format.*\\) "
            r"\(in the first batch; --on_bad_record=skip leaves such records out\)$")):
        TrainingRun(options_for(data, tmp_path / "run"), log=lambda line: None)
    assert not (tmp_path / "run" / "networks.json").exists()

    metadata["resolution"] = 32  # a lying resolution: refused before anything is built
    (data / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DatasetFormatError, match="its image is 16x16 with 1 channel\\(s\\), the dataset's "
                                                 "are 32x32 with 1"):
        TrainingRun(options_for(data, tmp_path / "run"), log=lambda line: None)
    assert not (tmp_path / "run" / "networks.json").exists()


# --------------------------------------------------------------------------------------
# A full disk while writing a snapshot (item 10).

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


def fail_second_checkpoint(monkeypatch, how):
    """CheckpointManager.save fails at ckpt-8 (the second snapshot), as a full disk would."""
    save = tf.train.CheckpointManager.save

    def failing_save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number != 8:
            return save(self, checkpoint_number=checkpoint_number, **kwargs)
        folder = Path(self.directory)
        if how == "inside the checkpoint":  # TF's write-aside folder and the state's temp file left
            (folder / "ckpt-8_temp").mkdir()
            (folder / "ckpt-8_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x" * 100)
            (folder / f"checkpoint.tmp{'0' * 32}").write_text("x")
            raise NO_SPACE
        save(self, checkpoint_number=checkpoint_number, **kwargs)
        data = next(folder.glob("ckpt-8.data-*"))
        data.write_bytes(data.read_bytes()[:10])  # cut: written in part
        raise tf.errors.UnknownError(None, None, f"{data}; No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", failing_save)


def fail_network(monkeypatch, how):
    """save_network fails at the second snapshot after its write-aside file was made."""
    save_network = loop.save_network
    calls = []

    def failing(networks, folder):
        calls.append(1)
        if len(calls) < 2:
            return save_network(networks, folder)
        (Path(folder) / ".G.0123456789ab.keras").write_bytes(b"x")
        raise tf.errors.ResourceExhaustedError(None, None, "write failed: No space left on device")

    monkeypatch.setattr(loop, "save_network", failing)


@pytest.mark.parametrize("how, fail, resumes, partial", [
    ("inside the checkpoint", fail_second_checkpoint, "ckpt-4", ["checkpoints/ckpt-8_temp",
                                                                  f"checkpoints/checkpoint.tmp{'0' * 32}"]),
    ("cutting the checkpoint", fail_second_checkpoint, "ckpt-4", ["checkpoints/ckpt-8.index"]),
    ("in the network folder", fail_network, "ckpt-8", ["network/.G.0123456789ab.keras"]),
])
def test_a_full_disk_during_a_snapshot_ends_in_one_message(original, tmp_path, monkeypatch, how, fail,
                                                           resumes, partial):
    outdir = tmp_path / "run"
    options = options_for(original, outdir, kimg=0.008, kimg_per_tick=0.004)  # snapshots 4 and 8
    fail(monkeypatch, how)
    stop, lines = train(options)
    assert isinstance(stop, NoSpaceStop) and stop.exit_code == 74
    assert re.fullmatch(rf"no space left on .* while writing snapshot 8 in {outdir}; the run resumes from "
                        rf"snapshot {resumes} \({outdir / 'checkpoints' / resumes}\) once there is room",
                        str(stop)), str(stop)
    for path in partial:
        assert not (outdir / path).exists(), path
    if how == "cutting the checkpoint":  # set aside, not deleted
        assert (outdir / "checkpoints" / "unreadable" / "ckpt-8" / "ckpt-8.index").is_file()
        assert any("ckpt-8 was written in part" in line for line in lines)
    monkeypatch.undo()
    lines = []
    run = TrainingRun(options, log=lines.append)
    assert run.restore()
    run.close()
    assert any(line.startswith(f"resumed from {outdir / 'checkpoints' / resumes}") for line in lines)


WRAPPER = """
import errno, runpy, sys
import tensorflow as tf
save = tf.train.CheckpointManager.save
def failing_save(self, checkpoint_number=None, **kwargs):
    if checkpoint_number == 8:
        raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, checkpoint_number=checkpoint_number, **kwargs)
tf.train.CheckpointManager.save = failing_save
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_train_py_reports_a_full_disk_in_one_line_and_exits_74(original, tmp_path):
    outdir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", WRAPPER, str(REPO / "scripts" / "train.py"), f"--data={original}",
                             f"--outdir={outdir}", "--kimg=0.008", "--kimg_per_tick=0.004", "--snap=1", *FLAGS],
                            env=dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'scripts'}"),
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 74, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"train.py: no space left on {loop.describe_device(outdir).split(',')[0]}"
        + result.stderr.strip().splitlines()[-1].split(loop.describe_device(outdir).split(",")[0])[1])
    assert re.search(rf"while writing snapshot 8 in {outdir}; the run resumes from snapshot ckpt-4 ",
                     result.stderr)
