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

from stylegan2_tf.networks.layers import MIN_RESOLUTION, is_resolution

FORMAT = "stylegan2_tf.tfrecord"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
NO_LABEL = -1
MAX_LABEL_SIZE = 2**31 - 1  # labels are int32 class indices in training (tf.one_hot depth)
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
}


class DatasetFormatError(ValueError):
    """A dataset folder whose metadata.json is missing, malformed or does not match its shards."""


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

    Raises FileNotFoundError for a missing folder, DatasetFormatError (a ValueError
    naming the file and the reason) for a folder that is not a complete dataset of
    this format: missing or mistyped fields, shard names that are not plain file
    names in the folder, counts that do not add up, labels outside [0, label_size),
    a label_size beyond int32.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset {data_dir} does not exist")
    path = folder / METADATA_FILE
    if not path.is_file():
        raise DatasetFormatError(f"{data_dir} is not a converted dataset: it has no {METADATA_FILE} "
                                 "(convert images with scripts/dataset_tool.py)")
    try:
        metadata = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise DatasetFormatError(f"{path} is not valid JSON: {str(error)[:200]}") from error
    _check_metadata(metadata, folder)
    return metadata


def _check_metadata(metadata, folder):
    """Raises DatasetFormatError unless `metadata` describes the shards present in `folder`."""
    where = f"{folder}/{METADATA_FILE}"
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise DatasetFormatError(f"{where} does not describe a {FORMAT} dataset")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(f"{folder}: format version {metadata.get('format_version')!r} is not "
                                 f"supported (expected {FORMAT_VERSION})")
    for key in ("image_count", "resolution", "channels", "label_size", "shards"):
        if key not in metadata:
            raise DatasetFormatError(f"{where} lacks {key!r}")
    image_count = _integer(metadata, "image_count", where, 1)
    resolution = _integer(metadata, "resolution", where, MIN_RESOLUTION)
    if not is_resolution(resolution):
        raise DatasetFormatError(f"{where}: resolution must be a power of two >= {MIN_RESOLUTION}, "
                                 f"got {resolution}")
    if _integer(metadata, "channels", where, 1, 3) == 2:
        raise DatasetFormatError(f"{where}: channels must be 1 or 3, got 2")
    label_size = _integer(metadata, "label_size", where, 0, MAX_LABEL_SIZE)
    _check_labels(metadata.get("labels"), image_count, label_size, where)
    _check_shards(metadata["shards"], image_count, folder, where)


def _check_labels(labels, image_count, label_size, where):
    """The optional per-image class list: null, or image_count ints in [0, label_size)."""
    if labels is None:
        return
    if not label_size or not isinstance(labels, list) or len(labels) != image_count:
        raise DatasetFormatError(f"{where}: labels must be null or a list of {image_count} classes in "
                                 f"[0, label_size={label_size})")
    bad = next((label for label in labels if not _is_int(label) or not 0 <= label < label_size), None)
    if bad is not None:
        raise DatasetFormatError(f"{where}: label {bad!r:.40} is not a class in [0, label_size={label_size})")


def _check_shards(shards, image_count, folder, where):
    """Shards: plain file names inside `folder`, each listed once and present, records adding up."""
    if not isinstance(shards, list) or not shards:
        raise DatasetFormatError(f"{where}: shards must be a non-empty list of "
                                 '{"file": name, "records": count}')
    names = set()
    for shard in shards:
        name = shard.get("file") if isinstance(shard, dict) else None
        if not isinstance(name, str):
            raise DatasetFormatError(f"{where}: each shard must be "
                                     f'{{"file": name, "records": count}}, got {shard!r:.100}')
        if not _is_plain_name(name):
            raise DatasetFormatError(f"{where}: shard {name!r:.100} is not a file name inside the "
                                     "dataset folder (no folders, no absolute paths)")
        if name in names:
            raise DatasetFormatError(f"{where}: shard {name} is listed twice")
        names.add(name)
        _integer(shard, "records", f"{where}: shard {name}", 0)
    if sum(shard["records"] for shard in shards) != image_count:
        raise DatasetFormatError(f"{folder}: the shard record counts do not add up to image_count")
    for shard in shards:
        if not (folder / shard["file"]).is_file():
            raise DatasetFormatError(f"{folder} is incomplete: shard {shard['file']} is missing")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(mapping, key, where, minimum, maximum=None):
    """mapping[key], which must be an int in [minimum, maximum]; DatasetFormatError naming `where`."""
    value = mapping.get(key)
    if not _is_int(value):
        raise DatasetFormatError(f"{where}: {key} must be an integer, got {value!r:.40} "
                                 f"({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise DatasetFormatError(f"{where}: {key} must be {bounds}, got {value}")
    return value


def _is_plain_name(name):
    """Whether `name` is a file name without a folder part ('data-00000-of-00001.tfrecord', not
    '../x', '/etc/passwd' or 'a/b')."""
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
