"""A run folder keeps its snapshots: a missing or dangling index, a corrupt latest snapshot,
a second process and the leftovers of a killed one neither start the run over nor lose data."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.files import FolderInUseError, lock_folder
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import RunOptions

REPO = Path(__file__).resolve().parents[2]
TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(options, run folder) of a run with the snapshots ckpt-8, ckpt-16 and ckpt-24."""
    root = tmp_path_factory.mktemp("trained")
    data = digits_dataset(root / "data", resolution=16)
    options = RunOptions(outdir=str(root / "run"), data=str(data), kimg=0.024, kimg_per_tick=0.008,
                         snap=1, **TINY)
    TrainingRun(options, log=lambda line: None).run()
    return options, root / "run"


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run: (options of the copy, its folder, its checkpoints folder)."""
    options, source = trained
    outdir = tmp_path / "run"
    shutil.copytree(source, outdir)
    return RunOptions(**{**options.__dict__, "outdir": str(outdir)}), outdir, outdir / "checkpoints"


def _start(options, **changes):
    lines = []
    run = TrainingRun(RunOptions(**{**options.__dict__, **changes}), log=lines.append)
    return run, lines


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["index of the latest", "state file", "dangling state"])
def test_a_missing_or_dangling_index_resumes_from_the_newest_readable_snapshot(run_copy, damage):
    options, _, checkpoints = run_copy
    expected = checkpoints / "ckpt-24"
    if damage == "index of the latest":
        (checkpoints / "ckpt-24.index").unlink()
        expected = checkpoints / "ckpt-16"
    elif damage == "state file":
        (checkpoints / "checkpoint").unlink()
    else:
        (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-999"\n'
                                                'all_model_checkpoint_paths: "ckpt-999"\n')
    run, lines = _start(options, kimg=0.040)
    assert run.restore() and run.kimg() == int(expected.name.split("-")[1]) / 1000
    assert f"resumed from {expected} at {run.kimg():.3f} kimg" in "\n".join(lines)
    assert tf.train.latest_checkpoint(str(checkpoints)) == str(expected)  # the state points there
    if damage == "index of the latest":
        assert (f"skipped the snapshot {checkpoints / 'ckpt-24'}: ckpt-24.index is missing; its files "
                f"are kept in {checkpoints / 'unreadable' / 'ckpt-24'}") in lines
        assert (checkpoints / "unreadable" / "ckpt-24" / "ckpt-24.data-00000-of-00001").is_file()
    assert run.run()["kimg"] == 0.040
    # The manager rotates its three newest; the older intact snapshots were not overwritten.
    assert {p.name for p in checkpoints.glob("ckpt-*.index")} == {"ckpt-24.index", "ckpt-32.index",
                                                                  "ckpt-40.index"}


def test_a_run_folder_without_a_readable_snapshot_is_not_started_over(run_copy):
    options, outdir, checkpoints = run_copy
    for path in checkpoints.glob("ckpt-*.index"):
        path.unlink()
    before = sorted(p.name for p in checkpoints.iterdir())
    with pytest.raises(ValueError, match=(
            f"{checkpoints} holds checkpoint, ckpt-16.data-00000-of-00001, .* but no readable snapshot "
            r"\(ckpt-24: ckpt-24.index is missing; ckpt-16: .*\); not starting the run .* over on top "
            "of them: move .* away to start it again from kimg 0, or use another --outdir")):
        _start(options)
    assert sorted(p.name for p in checkpoints.iterdir()) == before
    lock_folder(outdir).release()  # the refused start released the folder

    env = dict(os.environ, PYTHONPATH=str(REPO))  # train.py: one line, no traceback
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), f"--data={options.data}",
                             f"--outdir={outdir}", "--kimg=0.032", *(f"--{k}={v}" for k, v in TINY.items())],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "but no readable snapshot" in result.stderr


@pytest.mark.parametrize("damage", ["truncated index", "flipped index", "flipped data", "deleted data"])
def test_a_corrupt_latest_snapshot_falls_back_and_is_kept(run_copy, damage):
    options, _, checkpoints = run_copy
    index, data = checkpoints / "ckpt-24.index", checkpoints / "ckpt-24.data-00000-of-00001"
    if damage == "truncated index":
        index.write_bytes(index.read_bytes()[:len(index.read_bytes()) // 2])
    elif damage == "flipped index":
        _flip_a_byte(index)
    elif damage == "flipped data":
        _flip_a_byte(data)
    else:
        data.unlink()
    damaged = {p.name: p.read_bytes() for p in checkpoints.glob("ckpt-24.*")}
    run, lines = _start(options, kimg=0.032)
    assert run.restore() and run.kimg() == 0.016
    aside = checkpoints / "unreadable" / "ckpt-24"
    skipped = [line for line in lines if line.startswith(f"skipped the snapshot {checkpoints / 'ckpt-24'}: ")]
    assert len(skipped) == 1 and skipped[0].endswith(f"; its files are kept in {aside}")
    if damage == "deleted data":
        assert "ckpt-24.data-00000-of-00001 is missing" in skipped[0]
    else:
        assert ": unreadable (" in skipped[0]
    assert any(line.startswith(f"resumed from {checkpoints / 'ckpt-16'} at 0.016 kimg") for line in lines)
    assert run.run()["kimg"] == 0.032
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == damaged  # never deleted nor overwritten
    assert {p.name for p in checkpoints.glob("ckpt-*.index")} == {"ckpt-16.index", "ckpt-24.index",
                                                                  "ckpt-32.index"}
    assert tf.train.latest_checkpoint(str(checkpoints)) == str(checkpoints / "ckpt-32")


def test_a_second_process_on_the_run_folder_is_refused(run_copy):
    options, outdir, checkpoints = run_copy
    script = ("import sys, time; from stylegan2_tf.files import lock_folder; "
              "lock = lock_folder(sys.argv[1]); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(outdir)],
        env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        state = (checkpoints / "checkpoint").read_text()
        with pytest.raises(FolderInUseError, match=(
                f"^{outdir} is in use by pid {holder.pid} on {socket.gethostname()} "
                f"\\(lock file {outdir / '.lock'}\\)$")):
            _start(options, kimg=0.032)
        assert (checkpoints / "checkpoint").read_text() == state
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10  # the kernel dropped the dead holder's lock: the file is stale
    run, _ = _start(options)
    assert run.lock is not None and time.time() < deadline
    run.close()


def test_the_leftovers_of_a_killed_run_are_removed_at_the_next_start(run_copy):
    options, outdir, checkpoints = run_copy
    leftovers = [outdir / "network" / ".G_ema.0123456789ab.keras", outdir / ".log.abcdef012345.jsonl",
                 outdir / ".samples-000000016.0123456789ab.png", outdir / ".networks.0123456789ab.json",
                 checkpoints / "ckpt-32_temp"]
    kept = [outdir / ".mine.0123456789ab.json", outdir / "network" / ".G.keras.bak",
            outdir / "notes.0123456789ab.txt", checkpoints / "ckpt-32.tmp"]
    for path in leftovers + kept:
        if path.name.endswith("_temp"):
            path.mkdir()
            (path / "part-00000-of-00001.index").write_text("x")
        else:
            path.write_text("x")
    run, lines = _start(options)
    run.close()
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in kept)
    assert sorted(lines[:len(leftovers)]) == sorted(
        f"removed {path}, left by a run that was stopped while writing it" for path in leftovers)


def test_a_run_stopped_before_its_first_snapshot_starts_again_from_its_networks(trained, tmp_path):
    options, _ = trained
    options = RunOptions(**{**options.__dict__, "outdir": str(tmp_path / "run")})
    TrainingRun(options, log=lambda line: None).close()  # networks.json, no snapshot
    (tmp_path / "run" / "log.jsonl").write_text('{"tick": 1, "kimg": 0.008}\n')
    run, lines = _start(options)
    assert not run.restore()
    assert (f"no snapshot in {tmp_path / 'run' / 'checkpoints'} yet: starting the run "
            f"{tmp_path / 'run'} again at kimg 0 from its networks.json") in lines
    assert (tmp_path / "run" / "log.jsonl").read_text() == ""
    run.close()


@pytest.mark.parametrize("state", [b"\xff\xfe\x00\x81 not text", b'model_checkpoint_path: "ckpt-24\n', b""])
def test_a_garbage_checkpoint_state_file_is_ignored(run_copy, state):
    """Snapshots are found from their files: a non-UTF-8, cut or empty `checkpoint` state file
    cannot crash a resume (issue 12, item 11); it is written again."""
    options, _, checkpoints = run_copy
    (checkpoints / "checkpoint").write_bytes(state)
    run, lines = _start(options)
    assert run.restore() and run.kimg() == 0.024
    run.close()
    assert f"resumed from {checkpoints / 'ckpt-24'} at 0.024 kimg" in "\n".join(lines)
    assert tf.train.latest_checkpoint(str(checkpoints)) == str(checkpoints / "ckpt-24")


@pytest.mark.parametrize("content, why", [
    (lambda text: text[:len(text) // 2], r"Unterminated string|Expecting"),
    (lambda text: b"\xff\xfe" + text, r"utf-8|codec"),
    (lambda text: b'{"G": 5, "D": []}', r"G does not describe a Generator"),
    (lambda text: b'{"G": {"class_name": "Nope", "config": {}}, "D": {}}', r"Nope|Could not"),
    (lambda text: b"[]", r'expected \{"G": \.\.\., "D": \.\.\.\}'),
])
def test_a_damaged_networks_json_is_one_error_naming_it(run_copy, content, why):
    options, outdir, _ = run_copy
    path = outdir / "networks.json"
    path.write_bytes(content(path.read_bytes()))
    with pytest.raises(ValueError, match=(
            f"^{path} is not a readable networks.json \\(.*({why}).*\\); it keeps the configurations of the "
            f"run's networks: restore it from a copy, or move the run folder {outdir} away to start the run "
            "again$")):
        _start(options)
    lock_folder(outdir).release()  # the refused start released the folder


def test_an_output_lock_goes_with_its_holder_and_is_never_shared(tmp_path, monkeypatch):
    """files.lock_output (dataset_tool, convert.py, export.py): `.<name>.lock` next to the output,
    removed on release; a lock taken on a file its holder removed meanwhile is taken again."""
    from stylegan2_tf import files

    lock = files.lock_output(tmp_path / "out")
    path = tmp_path / ".out.lock"
    assert path.read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    with pytest.raises(FolderInUseError, match=f"^{tmp_path / 'out'} is in use by pid {os.getpid()} "):
        files.lock_output(tmp_path / "out")
    lock.release()
    assert not path.exists()

    flock, calls = files.fcntl.flock, []

    def flock_as_the_holder_leaves(handle, operation):
        calls.append(operation)
        if len(calls) == 1:  # the previous holder removes its file as we open it
            path.unlink()
        return flock(handle, operation)

    path.write_text("pid 1 on elsewhere\n")
    monkeypatch.setattr(files.fcntl, "flock", flock_as_the_holder_leaves)
    lock = files.lock_output(tmp_path / "out")
    assert len(calls) == 2 and path.read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    monkeypatch.undo()
    with pytest.raises(FolderInUseError):
        files.lock_output(tmp_path / "out")
    lock.release()


def test_a_snapshot_written_before_the_augmentation_state_resumes(run_copy):
    """Checkpoints of older versions lack augment_p, ada_signs and ada_r_t: they restore, p from 0."""
    options, _, checkpoints = run_copy
    run, _ = _start(options)
    assert run.restore()
    items = {name: item for name, item in run.trainer.checkpoint_items().items()
             if name not in run.trainer.ada.checkpoint_items()}
    for path in checkpoints.glob("ckpt-24.*"):
        path.unlink()
    older = checkpoints.parent / "older"
    tf.train.CheckpointManager(tf.train.Checkpoint(**items, ticks=run.ticks), str(older), 1).save(24)
    for path in older.glob("ckpt-24.*"):
        path.rename(checkpoints / path.name)
    run.close()  # its lock on the run folder
    assert "augment_p" not in {name.split("/")[0] for name, _ in tf.train.list_variables(str(checkpoints / "ckpt-24"))}
    run, lines = _start(options)
    assert run.restore() and any("resumed from" in line and "ckpt-24" in line for line in lines)
    assert run.kimg() == pytest.approx(0.024) and float(run.trainer.ada.p.numpy()) == 0.0
