"""Loading the pretrained feature networks from local files, with small stand-in graphs.

The stand-ins have the node names of the real files (Inception's `ExpandDims`
and `pool_3` behind a `DecodeJpeg` input; LPIPS' inputs `0` and `1` in NCHW),
so the loading, batching and error paths are those the real files take.
"""

import tarfile

import numpy as np
import pytest
import tensorflow as tf
from standins import FEATURES, inception_standin_features

from stylegan2_tf.metrics import feature_nets


def test_missing_weights_name_the_file_the_flag_and_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("STYLEGAN2_INCEPTION", raising=False)
    with pytest.raises(feature_nets.MissingWeightsError,
                       match=r"classify_image_graph_def\.pb.*--inception=PATH.*STYLEGAN2_INCEPTION"):
        feature_nets.load_inception()
    with pytest.raises(feature_nets.MissingWeightsError, match="is not a file"):
        feature_nets.load_vgg16(str(tmp_path / "nothing.h5"))


def test_inception_standin_matches_numpy_for_any_batch_and_grayscale(inception_standin):
    extractor = feature_nets.load_inception(str(inception_standin))
    images = np.random.RandomState(0).randint(0, 256, (3, 9, 9, 3)).astype(np.uint8)
    np.testing.assert_allclose(extractor(images), inception_standin_features(images), atol=1e-5)
    gray = images[..., :1]
    np.testing.assert_allclose(extractor(gray), extractor(np.repeat(gray, 3, axis=-1)), atol=1e-6)
    assert extractor(images[:1]).shape == (1, FEATURES)


def test_inception_is_read_from_the_tgz_and_identity_follows_content(tmp_path, monkeypatch,
                                                                     inception_standin):
    path = inception_standin
    archive = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname="classify_image_graph_def.pb")
    monkeypatch.setenv("STYLEGAN2_INCEPTION", str(archive))
    from_tgz = feature_nets.load_inception()
    images = np.full((2, 4, 4, 3), 200, np.uint8)
    np.testing.assert_allclose(from_tgz(images), feature_nets.load_inception(str(path))(images))
    assert from_tgz.identity != feature_nets.load_inception(str(path)).identity


def test_wrong_files_and_inputs_get_clear_errors(tmp_path, inception_standin, lpips_standin):
    not_a_graph = tmp_path / "junk.pb"
    not_a_graph.write_bytes(b"\xff\xfe not a protobuf")
    with pytest.raises(ValueError, match="GraphDef"):
        feature_nets.load_inception(str(not_a_graph))
    with pytest.raises(ValueError, match="no tensors"):
        feature_nets.load_inception(str(lpips_standin))
    extractor = feature_nets.load_inception(str(inception_standin))
    with pytest.raises(ValueError, match="uint8"):
        extractor(np.zeros((1, 4, 4, 3), np.float32))


def test_lpips_standin_distance_and_gradient(lpips_standin):
    distance = feature_nets.load_lpips(str(lpips_standin))
    rng = np.random.RandomState(0)
    a, b = (rng.uniform(-1, 1, (2, 4, 5, 3)).astype(np.float32) for _ in range(2))
    expected = (np.array([1.0, 2.0, 3.0]) * np.square(a - b)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(distance(a, b).numpy(), expected, rtol=1e-5)
    a_var = tf.Variable(a)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(distance(a_var, b))
    grad = tape.gradient(total, a_var).numpy()
    np.testing.assert_allclose(grad, 2 * np.array([1.0, 2.0, 3.0]) * (a - b) / (4 * 5 * 3),
                               rtol=1e-4)


@pytest.mark.parametrize("size,factor", [(8, 1), (256, 1), (384, 1), (511, 1), (512, 2), (1024, 4)])
def test_lpips_factor_is_nvidias_size_rule(size, factor):
    assert feature_nets.lpips_factor(size) == factor  # size // 256 when it is 2 or more


def test_images_above_256_are_box_filtered_before_lpips():
    images = np.random.default_rng(0).standard_normal([2, 512, 512, 3]).astype(np.float32)
    small = feature_nets.downsample_for_lpips(images).numpy()
    np.testing.assert_allclose(small, images.reshape(2, 256, 2, 256, 2, 3).mean(axis=(2, 4)),
                               atol=1e-6)
    np.testing.assert_array_equal(feature_nets.downsample_for_lpips(images[:, :256, :256]),
                                  images[:, :256, :256])
    wide = images[:, :, :256]  # the factor comes from the height; both axes are filtered by it
    np.testing.assert_allclose(feature_nets.downsample_for_lpips(wide).numpy(),
                               wide.reshape(2, 256, 2, 128, 2, 3).mean(axis=(2, 4)), atol=1e-6)
    unknown = tf.TensorSpec([None, None, None, 3], tf.float32)  # sizes unknown when traced: as given
    traced = tf.function(feature_nets.downsample_for_lpips).get_concrete_function(unknown)
    assert traced.output_shapes.as_list() == [None, None, None, 3]


def test_ppl_and_the_projector_share_the_size_rule():
    from stylegan2_tf import projection
    from stylegan2_tf.metrics import ppl

    assert ppl.downsample_for_lpips is projection.downsample_for_lpips is feature_nets.downsample_for_lpips
    assert projection.lpips_factor is feature_nets.lpips_factor
