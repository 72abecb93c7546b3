"""The tf.data input pipeline (stylegan2_tf.data.pipeline) on small converted datasets."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data.convert import convert_dataset
from stylegan2_tf.data.pipeline import make_dataset

COUNT, RESOLUTION, CLASSES = 12, 8, 3


def source_images():
    """[COUNT, R, R, 3] uint8 distinct images."""
    return np.random.RandomState(0).randint(0, 256, [COUNT, RESOLUTION, RESOLUTION, 3]).astype(np.uint8)


def make(folder, shards, labelled):
    images = source_images()
    source = folder / "src"
    source.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(source / f"{i:02d}.png")
    labels = None
    if labelled:
        labels = folder / "labels.json"
        labels.write_text(json.dumps({"labels": [[f"{i:02d}.png", i % CLASSES] for i in range(COUNT)]}))
    return convert_dataset(source, folder / "data", labels=labels, shards=shards, progress=False).dest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A labelled dataset of COUNT RGB images in 4 shards."""
    return make(tmp_path_factory.mktemp("labelled"), shards=4, labelled=True)


def to_uint8(images):
    return np.round((np.asarray(images) + 1) * 127.5).astype(np.uint8)


def one_pass(data_dir, **options):
    """(images, labels) of one unshuffled pass, concatenated."""
    options = {"batch_size": 5, "seed": 0, "shuffle_buffer": 0, "repeat": False, **options}
    batches = list(make_dataset(data_dir, **options))
    return (np.concatenate([images for images, _ in batches]),
            np.concatenate([labels for _, labels in batches]))


def test_one_pass_gives_the_images_in_order_with_one_hot_labels(dataset):
    images, labels = one_pass(dataset)
    assert images.shape == (COUNT, RESOLUTION, RESOLUTION, 3) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    np.testing.assert_array_equal(to_uint8(images), source_images())
    np.testing.assert_array_equal(labels, np.eye(CLASSES, dtype=np.float32)[np.arange(COUNT) % CLASSES])


def test_repeated_batches_have_static_shapes(dataset):
    batches = make_dataset(dataset, batch_size=5, seed=1)
    assert batches.element_spec[0].shape == (5, RESOLUTION, RESOLUTION, 3)
    assert batches.element_spec[1].shape == (5, CLASSES)
    assert len(list(batches.take(4))) == 4  # 20 images from 12: it repeats


def test_unlabelled_dataset_has_empty_labels(tmp_path):
    images, labels = one_pass(make(tmp_path, shards=1, labelled=False), batch_size=4)
    assert images.shape[0] == COUNT and labels.shape == (COUNT, 0)


def test_mirror_flips_some_images(dataset):
    images = to_uint8(one_pass(dataset, mirror=True)[0])
    source = source_images()
    flipped = [np.array_equal(image, original[:, ::-1]) for image, original in zip(images, source)]
    kept = [np.array_equal(image, original) for image, original in zip(images, source)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def batches(data_dir, seed, count=3):
    data = make_dataset(data_dir, batch_size=4, seed=seed, mirror=True, shuffle_buffer=8)
    return [(images.numpy(), labels.numpy()) for images, labels in data.take(count)]


def test_same_seed_same_batches_other_seed_others(dataset):
    first, second, other = batches(dataset, 3), batches(dataset, 3), batches(dataset, 4)
    for (a_images, a_labels), (b_images, b_labels) in zip(first, second):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_labels, b_labels)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


@pytest.mark.parametrize("shards", [4, 1])
def test_input_context_splits_the_records(tmp_path, shards):
    data_dir = make(tmp_path, shards=shards, labelled=False)
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                             num_replicas_in_sync=2)
        images = to_uint8(one_pass(data_dir, batch_size=4, input_context=context)[0])
        assert images.shape[0] == COUNT // 2  # per-replica batches of 2
        seen.append({image.tobytes() for image in images})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {image.tobytes() for image in source_images()}


def test_not_a_dataset(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_dataset(tmp_path / "missing", 4, 0)
    with pytest.raises(ValueError, match="not a converted dataset"):
        make_dataset(tmp_path, 4, 0)
    broken = tmp_path / "broken"
    broken.mkdir()
    metadata = json.loads((dataset / "metadata.json").read_text())
    (broken / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="incomplete: shard data-00000-of-00004.tfrecord is missing"):
        make_dataset(broken, 4, 0)
    (broken / "metadata.json").write_text(json.dumps({**metadata, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        make_dataset(broken, 4, 0)


def test_skip_batches_continues_the_same_sequence(tmp_path):
    """A resumed run (skip_batches=k) sees batch k of an uninterrupted one, mirrored alike."""
    from stylegan2_tf.data.builtin import digits_dataset
    from stylegan2_tf.data.pipeline import make_dataset

    data = digits_dataset(tmp_path / "digits", resolution=16)
    straight = list(make_dataset(str(data), 8, seed=3, mirror=True).take(5))
    resumed = list(make_dataset(str(data), 8, seed=3, mirror=True, skip_batches=3).take(2))
    for (a, la), (b, lb) in zip(straight[3:], resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
