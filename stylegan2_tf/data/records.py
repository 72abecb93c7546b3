"""The converted-dataset format, shared by the converter (writes it) and the pipeline (reads it).

A dataset folder holds `data-SSSSS-of-NNNNN.tfrecord` shards and `metadata.json`.
Each record is a tf.train.Example with

    image: bytes, one encoded image (PNG, or a source JPEG kept as its bytes),
           R x R pixels with `channels` channels once decoded
    label: int64, the class index in [0, label_size), or -1 for an unlabelled dataset

Record i (in conversion order) is record i // S of shard i % S, S being the
shard count, so reading the shards round-robin gives the conversion order.

metadata.json lists each shard as {"file", "records", "bytes", "sha256"}: its record
count, its size and the sha256 of its serialized records (in order). "bytes" and
"sha256" are optional: datasets converted before they were written still read (their
record counts are checked instead of sizes). "checksum" is the sha256 of all serialized
records in conversion order.

What a dataset claims is checked at three depths:
  - read_metadata (every start of training or metrics): the metadata's fields and types,
    each shard's size (when a size differs, or none is recorded, the record counts, by
    walking the record headers) and the first record of the first shard (decoded: its
    shape, channels and label against the metadata); a DatasetFormatError names the file
    and what differs;
  - while reading (data/pipeline.py): every record's shape and label, and records that
    cannot be read or decoded, reported as `corrupt record K of shard FILE: why`;
  - verify_dataset (scripts/dataset_tool.py --verify): every record, the counts, the
    per-shard and overall sha256.
"""

import hashlib
import json
import os
import re
import struct
from pathlib import Path

import tensorflow as tf

from stylegan2_tf.networks.layers import MIN_RESOLUTION, is_resolution

FORMAT = "stylegan2_tf.tfrecord"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
MAX_METADATA_BYTES = 64 << 20  # metadata.json lists every file name and label: ~100 bytes per image
NO_LABEL = -1
MAX_LABEL_SIZE = 2**31 - 1  # labels are int32 class indices in training (tf.one_hot depth)
FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=NO_LABEL),
}


class DatasetFormatError(ValueError):
    """A dataset folder whose metadata.json is missing, malformed or does not match its shards."""


class BadRecordError(DatasetFormatError):
    """A record that cannot be used, found while reading: `path` (the shard file), `index` (the
    record's index in that shard) and `reason`; the message is
    "corrupt record <index> of shard <path>: <reason>"."""

    def __init__(self, path, index, reason):
        super().__init__(f"corrupt record {index} of shard {path}: {reason}")
        self.path, self.index, self.reason = str(path), int(index), reason


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


def read_metadata(data_dir, check_shards=True):
    """The validated metadata.json of a converted dataset folder, as a dict.

    Raises FileNotFoundError for a missing folder, DatasetFormatError (a ValueError
    naming the file and the reason) for a folder that is not a complete dataset of
    this format: a metadata.json over MAX_METADATA_BYTES, missing or mistyped fields,
    shard names that are not plain file names in the folder, counts that do not add up,
    labels outside [0, label_size), a label_size beyond int32. With `check_shards`, also
    what is cheap to check against the shards: a shard that is empty, of another size than
    recorded (or, without a recorded size, cut or holding another number of records), and a
    first record whose image or label does not fit the metadata.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset {data_dir} does not exist")
    path = folder / METADATA_FILE
    if not path.is_file():
        raise DatasetFormatError(f"{data_dir} is not a converted dataset: it has no {METADATA_FILE} "
                                 "(convert images with scripts/dataset_tool.py)")
    metadata = _read_json(path)
    _check_metadata(metadata, folder)
    if check_shards:
        _check_shard_files(metadata, folder)
        _check_first_record(metadata, folder)
    return metadata


def _read_json(path):
    """The parsed JSON of the file `path`, at most MAX_METADATA_BYTES; DatasetFormatError naming it."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_METADATA_BYTES + 1)
    except OSError as error:
        raise DatasetFormatError(f"cannot read {path}: {error.strerror or error}") from error
    if len(data) > MAX_METADATA_BYTES:
        raise DatasetFormatError(f"{path} is larger than {MAX_METADATA_BYTES >> 20} MiB, more than "
                                 "any dataset's metadata; not reading it")
    try:
        return json.loads(data.decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise DatasetFormatError(f"{path} is not valid JSON: {str(error)[:200]}") from error


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
        if "bytes" in shard:
            _integer(shard, "bytes", f"{where}: shard {name}", 0)
        digest = shard.get("sha256")
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                       and all(c in "0123456789abcdef" for c in digest)):
            raise DatasetFormatError(f"{where}: shard {name}: sha256 must be 64 hex digits, "
                                     f"got {digest!r:.80}")
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


