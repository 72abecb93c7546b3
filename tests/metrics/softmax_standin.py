"""The stand-in Inception graph (tests/standins.py) with the classifier of the real file on top.

classify_image_graph_def.pb continues pool_3 with pool_3/_reshape (frozen for one image),
softmax/logits/MatMul (x softmax/weights [2048, 1008]), softmax/logits (+ softmax/biases)
and softmax. The stand-in gets the same nodes, with CLASSES classes; its bias is not 0,
so a loader that used it (or the one-image reshape) would give other numbers.
"""

import numpy as np
import tensorflow as tf
from standins import FEATURES, inception_standin_features, make_inception_standin

CLASSES = 5
WEIGHTS = np.random.RandomState(2).randn(FEATURES, CLASSES).astype(np.float32) * 2
BIASES = np.linspace(-1, 1, CLASSES).astype(np.float32)


def _node(graph_def, name, op, inputs, dtype=tf.float32, **attrs):
    node = graph_def.node.add(name=name, op=op, input=inputs)
    if op == "Const":
        node.attr["dtype"].type = dtype.as_datatype_enum
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(attrs.pop("value")))
    else:
        node.attr["T"].type = dtype.as_datatype_enum
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return node


def make_softmax_standin(path):
    """The Inception stand-in written to `path` (named classify_image_graph_def.pb) plus the
    real file's classifier nodes; returns path."""
    make_inception_standin(path)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    _node(graph_def, "pool_3/_reshape/shape", "Const", [], tf.int32,
          value=np.array([1, FEATURES], np.int32))
    reshape = _node(graph_def, "pool_3/_reshape", "Reshape", ["pool_3", "pool_3/_reshape/shape"])
    reshape.attr["Tshape"].type = tf.int32.as_datatype_enum
    _node(graph_def, "softmax/weights", "Const", [], value=WEIGHTS)
    _node(graph_def, "softmax/biases", "Const", [], value=BIASES)
    _node(graph_def, "softmax/logits/MatMul", "MatMul", ["pool_3/_reshape", "softmax/weights"])
    _node(graph_def, "softmax/logits", "BiasAdd", ["softmax/logits/MatMul", "softmax/biases"])
    _node(graph_def, "softmax", "Softmax", ["softmax/logits"])
    path.write_bytes(graph_def.SerializeToString())
    return path


def softmax_standin_probabilities(images):
    """What the loader should compute, in numpy: softmax(pool_3 features x weights), no bias."""
    logits = inception_standin_features(images).astype(np.float64) @ WEIGHTS
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
