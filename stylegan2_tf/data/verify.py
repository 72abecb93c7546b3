"""The full check of a converted dataset (scripts/dataset_tool.py --verify DIR).

Reads every record of every shard, in conversion order (records.py), and checks:
  - metadata.json itself (records.read_metadata without the shard checks);
  - each shard's size against its recorded "bytes", its record count against "records";
  - every record: readable (TFRecord checksums), a tf.train.Example whose image decodes
    to the dataset's resolution and channels, a label in [0, label_size) (-1 without
    labels) equal to metadata.json's "labels" entry of that image;
  - the sha256 of each shard's records ("sha256") and of all records in conversion
    order ("checksum").
Problems are collected, each naming the file and, for a record, its index in its shard;
nothing stops at the first. A shard cannot be read past a damaged record (the TFRecord
stream loses its place), so the records after one are reported as unchecked.
"""

import concurrent.futures
import dataclasses
import hashlib
import os
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from stylegan2_tf.data import records

CHUNK = 256  # records decoded together by the worker threads


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem: the file, the record's index in it (None: the file as a whole), what is wrong."""

    file: str
    index: int | None
    message: str

    def __str__(self):
        return f"{self.file}: {'' if self.index is None else f'record {self.index}: '}{self.message}"


@dataclasses.dataclass
class Verification:
    """What verify_dataset found: the metadata (None when unreadable), the records read and
    checked, the problems (empty: the dataset is sound)."""

    data_dir: str
    metadata: dict | None = None
    records: int = 0
    problems: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems


def verify_dataset(data_dir, progress=True, workers=None):
    """Checks every record of the dataset folder `data_dir` (see the module's docstring);
    returns a Verification. Raises FileNotFoundError for a missing folder."""
    folder = Path(data_dir)
    result = Verification(str(data_dir))
    try:
        metadata = records.read_metadata(folder, check_shards=False)
    except records.DatasetFormatError as error:
        result.problems.append(Problem(str(folder / records.METADATA_FILE), None, str(error)))
        return result
    result.metadata = metadata
    shards = metadata["shards"]
    paths = [folder / shard["file"] for shard in shards]
    for shard, path in zip(shards, paths):
        size = path.stat().st_size
        if "bytes" in shard and size != shard["bytes"]:
            result.problems.append(Problem(str(path), None, f"it is {size:,} bytes, {records.METADATA_FILE} "
                                                            f"says {shard['bytes']:,}"))
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, \
            tqdm(total=metadata["image_count"], desc="verifying", unit="rec", disable=not progress) as bar:
        complete = _read_all(paths, shards, metadata, pool, bar, result)
    if complete:
        _check_checksums(folder, paths, shards, metadata, complete, result)
    result.problems.sort(key=lambda p: (p.file, -1 if p.index is None else p.index))
    return result


def _read_all(paths, shards, metadata, pool, bar, result):
    """Reads the shards round-robin (conversion order), checking each record in `pool`;
    returns (the overall sha256, [each shard's sha256]) when every record was read, else None."""
    count = len(paths)
    readers = [iter(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()) for path in paths]
    expected = [shard["records"] for shard in shards]
    alive = [True] * count
    overall, per_shard = hashlib.sha256(), [hashlib.sha256() for _ in paths]
    complete = True
    chunk = []
    for index in range(max(expected, default=0)):
        for number in range(count):
            if not alive[number] or index >= expected[number]:
                continue
            data = _next_record(readers[number], paths[number], index, expected[number], result)
            if data is None:
                alive[number] = complete = False
                continue
            overall.update(data)
            per_shard[number].update(data)
            chunk.append((number, index, data))
            if len(chunk) >= CHUNK:
                _check_records(chunk, paths, metadata, pool, bar, result)
                chunk = []
    _check_records(chunk, paths, metadata, pool, bar, result)
    for number in range(count):  # a shard holding more than it should
        if alive[number] and _has_more(readers[number]):
            complete = False
            result.problems.append(Problem(str(paths[number]), None, (
                f"it holds more than the {expected[number]} records {records.METADATA_FILE} says")))
    return (overall, per_shard) if complete else None


def _next_record(reader, path, index, expected, result):
    """The next record of a shard, or None (and a Problem) when it cannot be read."""
    try:
        return next(reader)
    except StopIteration:
        result.problems.append(Problem(str(path), None, (
            f"it ends after {index} records, {records.METADATA_FILE} says {expected}")))
    except tf.errors.DataLossError as error:
        rest = expected - index - 1
        result.problems.append(Problem(str(path), index, (
            f"it cannot be read: its checksum fails or the file is cut in it ({records.op_error_text(error)})"
            + (f"; the {rest} records after it in this shard cannot be read" if rest > 0 else ""))))
    except tf.errors.OpError as error:
        result.problems.append(Problem(str(path), index, f"it cannot be read ({records.op_error_text(error)})"))
    return None


def _has_more(reader):
    try:
        next(reader)
    except (StopIteration, tf.errors.OpError):
        return False
    return True


def _check_records(chunk, paths, metadata, pool, bar, result):
    """record_problem and the metadata's label of each (shard number, index, data) of `chunk`."""
    resolution, channels, label_size = metadata["resolution"], metadata["channels"], metadata["label_size"]
    labels, shard_count = metadata.get("labels"), len(paths)

    def check(item):
        number, index, data = item
        problem = records.record_problem(data, resolution, channels, label_size)
        if problem is None and labels is not None:
            label = tf.train.Example.FromString(data).features.feature["label"].int64_list.value[0]
            wanted = labels[index * shard_count + number]  # record k of shard s is image k * S + s
            if label != wanted:
                problem = f"its label {label} differs from {records.METADATA_FILE}'s {wanted} for that image"
        return problem

    for (number, index, _), problem in zip(chunk, pool.map(check, chunk)):
        if problem is not None:
            result.problems.append(Problem(str(paths[number]), index, problem))
    result.records += len(chunk)
    bar.update(len(chunk))


def _check_checksums(folder, paths, shards, metadata, complete, result):
    overall, per_shard = complete
    for shard, path, digest in zip(shards, paths, per_shard):
        if shard.get("sha256") and digest.hexdigest() != shard["sha256"]:
            result.problems.append(Problem(str(path), None, (
                f"the sha256 of its records differs from {records.METADATA_FILE}'s: a record was "
                "changed, or the shard is another dataset's")))
    checksum = metadata.get("checksum")
    if (isinstance(checksum, dict) and checksum.get("algorithm") == "sha256"
            and overall.hexdigest() != checksum.get("value")):
        result.problems.append(Problem(str(folder / records.METADATA_FILE), None, (
            "the sha256 of the records in conversion order differs from its checksum: a record "
            "was changed or the shards were reordered or swapped")))
