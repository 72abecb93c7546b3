"""Small stand-ins for the pretrained networks, with the node names of the real files.

Inception's `ExpandDims` input and `pool_3` output behind a `DecodeJpeg` input,
with the old BatchNormWithGlobalNormalization op of the 2015 graph (GraphDef
producer 8); LPIPS' inputs `0` and `1` in NCHW with the distance as the last
node: loading, batching and error handling take the same paths as with the real files.
"""

import numpy as np
import tensorflow as tf

FEATURES = 6
BATCH_NORM = {"mean": 0.25, "variance": 2.0, "beta": -0.5, "gamma": 1.5, "epsilon": 1e-3}


def _projection(channels):
    return np.random.RandomState(1).randn(channels, FEATURES).astype(np.float32)


def _write_graph(graph, path):
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def make_inception_standin(path):
    """A graph shaped like classify_image_graph_def.pb: jpeg -> ... -> batch norm -> pool_3 [1, 1, 1, D]."""
    from tensorflow.core.framework import attr_value_pb2

    with tf.Graph().as_default() as graph:
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        image = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        x = tf.expand_dims(tf.cast(image, tf.float32, name="Cast"), 0, name="ExpandDims")
        x = tf.compat.v1.image.resize_bilinear(x, [5, 5], name="ResizeBilinear")
        x = (x - 128.0) / 128.0
        tf.nn.conv2d(x, tf.constant(_projection(3)[np.newaxis, np.newaxis]), 1, "VALID", name="conv")
        for name in ("mean", "variance", "beta", "gamma"):
            tf.constant(np.full([FEATURES], BATCH_NORM[name], np.float32), name=f"bn/{name}")
    graph_def = graph.as_graph_def()
    # TensorFlow 2 refuses to build this removed op, so the node is written directly.
    bn = graph_def.node.add(name="bn", op="BatchNormWithGlobalNormalization",
                            input=["conv", "bn/mean", "bn/variance", "bn/beta", "bn/gamma"])
    bn.attr["T"].type = tf.float32.as_datatype_enum
    bn.attr["variance_epsilon"].f = BATCH_NORM["epsilon"]
    bn.attr["scale_after_normalization"].b = True
    pool = graph_def.node.add(name="pool_3", op="AvgPool", input=["bn"])  # [N, 1, 1, D]
    pool.attr["T"].type = tf.float32.as_datatype_enum
    for key, value in (("ksize", [1, 5, 5, 1]), ("strides", [1, 1, 1, 1])):
        pool.attr[key].CopyFrom(attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(i=value)))
    pool.attr["padding"].s = b"VALID"
    graph_def.versions.producer = 8  # as the 2015 graph: before the batch norm op was removed
    path.write_bytes(graph_def.SerializeToString())
    return path


def inception_standin_features(images):
    """What the stand-in computes, in numpy: mean of resized (x - 128) / 128, projected, normalized."""
    x = tf.compat.v1.image.resize_bilinear(tf.constant(images, tf.float32), [5, 5]).numpy()
    projected = ((x - 128) / 128).mean(axis=(1, 2)) @ _projection(3)
    bn = BATCH_NORM
    return ((projected - bn["mean"]) / np.sqrt(bn["variance"] + bn["epsilon"]) * bn["gamma"]
            + bn["beta"])


def make_lpips_standin(path):
    """A graph shaped like net-lin_vgg_v0.1.pb: inputs 0, 1 [N, 3, H, W]; last op [N, 1, 1, 1]."""
    with tf.Graph().as_default() as graph:
        a = tf.compat.v1.placeholder(tf.float32, [None, 3, None, None], name="0")
        b = tf.compat.v1.placeholder(tf.float32, [None, 3, None, None], name="1")
        weights = tf.constant([[[[1.0]], [[2.0]], [[3.0]]]])  # per-channel weight [1, 3, 1, 1]
        tf.reduce_mean(weights * tf.square(a - b), axis=[1, 2, 3], keepdims=True, name="Reshape_10")
    return _write_graph(graph, path)
