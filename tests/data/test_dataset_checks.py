"""A dataset is not trusted (issue 12, item 5): what metadata.json claims is checked against the
shards at every start, each record as it is read, and all of it by dataset_tool.py --verify.

Faults are made in copies of a 6-image, 2-shard, 8x8 RGB dataset with 3 classes: shards cut,
emptied, swapped in from another dataset; metadata that lies about channels, labels or
resolution; records with a bad checksum, an undecodable image, another shape or a label out
of range. Each ends as one error naming the file (and the record's index in its shard).
"""

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data import convert, records
from stylegan2_tf.data.convert import DatasetError, convert_dataset
from stylegan2_tf.data.pipeline import BadRecordTracker, make_dataset
from stylegan2_tf.data.records import DatasetFormatError, read_metadata
from stylegan2_tf.data.verify import verify_dataset
from stylegan2_tf.files import FolderInUseError, lock_output

REPO = Path(__file__).resolve().parents[2]
COUNT, SIDE, CLASSES = 6, 8, 3
SHARD0, SHARD1 = "data-00000-of-00002.tfrecord", "data-00001-of-00002.tfrecord"


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def source_images(seed=0, side=SIDE):
    return np.random.RandomState(seed).randint(0, 256, [COUNT, side, side, 3]).astype(np.uint8)


def make(folder, seed=0, side=SIDE):
    source = folder / "src"
    source.mkdir(parents=True)
    for i, image in enumerate(source_images(seed, side)):
        Image.fromarray(image).save(source / f"{i}.png")
    (source / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i % CLASSES]
                                                                for i in range(COUNT)]}))
    return convert_dataset(source, folder / "data", shards=2, progress=False).dest


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """The dataset (read only): image i is record i // 2 of shard i % 2."""
    return make(tmp_path_factory.mktemp("original"))


@pytest.fixture
def dataset(original, tmp_path):
    """A copy of the dataset to damage."""
    return Path(shutil.copytree(original, tmp_path / "data"))


def shard_records(path):
    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def write_shard(path, items):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for item in items:
            writer.write(item)


def edit_metadata(folder, **changes):
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata.update(changes)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return metadata


def as_older_metadata(folder):
    """metadata.json as written before the shard sizes and checksums were recorded."""
    metadata = json.loads((folder / "metadata.json").read_text())
    edit_metadata(folder, shards=[{"file": s["file"], "records": s["records"]} for s in metadata["shards"]])


def replace_record(folder, shard, index, record, older=True):
    """Shard `shard`'s record `index` replaced by `record` (a valid TFRecord, another size)."""
    path = folder / shard
    items = shard_records(path)
    items[index] = record
    write_shard(path, items)
    if older:
        as_older_metadata(folder)
    return path


