"""The training input pipeline: a converted dataset folder as a tf.data.Dataset of batches.

Order of operations: shard files (per input pipeline) -> read them round-robin
-> shuffle encoded records -> repeat -> decode in parallel -> random x-flip ->
batch -> prefetch. The same seed gives the same batches: tf.data runs
deterministically, the shuffle is seeded and each flip is drawn from a
stateless generator keyed by (seed, pipeline, element index) (stylegan2_tf.seed_keys).

Every record is checked as it is decoded: a record that cannot be read (its checksum
fails, or its shard ends early; a TFRecord stream cannot be read past a damaged record,
so the rest of that shard is lost too, each of those records counted), that does not
decode, or whose image shape or label does not fit the metadata is a bad record. Bad
records are left out of the batches; each element keeps its position (element index
in the stream, and the shard and index of the record before it in the stream), so a
gap in the element indices shows how many were left out and where the last of them
is (BadRecordTracker names the file, the index in it and why). Policy `on_bad_record`:
"stop" fails at the first one ("corrupt record K of shard FILE: ..."), "skip" leaves
it out. A dataset without bad records gives exactly the batches it always gave.
"""

import os

import numpy as np
import tensorflow as tf

from stylegan2_tf.data import records
from stylegan2_tf.seed_keys import RNG_ALG, flip_key, shuffle_seed

ON_BAD_RECORD = ("stop", "skip")
_NO_LOCATION = (-1, -1)
_GAP_REASON = (": it cannot be read or decoded, or its image or label does not fit metadata.json "
               "(scripts/dataset_tool.py --verify names every bad record and why)")


def make_dataset(data_dir, batch_size, seed, mirror=False, shuffle_buffer=10_000, repeat=True,
                 input_context=None, skip_batches=0, on_bad_record="stop", positions=False,
                 skip_records=0):
    """Batches (images, labels) from the converted dataset in `data_dir`.

    Args:
        batch_size: images per batch; with input_context, the global batch, of
            which this pipeline yields input_context.get_per_replica_batch_size.
        seed: int seeding the shuffle and the flips.
        mirror: flip each image left-right with probability 1/2.
        shuffle_buffer: records in the shuffle buffer; 0 or 1 keeps the dataset order.
        repeat: loop forever and drop incomplete batches; False gives one pass
            with a smaller last batch.
        input_context: a tf.distribute.InputContext (from
            strategy.distribute_datasets_from_function). Each input pipeline reads
            every num_input_pipelines-th shard, or, with fewer shards than
            pipelines, every num_input_pipelines-th record.
        skip_batches: start as if this many batches had been taken already (a
            resumed run continues the same sequence); skipped records are not decoded.
        skip_records: start this many records later still (the bad records left out
            before a resumed run's snapshot).
        on_bad_record: "stop" or "skip" (see the module's docstring). With
            `positions`, bad records are always left out, and the caller (a
            BadRecordTracker) applies the policy.
        positions: also give each element's position (needs repeat), see BadRecordTracker.

    Returns:
        A tf.data.Dataset of (images float32 [N, R, R, C] in [-1, 1],
        labels float32 one-hot [N, label_size], [N, 0] for an unlabelled dataset),
        with `positions` also int64 [N, 3]. Iterating it with on_bad_record "stop"
        (and no `positions`) raises tf.errors.InvalidArgumentError "corrupt record K
        of shard FILE: ..." at a bad record. Raises FileNotFoundError or ValueError
        (records.read_metadata) for a folder that is not a dataset.
    """
    if on_bad_record not in ON_BAD_RECORD:
        raise ValueError(f"on_bad_record must be one of {ON_BAD_RECORD}, got {on_bad_record!r}")
    if positions and not repeat:
        raise ValueError("positions need repeat=True (a gap after the last element of one pass "
                         "would not show)")
    metadata = records.read_metadata(data_dir)
    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    files = [os.path.join(data_dir, shard["file"]) for shard in metadata["shards"]]
    counts = [shard["records"] for shard in metadata["shards"]]
    dataset = _read_records(files, counts, pipelines, pipeline_id)
    if shuffle_buffer > 1:  # each pipeline shuffles with its own seed
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed(seed, pipeline_id),
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    else:  # an end marker, so that bad records after the last good one show as a gap too
        dataset = dataset.concatenate(tf.data.Dataset.from_tensors(
            (tf.constant(-1, tf.int64), tf.constant(-1, tf.int64), (tf.constant(""), True))))
    first = skip_batches * batch_size + skip_records
    dataset = dataset.enumerate().skip(first)
    dataset = dataset.scan(tf.constant(_NO_LOCATION, tf.int64), _with_previous)
    dataset = dataset.map(_decoder(metadata, seed, pipeline_id, mirror),
                          num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    dataset = dataset.batch(batch_size, drop_remainder=repeat)
    if positions:
        dataset = dataset.map(lambda images, labels, position: (images, labels, position[:, :3]))
    else:
        dataset = dataset.scan(tf.constant(first - 1, tf.int64),
                               _gap_check(files, on_bad_record == "stop", has_end=not repeat))
        if not repeat:  # a last batch that held only the end marker
            dataset = dataset.filter(lambda images, labels: tf.shape(images)[0] > 0)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options)


