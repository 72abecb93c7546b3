"""The evaluator checks the records the shards really hold against metadata.json's counts."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data.convert import convert_dataset
from stylegan2_tf.data.records import (
    METADATA_FILE,
    DatasetFormatError,
    check_record_counts,
    count_records,
    serialize_example,
)
from stylegan2_tf.metrics import evaluate


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A dataset of 7 random 8x8 RGB images in 3 shards (3, 2, 2 records; read only)."""
    source = tmp_path_factory.mktemp("sharded_source")
    rng = np.random.default_rng(1)
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(source / f"{i}.png")
    return convert_dataset(source, tmp_path_factory.mktemp("sharded") / "data", shards=3,
                           progress=False).dest


def copy_with_metadata(dataset, tmp_path, change=None):
    """A copy of `dataset` whose metadata.json `change(metadata)` edits; returns (folder, metadata)."""
    folder = tmp_path / "lying"
    shutil.copytree(dataset, folder)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    if change:
        change(metadata)
        (folder / METADATA_FILE).write_text(json.dumps(metadata))
    return folder, metadata


def test_records_are_counted_as_tensorflow_reads_them(sharded, rgb_dataset):
    for dataset in (sharded, rgb_dataset):
        metadata = json.loads((dataset / METADATA_FILE).read_text())
        for shard in metadata["shards"]:
            path = str(dataset / shard["file"])
            read = int(tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1))
            assert count_records(path) == read == shard["records"]
    assert [s["records"] for s in json.loads((sharded / METADATA_FILE).read_text())["shards"]] == [
        3, 2, 2]


def test_an_empty_shard_holds_no_records(tmp_path):
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert count_records(tmp_path / "empty.tfrecord") == 0


def claim_more(metadata):
    metadata["image_count"] += 1
    metadata["shards"][0]["records"] += 1


def claim_fewer(metadata):
    metadata["image_count"] -= 2
    metadata["shards"][-1]["records"] -= 2


def test_metadata_claiming_other_counts_stops_the_evaluator(rgb_dataset, tmp_path):
    evaluate.Evaluator(rgb_dataset, progress=False)  # the truth passes
    folder, _ = copy_with_metadata(rgb_dataset, tmp_path, claim_more)
    with pytest.raises(DatasetFormatError) as raised:
        evaluate.Evaluator(folder, progress=False)
    message = str(raised.value)
    assert message == (f"dataset {folder}: metadata.json claims 9 images but its shards hold 8 "
                       "records (data-00000-of-00001.tfrecord: 8, not 9)")


def test_counts_are_checked_shard_by_shard(sharded, tmp_path):
    def move_one(metadata):  # the total stays right, the shards do not
        metadata["shards"][0]["records"] -= 1
        metadata["shards"][2]["records"] += 1

    folder, _ = copy_with_metadata(sharded, tmp_path, move_one)
    with pytest.raises(DatasetFormatError, match=r"claims 7 images but its shards hold 7 records "
                       r"\(data-00000-of-00003.tfrecord: 3, not 2; "
                       r"data-00002-of-00003.tfrecord: 2, not 3\)$"):
        evaluate.Evaluator(folder, progress=False)
    shutil.rmtree(folder)
    folder, metadata = copy_with_metadata(sharded, tmp_path, claim_fewer)
    with pytest.raises(DatasetFormatError, match="claims 5 images but its shards hold 7 records"):
        check_record_counts(metadata, folder)


def test_a_shard_with_a_record_more_or_cut_short(sharded, tmp_path):
    folder, metadata = copy_with_metadata(sharded, tmp_path)
    shard = folder / metadata["shards"][1]["file"]
    original = shard.read_bytes()
    with tf.io.TFRecordWriter(str(tmp_path / "one.tfrecord")) as writer:
        writer.write(serialize_example(b"not an image", -1))
    shard.write_bytes(original + (tmp_path / "one.tfrecord").read_bytes())
    with pytest.raises(DatasetFormatError, match=r"shards hold 8 records \(data-00001-of-00003.tfrecord: "
                       r"3, not 2\)"):
        evaluate.Evaluator(folder, progress=False)
    for cut in (1, 12, len(original) // 2 + 3):
        shard.write_bytes(original[:-cut])
        with pytest.raises(DatasetFormatError) as raised:
            evaluate.Evaluator(folder, progress=False)
        assert str(raised.value).startswith(f"dataset {folder}: metadata.json claims 7 images but ")
        assert f"{shard} ends inside record" in str(raised.value)
        assert "\n" not in str(raised.value)
