"""The training input pipeline: a converted dataset folder as a tf.data.Dataset of batches.

Order of operations: shard files (per input pipeline) -> read them round-robin
-> shuffle encoded records -> repeat -> decode in parallel -> random x-flip ->
batch -> prefetch. The same seed gives the same batches: tf.data runs
deterministically, the shuffle is seeded and each flip is drawn from a
stateless generator keyed by (seed, pipeline, element index) (stylegan2_tf.seed_keys).
"""

import os

import tensorflow as tf

from stylegan2_tf.data import records
from stylegan2_tf.seed_keys import RNG_ALG, flip_key, shuffle_seed


def make_dataset(data_dir, batch_size, seed, mirror=False, shuffle_buffer=10_000, repeat=True,
                 input_context=None, skip_batches=0):
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

    Returns:
        A tf.data.Dataset of (images float32 [N, R, R, C] in [-1, 1],
        labels float32 one-hot [N, label_size], [N, 0] for an unlabelled dataset).
        Raises FileNotFoundError or ValueError (see records.read_metadata).
    """
    metadata = records.read_metadata(data_dir)
    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    files = [os.path.join(data_dir, shard["file"]) for shard in metadata["shards"]]
    dataset = _read_records(files, pipelines, pipeline_id)
    if shuffle_buffer > 1:  # each pipeline shuffles with its own seed
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed(seed, pipeline_id),
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    decode = _decoder(metadata, seed, pipeline_id, mirror)
    dataset = dataset.enumerate().skip(skip_batches * batch_size)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options)


def _read_records(files, pipelines, pipeline_id):
    """Serialized records of this pipeline's share, shards read round-robin (conversion order)."""
    shard_records = len(files) < pipelines
    if not shard_records:
        files = files[pipeline_id::pipelines]
    dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shard_records:
        dataset = dataset.shard(pipelines, pipeline_id)
    return dataset


def _decoder(metadata, seed, pipeline_id, mirror):
    """(element index, serialized record) -> (image float32 [R, R, C] in [-1, 1], label [label_size])."""
    resolution, channels, label_size = metadata["resolution"], metadata["channels"], metadata["label_size"]

    def decode(index, record):
        example = tf.io.parse_single_example(record, records.FEATURES)
        image = tf.io.decode_image(example["image"], channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
        image = tf.ensure_shape(image, [resolution, resolution, channels])
        if mirror:
            flip = tf.random.stateless_uniform([], seed=flip_key(seed, pipeline_id, index), alg=RNG_ALG) < 0.5
            image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
        image = tf.cast(image, tf.float32) / 127.5 - 1
        label = tf.one_hot(example["label"], label_size, dtype=tf.float32)
        return image, label

    return decode