def _read_records(files, counts, pipelines, pipeline_id):
    """(shard, index, (serialized record, readable)) of this pipeline's share, shards read
    round-robin (conversion order).

    Each shard gives exactly its metadata's record count: the records it can read, then for
    each record it cannot (after a damaged one, TFRecordDataset reads nothing more of the
    shard) an empty, unreadable stand-in. A readable shard gives what TFRecordDataset gives.
    """
    shard_records = len(files) < pipelines
    shards = list(range(len(files)))
    if not shard_records:
        files, counts, shards = (x[pipeline_id::pipelines] for x in (files, counts, shards))

    def read_shard(path, shard, count):
        readable = tf.data.Dataset.zip(tf.data.TFRecordDataset(path).ignore_errors(),
                                       tf.data.Dataset.from_tensors(True).repeat())
        lost = tf.data.Dataset.from_tensors((tf.constant(""), False)).repeat()
        return tf.data.Dataset.zip(tf.data.Dataset.from_tensors(shard).repeat(),
                                   tf.data.Dataset.range(count), readable.concatenate(lost))

    dataset = tf.data.Dataset.from_tensor_slices(
        (files, tf.constant(shards, tf.int64), tf.constant(counts, tf.int64))).interleave(
        read_shard, cycle_length=max(len(files), 1), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shard_records:
        dataset = dataset.shard(pipelines, pipeline_id)
    return dataset


def _with_previous(previous, element):
    """scan: each element with the (shard, index) of the record before it in the stream."""
    index, (shard, record_index, (record, readable)) = element
    return tf.stack([shard, record_index]), (index, previous, shard, record, readable)


def _decoder(metadata, seed, pipeline_id, mirror):
    """(element index, previous (shard, index), shard, record, readable) -> (image float32
    [R, R, C], one-hot label, position (element index, previous shard, previous index, end)).

    Raises (and the pipeline's ignore_errors leaves the record out) for a record that cannot
    be read, parsed or decoded, or whose shape or label does not fit the metadata. The end
    marker of one pass (shard -1) becomes a blank element with end 1.
    """
    resolution, channels, label_size = metadata["resolution"], metadata["channels"], metadata["label_size"]
    shape = [resolution, resolution, channels]

    def checked(record, readable):
        with tf.control_dependencies([tf.debugging.Assert(readable, ["unreadable record"])]):
            example = tf.io.parse_single_example(record, records.FEATURES)
        image = tf.io.decode_image(example["image"], channels=0, dtype=tf.uint8, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, None])
        fits = tf.reduce_all(tf.equal(tf.shape(image), shape))
        label = example["label"]
        if label_size:
            label_fits = (label >= 0) & (label < label_size)
        else:
            label_fits = tf.equal(label, records.NO_LABEL)
        with tf.control_dependencies([tf.debugging.Assert(fits & label_fits, ["bad record"])]):
            return tf.reshape(image, shape), tf.identity(label)

    def decode(index, previous, shard, record, readable):
        end = shard < 0
        image, label = tf.cond(end, lambda: (tf.zeros(shape, tf.uint8), tf.constant(0, tf.int64)),
                               lambda: checked(record, readable))
        if mirror:
            flip = tf.random.stateless_uniform([], seed=flip_key(seed, pipeline_id, index), alg=RNG_ALG) < 0.5
            image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
        image = tf.cast(image, tf.float32) / 127.5 - 1
        label = tf.one_hot(label, label_size, dtype=tf.float32)
        return image, label, tf.concat([[index], previous, [tf.cast(end, tf.int64)]], 0)

    return decode


