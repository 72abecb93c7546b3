"""The one uint8 quantization (stylegan2_tf.inference): its numpy form (to_uint8: generate.py,
the training samples) and its TensorFlow form (to_uint8_tf: the SavedModel, the metrics) give
the same bytes, boundaries included."""

import numpy as np
import tensorflow as tf

from stylegan2_tf.inference import to_uint8, to_uint8_tf


def boundary_values(dtype=np.float32):
    """Every x where x * 127.5 + 128 crosses an integer k in [0, 256], with its 3 float neighbours
    on each side, plus values outside [-1, 1] and infinities."""
    x = ((np.arange(0, 257) - 128) / 127.5).astype(dtype)
    around = [x]
    below, above = x, x
    for _ in range(3):
        below, above = np.nextafter(below, dtype(-np.inf)), np.nextafter(above, dtype(np.inf))
        around += [below, above]
    extra = np.array([-np.inf, -1e30, -2, -1.01, -1, 0, 1, 1.01, 2, 1e30, np.inf], dtype)
    return np.concatenate([*around, extra])


def test_numpy_and_tensorflow_forms_agree_on_boundary_values():
    for dtype in (np.float32, np.float64):
        x = boundary_values(dtype)
        expected = to_uint8(x)
        np.testing.assert_array_equal(to_uint8_tf(tf.constant(x)).numpy(), expected)
        traced = tf.function(to_uint8_tf)  # in a graph, as the SavedModel and the metrics run it
        np.testing.assert_array_equal(traced(tf.constant(x)).numpy(), expected)


def test_the_formula():
    x = np.array([-1.5, -1, -0.999, 0, 0.5, 0.992, 1, 3], np.float32)
    # clip(x * 127.5 + 128, 0, 255), truncated: -1 -> 0.5 -> 0, 0 -> 128, 1 -> 255.5 -> 255
    assert to_uint8(x).tolist() == [0, 0, 0, 128, 191, 254, 255, 255]
    assert to_uint8(x).dtype == np.uint8 and to_uint8_tf(x).dtype == tf.uint8


def test_dataset_images_come_back_unchanged():
    """The training pipeline reads u as u / 127.5 - 1 (float32): both forms give u back."""
    u = np.arange(256, dtype=np.uint8)
    x = tf.cast(tf.constant(u), tf.float32) / 127.5 - 1  # data/pipeline.py's formula
    np.testing.assert_array_equal(to_uint8(x), u)
    np.testing.assert_array_equal(to_uint8_tf(x).numpy(), u)


def test_tensorflow_form_is_stock_ops():
    graph = tf.function(to_uint8_tf).get_concrete_function(
        tf.TensorSpec([None, 4, 4, 3], tf.float32)).graph
    ops = {op.type for op in graph.get_operations()} - {"Placeholder", "Const", "Identity"}
    assert ops == {"Mul", "AddV2", "Minimum", "Maximum", "Cast"}
