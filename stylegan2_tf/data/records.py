"""The converted-dataset format, shared by the converter (writes it) and the pipeline (reads it).

A dataset folder holds `data-SSSSS-of-NNNNN.tfrecord` shards and `metadata.json`.
Each record is a tf.train.Example with

    image: bytes, one encoded image (PNG, or a source JPEG kept as its bytes),
           R x R pixels with `channels` channels once decoded
    label: int64, the class index in [0, label_size), or -1 for an unlabelled dataset

Record i (in conversion order) is record i // S of shard i % S, S being the
shard count, so reading the shards round-robin gives the conversion order.
"""

import hashlib
import json
from pathlib import Path

import tensorflow as tf

FORMAT = "stylegan2_tf.tfrecord"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
NO_LABEL = -1
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
}


def shard_name(index, count):
    """Shard file name: shard_name(0, 4) -> 'data-00000-of-00004.tfrecord'."""
    return f"data-{index:05d}-of-{count:05d}.tfrecord"


def serialize_example(image_bytes, label):
    """One record: encoded image bytes and an int class label (NO_LABEL for none)."""
    return tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    })).SerializeToString()


def new_checksum():
    """The running checksum of a dataset: sha256 over its serialized records, in record order."""
    return hashlib.sha256()


def read_metadata(data_dir):
    """The validated metadata.json of a converted dataset folder, as a dict.

    Raises FileNotFoundError for a missing folder, ValueError (with the reason) for
    a folder that is not a complete dataset of this format.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset {data_dir} does not exist")
    path = folder / METADATA_FILE
    if not path.is_file():
        raise ValueError(f"{data_dir} is not a converted dataset: it has no {METADATA_FILE} "
                         "(convert images with scripts/dataset_tool.py)")
    try:
        metadata = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    _check_metadata(metadata, folder)
    return metadata


def _check_metadata(metadata, folder):
    """Raises ValueError unless `metadata` describes the shards present in `folder`."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{folder}/{METADATA_FILE} does not describe a {FORMAT} dataset")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{folder}: format version {metadata.get('format_version')} is not "
                         f"supported (expected {FORMAT_VERSION})")
    for key in ("image_count", "resolution", "channels", "label_size", "shards"):
        if key not in metadata:
            raise ValueError(f"{folder}/{METADATA_FILE} lacks {key!r}")
    if metadata["channels"] not in (1, 3):
        raise ValueError(f"{folder}: channels must be 1 or 3, got {metadata['channels']}")
    shards = metadata["shards"]
    if not shards or sum(shard["records"] for shard in shards) != metadata["image_count"]:
        raise ValueError(f"{folder}: the shard record counts do not add up to image_count")
    for shard in shards:
        if not (folder / shard["file"]).is_file():
            raise ValueError(f"{folder} is incomplete: shard {shard['file']} is missing")