def flip_in_record(path, index):
    """A bit flipped in the data of record `index` of the shard `path` (its checksum fails)."""
    offset, length = list(records.record_spans(path))[index]
    data = bytearray(path.read_bytes())
    data[offset + length // 2] ^= 0x10
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------
# At start: read_metadata checks the shards against metadata.json (sizes or counts, the
# first record).


def test_an_intact_dataset_and_older_metadata_read(dataset):
    assert read_metadata(dataset)["image_count"] == COUNT
    as_older_metadata(dataset)  # no sizes: the record headers are walked and counted
    assert read_metadata(dataset)["image_count"] == COUNT


def cut_at_record_boundary(folder):
    write_shard(folder / SHARD1, shard_records(folder / SHARD1)[:-1])


def cut_inside_a_record(folder):
    path = folder / SHARD1
    path.write_bytes(path.read_bytes()[:-7])


def empty_shard(folder):
    (folder / SHARD1).write_bytes(b"")


def not_a_tfrecord(folder):
    (folder / SHARD1).write_bytes(b"x" * (folder / SHARD1).stat().st_size)


def swapped_from_another_dataset(folder):
    other = make(folder.parent / "other", seed=1, side=2 * SIDE)
    shutil.copy(other / SHARD0, folder / SHARD0)


CLAIMS = "dataset .*data: metadata.json claims 6 images but "


@pytest.mark.parametrize("damage, older, message", [
    (cut_at_record_boundary, False, CLAIMS + rf"its shards hold 5 records \({SHARD1}: 2, not 3\)$"),
    (cut_at_record_boundary, True, CLAIMS + rf"its shards hold 5 records \({SHARD1}: 2, not 3\)$"),
    (cut_inside_a_record, False, CLAIMS + rf".*{SHARD1} ends inside record 2 \(it needs 7 more bytes: cut "
                                          "short, or not a TFRecord file\\)$"),
    (cut_inside_a_record, True, CLAIMS + f".*{SHARD1} ends inside record 2"),
    (empty_shard, False, CLAIMS + rf"its shards hold 3 records \({SHARD1}: 0, not 3\)$"),
    (empty_shard, True, CLAIMS + rf"its shards hold 3 records \({SHARD1}: 0, not 3\)$"),
    (not_a_tfrecord, True, CLAIMS + f".*{SHARD1}: record 0 \\(at byte 0\\) has no valid TFRecord header"),
    (swapped_from_another_dataset, False, (f"shard .*{SHARD0} is [\\d,]+ bytes, metadata.json says [\\d,]+: its "
                                           "records were replaced or changed")),
    (swapped_from_another_dataset, True, (f"corrupt record 0 of shard .*{SHARD0}: its image is 16x16 with 3 "
                                          "channel\\(s\\), the dataset's are 8x8 with 3 \\(metadata.json\\); "
                                          "metadata.json does not describe this shard")),
])
def test_shards_that_do_not_match_the_metadata_are_refused_at_start(dataset, damage, older, message):
    if older:
        as_older_metadata(dataset)
    damage(dataset)
    with pytest.raises(DatasetFormatError, match=message):
        read_metadata(dataset)
    with pytest.raises(DatasetFormatError, match=message):
        make_dataset(dataset, 2, 0)


@pytest.mark.parametrize("changes, message", [
    ({"channels": 1}, "its image is 8x8 with 3 channel\\(s\\), the dataset's are 8x8 with 1"),
    ({"resolution": 16}, "its image is 8x8 with 3 channel\\(s\\), the dataset's are 16x16 with 3"),
    ({"label_size": 0, "labels": None}, "it has the label 0, the dataset has no labels"),
    ({"labels": [2, 1, 2, 0, 1, 2]}, r"its label 0 differs from metadata.json's 2 for that image"),
])
def test_metadata_that_lies_about_the_images_or_labels_is_refused(dataset, changes, message):
    edit_metadata(dataset, **changes)
    with pytest.raises(DatasetFormatError, match=f"corrupt record 0 of shard .*{SHARD0}: {message}"):
        read_metadata(dataset)


def test_metadata_json_beyond_the_size_limit_is_not_read(dataset, monkeypatch):
    monkeypatch.setattr(records, "MAX_METADATA_BYTES", 100)
    with pytest.raises(DatasetFormatError, match=r"metadata.json is larger than 0 MiB, more than any "
                                                 "dataset's metadata; not reading it"):
        read_metadata(dataset)


def test_a_labels_file_beyond_the_size_limit_is_not_read(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    Image.fromarray(source_images()[0]).save(tmp_path / "src" / "0.png")
    (tmp_path / "labels.json").write_text(json.dumps({"labels": [["0.png", 0]]}) + " " * 200)
    monkeypatch.setattr(convert, "MAX_LABELS_BYTES", 100)
    with pytest.raises(DatasetError, match="labels.json is larger than 0 MiB"):
        convert_dataset(tmp_path / "src", tmp_path / "out", labels=tmp_path / "labels.json", progress=False)
    shutil.copy(tmp_path / "labels.json", tmp_path / "src" / "dataset.json")
    with pytest.raises(DatasetError, match="src/dataset.json is larger than 0 MiB"):
        convert_dataset(tmp_path / "src", tmp_path / "out", progress=False)


# --------------------------------------------------------------------------------------
# While reading: every record's checksum, decoding, shape and label.

def label_out_of_range(folder):
    return replace_record(folder, SHARD1, 1, records.serialize_example(png(source_images()[3]), 7)), (
        r"its label 7 is not a class in \[0, label_size=3\)")


def undecodable(folder):
    return replace_record(folder, SHARD1, 1, records.serialize_example(b"not an image", 0)), (
        r"its image cannot be decoded \(Unknown image file format")


def another_shape(folder):
    image = np.zeros([2 * SIDE, 2 * SIDE, 3], np.uint8)
    return replace_record(folder, SHARD1, 1, records.serialize_example(png(image), 0)), (
        "its image is 16x16 with 3 channel\\(s\\), the dataset's are 8x8 with 3")


def fewer_channels(folder):
    image = np.zeros([SIDE, SIDE], np.uint8)
    return replace_record(folder, SHARD1, 1, records.serialize_example(png(image), 0)), (
        "its image is 8x8 with 1 channel\\(s\\), the dataset's are 8x8 with 3")


def bad_checksum(folder):
    flip_in_record(folder / SHARD1, 1)
    return folder / SHARD1, r"it cannot be read: its checksum fails or the file is cut in it \(corrupted record"


RECORD_FAULTS = [label_out_of_range, undecodable, another_shape, fewer_channels, bad_checksum]


@pytest.mark.parametrize("damage", RECORD_FAULTS)
def test_a_bad_record_is_named_by_its_shard_and_index(dataset, damage):
    shard, why = damage(dataset)  # record 1 of shard 1: image 3
    read_metadata(dataset)  # the cheap checks at start do not read it

    # stop: one pass fails at it, naming the file and the index
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"corrupt record 1 of shard {shard}: it cannot"):
        list(make_dataset(dataset, 2, 0, shuffle_buffer=0, repeat=False))

    # skip: the others, in their order
    images = np.concatenate([batch for batch, _ in make_dataset(
        dataset, 2, 0, shuffle_buffer=0, repeat=False, on_bad_record="skip")])
    kept = [0, 1, 2, 4, 5] if damage is not bad_checksum else [0, 1, 2, 4]  # damage loses the rest
    np.testing.assert_array_equal(np.round((images + 1) * 127.5).astype(np.uint8), source_images()[kept])

    # positions: BadRecordTracker finds it, the reason read from the file
    tracker = BadRecordTracker(dataset)
    found = []
    for _, _, positions in make_dataset(dataset, 2, 0, shuffle_buffer=0, positions=True).take(6):
        found += tracker.found(positions.numpy())  # two passes and more
    lost = [(str(shard), 1)] if damage is not bad_checksum else [(str(shard), 1), (str(shard), 2)]
    assert [(record.path, record.index) for record in found][:2 * len(lost)] == lost * 2  # in each pass
    assert tracker.count == len(found) >= 2 * len(lost)
    assert re.match(why, tracker.why(found[0])), tracker.why(found[0])
    if damage is bad_checksum:
        assert tracker.why(found[1]).startswith("it cannot be read: record 1 before it in this shard is damaged")


def test_the_metrics_name_a_bad_record_in_one_line(dataset):
    from stylegan2_tf.metrics.evaluate import Evaluator

    undecodable(dataset)
    evaluator = Evaluator(dataset, batch_size=2, progress=False)
    with pytest.raises(DatasetFormatError) as raised:
        list(evaluator.real_batches(COUNT))
    message = str(raised.value)
    assert message.startswith(f"corrupt record 1 of shard {dataset / SHARD1}: it cannot be read or decoded")
    assert message.endswith("(scripts/dataset_tool.py --verify checks every record)") and "\n" not in message


def test_the_start_check_decodes_the_first_record(dataset):
    replace_record(dataset, SHARD0, 0, records.serialize_example(b"not an image", 0))
    with pytest.raises(DatasetFormatError, match=f"corrupt record 0 of shard .*{SHARD0}: its image cannot "
                                                 "be decoded"):
        read_metadata(dataset)


# --------------------------------------------------------------------------------------
# dataset_tool.py --verify: everything, checksums included.

def swap_two_records(folder):
    """Records 0 and 1 of shard 0 (images 0 and 2) swapped: sizes and counts hold, checksums and
    labels do not."""
    items = shard_records(folder / SHARD0)
    items[0], items[1] = items[1], items[0]
    write_shard(folder / SHARD0, items)


def test_verify_passes_an_intact_dataset(original):
    result = verify_dataset(original, progress=False)
    assert result.ok and result.records == COUNT and result.problems == []


@pytest.mark.parametrize("damage, problems", [
    (lambda folder: label_out_of_range(folder), [f"{SHARD1}: record 1: its label 7 is not a class"]),
    (lambda folder: undecodable(folder), [f"{SHARD1}: record 1: its image cannot be decoded"]),
    (lambda folder: another_shape(folder), [f"{SHARD1}: record 1: its image is 16x16"]),
    (lambda folder: bad_checksum(folder), [(f"{SHARD1}: record 1: it cannot be read: its checksum fails or "
                                            "the file is cut in it (corrupted record at"),
                                           "; the 1 records after it in this shard cannot be read"]),
    (swap_two_records, [f"{SHARD0}: record 0: its label 2 differs from metadata.json's 0 for that image",
                        f"{SHARD0}: record 1: its label 0 differs from metadata.json's 2 for that image",
                        f"{SHARD0}: the sha256 of its records differs from metadata.json's",
                        ("metadata.json: the sha256 of the records in conversion order differs from its "
                         "checksum")]),
    (cut_at_record_boundary, [f"{SHARD1}: it is ", f"{SHARD1}: it ends after 2 records, metadata.json says 3"]),
])
def test_verify_names_each_problem(dataset, damage, problems):
    damage(dataset)
    result = verify_dataset(dataset, progress=False)
    assert not result.ok
    text = "\n".join(str(problem) for problem in result.problems)
    for problem in problems:
        assert problem in text, text


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / "dataset_tool.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


def test_the_verify_flag_prints_a_summary_or_each_problem(dataset):
    result = run_tool(f"--verify={dataset}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{dataset}: ok: {COUNT} records in 2 shard(s), 8x8 with 3 channel(s), {CLASSES} classes; every "
        "record decodes and fits, counts and sizes and sha256 checksums match")
    label_out_of_range(dataset)
    flip_in_record(dataset / SHARD1, 2)
    result = run_tool(f"--verify={dataset}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{dataset / SHARD1}: record 1: its label 7 is not a class")
    assert lines[1].startswith(f"{dataset / SHARD1}: record 2: it cannot be read: its checksum fails")
    assert lines[-1] == f"{dataset}: 2 problem(s) (5 of {COUNT} records read)"
    assert run_tool(f"--verify={dataset}", f"--source={dataset}").returncode == 2


# --------------------------------------------------------------------------------------
# One conversion per --dest (issue 12, item 3), and the leftovers of a killed one.

def test_a_second_conversion_to_the_same_dest_is_refused(original, tmp_path):
    source = original.parent / "src"
    dest = tmp_path / "out"
    with lock_output(dest):  # held through another open file: refused like another process
        with pytest.raises(FolderInUseError, match=(
                f"^{dest} is in use by pid {os.getpid()} on {socket.gethostname()} "
                f"\\(lock file {tmp_path / '.out.lock'}\\)$")):
            convert_dataset(source, dest, progress=False)
        result = run_tool(f"--source={source}", f"--dest={dest}")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"error: {dest} is in use by pid {os.getpid()} on {socket.gethostname()}" in result.stderr
    assert not dest.exists()
    convert_dataset(source, dest, progress=False)  # released
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the lock file went with its lock


def test_the_leftovers_of_a_killed_conversion_are_removed(original, tmp_path):
    leftovers = [tmp_path / ".out.0123456789ab.partial", tmp_path / ".out.abcdef012345.old"]
    kept = [tmp_path / ".other.0123456789ab.partial", tmp_path / ".out.json.0123456789ab.partial",
            tmp_path / ".out.0123456789ab.json"]
    for path in leftovers + kept:
        path.mkdir()
        (path / "data-00000-of-00001.tfrecord").write_bytes(b"x")
    result = convert_dataset(original.parent / "src", tmp_path / "out", progress=False)
    assert result.removed == leftovers
    assert not any(path.exists() for path in leftovers) and all(path.exists() for path in kept)