def _gap_check(files, stop, has_end):
    """scan over batches with positions: the (images, labels) of the records, without the end
    marker (`has_end`: one pass); with `stop`, an InvalidArgumentError "corrupt record K of
    shard FILE: ..." at the first gap (a record left out)."""
    files = tf.constant(files)

    def check(last, batch):
        images, labels, position = batch
        index = position[:, 0]
        gaps = index - tf.concat([[last], index[:-1]], 0) - 1
        if stop:
            first = tf.argmax(tf.cast(gaps > 0, tf.int32))
            shard, record_index = position[first, 1], position[first, 2]
            message = tf.strings.join([
                "corrupt record ", tf.strings.as_string(record_index), " of shard ",
                tf.gather(files, tf.maximum(shard, 0)), _GAP_REASON])
            with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(gaps <= 0), [message])]):
                images = tf.identity(images)
        last = tf.cond(tf.size(index) > 0, lambda: index[-1], lambda: last)
        if not has_end:
            return last, (images, labels)
        real = tf.equal(position[:, 3], 0)  # not the end marker
        return last, (tf.boolean_mask(images, real), tf.boolean_mask(labels, real))

    return check


class BadRecordTracker:
    """Finds the records a make_dataset(positions=True) pipeline left out, from its batches'
    positions; `found(positions)` -> [BadRecord] of each gap, `count` in all.

    start: the element index of the first element the pipeline gives (skip_batches *
    per-replica batch + skip_records). Positions of several replicas' batches of one step
    may be given together (their rows are sorted by element index).
    """

    def __init__(self, data_dir, start=0):
        self.data_dir = str(data_dir)
        self.metadata = records.read_metadata(data_dir, check_shards=False)
        self.files = [os.path.join(self.data_dir, shard["file"]) for shard in self.metadata["shards"]]
        self.last = start - 1
        self.count = 0

    def found(self, positions):
        positions = np.asarray(positions).reshape(-1, 3)
        positions = positions[np.argsort(positions[:, 0], kind="stable")]
        bad = []
        for index, shard, record_index in positions:
            gap = int(index) - self.last - 1
            self.last = max(self.last, int(index))
            if gap > 0 and shard >= 0:
                bad.append(BadRecord(self.files[int(shard)], int(record_index), gap))
        self.count += sum(record.count for record in bad)
        return bad

    def why(self, record):
        """Why `record` (a BadRecord) was left out, read from its file."""
        metadata = self.metadata
        return records.describe_record(record.path, record.index, metadata["resolution"],
                                       metadata["channels"], metadata["label_size"])


class BadRecord:
    """A bad record found by BadRecordTracker: the shard `path` and `index` in it of the last of
    `count` records left out in a row (usually 1)."""

    def __init__(self, path, index, count=1):
        self.path, self.index, self.count = path, index, count

    def __repr__(self):
        return f"BadRecord({self.path!r}, {self.index}, count={self.count})"
