"""Small stand-ins for the pretrained networks, with the node names of the real files.

Inception's `ExpandDims` input and `pool_3` output behind a `DecodeJpeg` input,
LPIPS' inputs `0` and `1` in NCHW with the distance as the last node: loading,
batching and error handling take the same paths as with the real files.
"""

import numpy as np
import tensorflow as tf

FEATURES = 6


def _projection(channels):
    return np.random.RandomState(1).randn(channels, FEATURES).astype(np.float32)


def _write_graph(graph, path):
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def make_inception_standin(path):
    """A graph shaped like classify_image_graph_def.pb: jpeg -> ... -> pool_3 [1, 1, 1, D]."""
    with tf.Graph().as_default() as graph:
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        image = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        x = tf.expand_dims(tf.cast(image, tf.float32, name="Cast"), 0, name="ExpandDims")
        x = tf.compat.v1.image.resize_bilinear(x, [5, 5], name="ResizeBilinear")
        x = (x - 128.0) / 128.0
        x = tf.nn.conv2d(x, tf.constant(_projection(3)[np.newaxis, np.newaxis]), 1, "VALID")
        tf.nn.avg_pool2d(x, 5, 1, "VALID", name="pool_3")  # [N, 1, 1, D], as the real graph
    return _write_graph(graph, path)


def inception_standin_features(images):
    """What the stand-in computes, in numpy: mean of resized (x - 128) / 128, projected."""
    x = tf.compat.v1.image.resize_bilinear(tf.constant(images, tf.float32), [5, 5]).numpy()
    return ((x - 128) / 128).mean(axis=(1, 2)) @ _projection(3)


def make_lpips_standin(path):
    """A graph shaped like net-lin_vgg_v0.1.pb: inputs 0, 1 [N, 3, H, W]; last op [N, 1, 1, 1]."""
    with tf.Graph().as_default() as graph:
        a = tf.compat.v1.placeholder(tf.float32, [None, 3, None, None], name="0")
        b = tf.compat.v1.placeholder(tf.float32, [None, 3, None, None], name="1")
        weights = tf.constant([[[[1.0]], [[2.0]], [[3.0]]]])  # per-channel weight [1, 3, 1, 1]
        tf.reduce_mean(weights * tf.square(a - b), axis=[1, 2, 3], keepdims=True, name="Reshape_10")
    return _write_graph(graph, path)