# --------------------------------------------------------------------------------------
# The TFRecord framing: each record is <length uint64><masked crc32c of length uint32>
# <data><masked crc32c of data uint32>, little-endian.

_HEADER = struct.Struct("<QI")
_FOOTER_BYTES = 4


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data):
    """TFRecord's masked CRC-32C of a few bytes (pure Python: for the 8-byte length headers)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_spans(path):
    """(data offset, length) of each record of the TFRecord file `path`, in order, found by
    reading only the record headers (the data is not read, nor its checksum checked).

    Raises DatasetFormatError naming the file and the record where it stops being a
    TFRecord file: a header whose checksum fails (not a TFRecord file, or damaged) or a
    file cut inside a record.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        offset, index = 0, 0
        while offset < size:
            header = file.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise DatasetFormatError(f"{path} ends inside record {index} (inside its header, at byte "
                                         f"{offset}: cut short, or not a TFRecord file)")
            length, crc = _HEADER.unpack(header)
            if _masked_crc32c(header[:8]) != crc:
                raise DatasetFormatError(f"{path}: record {index} (at byte {offset}) has no valid TFRecord "
                                         "header: the file is damaged or not a TFRecord file")
            end = offset + _HEADER.size + length + _FOOTER_BYTES
            if end > size:
                raise DatasetFormatError(f"{path} ends inside record {index} (it needs {end - size} more "
                                         "bytes: cut short, or not a TFRecord file)")
            yield offset + _HEADER.size, length
            offset = end
            index += 1
            file.seek(offset)


def read_record(path, index):
    """The serialized record `index` of the TFRecord file `path` (headers walked, data not
    checksummed); DatasetFormatError when the file does not reach it."""
    for number, (offset, length) in enumerate(record_spans(path)):
        if number == index:
            with open(path, "rb") as file:
                file.seek(offset)
                return file.read(length)
    raise DatasetFormatError(f"shard {path} has no record {index}")


def record_problem(serialized, resolution, channels, label_size):
    """Why the serialized record cannot be a sample of a dataset of `resolution`, `channels`
    and `label_size` (None: it can): not a tf.train.Example, no image, an image that does not
    decode or has another shape, a label outside [0, label_size) (-1 without labels)."""
    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # noqa: BLE001 (protobuf's DecodeError and its kin)
        return f"not a tf.train.Example ({type(error).__name__})"
    feature = example.features.feature
    images = feature["image"].bytes_list.value if "image" in feature else []
    if len(images) != 1:
        return "it holds no image" if not images else f"it holds {len(images)} images"
    labels = feature["label"].int64_list.value if "label" in feature else [NO_LABEL]
    if len(labels) != 1:
        return f"it holds {len(labels)} labels"
    try:
        image = tf.io.decode_image(images[0], channels=0, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        return f"its image cannot be decoded ({op_error_text(error)})"
    shape = tuple(int(n) for n in image.shape)
    if shape != (resolution, resolution, channels):
        return (f"its image is {shape[1]}x{shape[0]} with {shape[2]} channel(s), the dataset's are "
                f"{resolution}x{resolution} with {channels} ({METADATA_FILE})")
    return label_problem(labels[0], label_size)


def describe_record(path, index, resolution, channels, label_size):
    """Why record `index` of the shard `path` is a bad record of a dataset of `resolution`,
    `channels` and `label_size`, read from the file (every checksum up to it checked)."""
    number = -1
    try:
        for number, data in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            if number == index:
                return (record_problem(data, resolution, channels, label_size)
                        or "it reads and fits now (was the file changed?)")
    except tf.errors.DataLossError as error:
        damaged = number + 1
        why = op_error_text(error)
        if damaged == index:
            return f"it cannot be read: its checksum fails or the file is cut in it ({why})"
        return (f"it cannot be read: record {damaged} before it in this shard is damaged ({why}), and a "
                "TFRecord file cannot be read past a damaged record")
    except tf.errors.OpError as error:
        return f"its shard cannot be read ({type(error).__name__}: {op_error_text(error)})"
    return f"the shard ends before it: it holds {number + 1} records"


def op_error_text(error):
    """The first line of a TensorFlow error's message, without its function and op names."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"\s*\[Op:\w+\]( name:.*)?$", "", text)[:300]


def label_problem(label, label_size):
    """Why `label` cannot be the label of a record of a dataset of `label_size` classes, or None."""
    if label_size == 0 and label != NO_LABEL:
        return f"it has the label {label}, the dataset has no labels ({METADATA_FILE}: label_size 0)"
    if label_size and not 0 <= label < label_size:
        return f"its label {label} is not a class in [0, label_size={label_size}) ({METADATA_FILE})"
    return None


_COUNTED = {}  # (path, size, mtime_ns) -> records: shards walked once per process


def count_records(path):
    """The records of the TFRecord file `path` (record_spans: headers only), remembered per
    file version in this process."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _COUNTED:
        _COUNTED[key] = sum(1 for _ in record_spans(path))
    return _COUNTED[key]


def _check_shard_files(metadata, folder):
    """Each shard against metadata.json: when every size is as recorded, nothing more; else (or
    without recorded sizes) check_record_counts, then a size that differs with the right counts
    is a DatasetFormatError."""
    shards = metadata["shards"]
    sizes = [(folder / shard["file"]).stat().st_size for shard in shards]
    if all(shard.get("bytes") == size for shard, size in zip(shards, sizes)):
        return
    check_record_counts(metadata, folder)
    for shard, size in zip(shards, sizes):
        if "bytes" in shard and size != shard["bytes"]:
            raise DatasetFormatError(
                f"shard {folder / shard['file']} is {size:,} bytes, {METADATA_FILE} says {shard['bytes']:,}: "
                "its records were replaced or changed (scripts/dataset_tool.py --verify checks every record)")


def check_record_counts(metadata, folder):
    """Raises DatasetFormatError, one line naming the dataset `folder`, the claimed and the real
    counts (shard by shard), unless its shards hold the records that metadata.json (read_metadata's
    dict) says; a shard cut inside a record is one too. Reads the record headers only
    (count_records): a few bytes per record, whatever the images' size."""
    folder = Path(folder)
    shards = metadata["shards"]
    claims = f"dataset {folder}: {METADATA_FILE} claims {metadata['image_count']} images but "
    real, wrong = 0, []
    for shard in shards:
        try:
            count = count_records(folder / shard["file"])
        except DatasetFormatError as error:
            raise DatasetFormatError(claims + str(error)) from error
        real += count
        if count != shard["records"]:
            wrong.append(f"{shard['file']}: {count}, not {shard['records']}")
    if wrong:
        more = f"; {len(wrong) - 3} more shards" if len(wrong) > 3 else ""
        raise DatasetFormatError(f"{claims}its shards hold {real} records ({'; '.join(wrong[:3])}{more})")


def _check_first_record(metadata, folder):
    """The first record of the first non-empty shard against the metadata."""
    shards = metadata["shards"]
    number = next((i for i, shard in enumerate(shards) if shard["records"]), None)
    if number is None:
        return
    path = folder / shards[number]["file"]
    data = read_record(path, 0)
    problem = record_problem(data, metadata["resolution"], metadata["channels"], metadata["label_size"])
    if problem is None and metadata.get("labels") is not None:  # record 0 of shard i is image i
        feature = tf.train.Example.FromString(data).features.feature
        label = feature["label"].int64_list.value[0] if "label" in feature else NO_LABEL
        if label != metadata["labels"][number]:
            problem = (f"its label {label} differs from {METADATA_FILE}'s {metadata['labels'][number]} "
                       "for that image (a shard of another dataset?)")
    if problem is not None:
        raise DatasetFormatError(f"{BadRecordError(path, 0, problem)}; {METADATA_FILE} does not "
                                 "describe this shard")
