"""Inception Score: the math against numpy and closed forms, the splits, the Inception classifier."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from softmax_standin import BIASES, CLASSES, make_softmax_standin, softmax_standin_probabilities

from stylegan2_tf.metrics import feature_nets
from stylegan2_tf.metrics.inception_score import inception_score, split_bounds


def numpy_inception_score(p, splits):
    """The formula of NVIDIA's and OpenAI's code, written out independently: split edges from
    floor(i N / S), KL per image from logs."""
    edges = np.floor(np.arange(splits + 1) * len(p) / splits).astype(int)
    scores = []
    for start, stop in itertools.pairwise(edges):
        part = p[start:stop]
        marginal = np.mean(part, axis=0)
        kl = np.sum(part * (np.log(part) - np.log(marginal)), axis=1)
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores), np.std(scores)


def random_probabilities(rng, n, k, concentration=0.3):
    return rng.dirichlet(np.full(k, concentration), size=n)


@pytest.mark.parametrize("n, splits", [(1000, 10), (1003, 10), (57, 4), (10, 10), (30, 1)])
def test_the_score_is_the_reference_formula(n, splits):
    p = random_probabilities(np.random.RandomState(n), n, 13)
    mean, std = inception_score(p, splits)
    expected_mean, expected_std = numpy_inception_score(p, splits)
    assert mean == pytest.approx(expected_mean, rel=1e-10)
    assert std == pytest.approx(expected_std, rel=1e-8, abs=1e-12)
    assert 1 <= mean <= 13


def test_float32_softmax_rows_are_accepted():
    logits = np.random.RandomState(0).randn(40, 7).astype(np.float32) * 3
    p = tf.nn.softmax(logits).numpy()
    assert inception_score(p)[0] == pytest.approx(numpy_inception_score(p.astype(np.float64), 10)[0],
                                                  rel=1e-5)


def test_closed_forms():
    uniform = np.full((100, 8), 1 / 8)
    assert inception_score(uniform) == pytest.approx((1.0, 0.0))
    same = np.tile(random_probabilities(np.random.RandomState(1), 1, 8), (50, 1))
    assert inception_score(same) == pytest.approx((1.0, 0.0))
    # One-hot rows, each split holding every one of 7 classes equally often: exp(log 7) = 7;
    # zero probabilities count 0 (the reference's formula would give nan).
    classes = np.tile(np.arange(7).repeat(2), 10)
    one_hot = np.eye(7)[classes]
    assert inception_score(one_hot) == pytest.approx((7.0, 0.0))
    # One class everywhere: 1.
    assert inception_score(np.eye(7)[np.zeros(30, int)]) == pytest.approx((1.0, 0.0))
    # Balanced in half the splits, one class in the others: mean (7 + 1) / 2, std 3.
    halves = np.concatenate([np.eye(7)[np.arange(7)]] * 5 + [np.eye(7)[[0] * 7]] * 5)
    assert inception_score(halves, 10) == pytest.approx((4.0, 3.0))


def test_splits_are_the_references_contiguous_parts():
    assert split_bounds(20, 10) == [(2 * i, 2 * i + 2) for i in range(10)]
    sizes = [stop - start for start, stop in split_bounds(1003, 10)]
    assert sizes == [100, 100, 100, 101, 100, 100, 101, 100, 100, 101]  # not np.array_split's
    assert split_bounds(1003, 10)[0][0] == 0 and split_bounds(1003, 10)[-1][1] == 1003
    # Each part is scored alone: class k in part k gives 1 per part, whatever the whole holds.
    parts = np.eye(10)[np.repeat(np.arange(10), [stop - start for start, stop in split_bounds(23, 10)])]
    assert inception_score(parts) == pytest.approx((1.0, 0.0))
    # The same rows cut elsewhere (np.array_split: the longer parts first) score otherwise.
    shifted = np.eye(10)[np.repeat(np.arange(10), [3, 3, 3, 2, 2, 2, 2, 2, 2, 2])]
    assert inception_score(shifted)[0] > 1.1


@pytest.mark.parametrize("probabilities, splits, message", [
    (np.full((9, 3), 1 / 3), 10, "N >= num_splits = 10"),
    (np.full((20,), 0.5), 10, "shape"),
    (np.full((20, 3), 1 / 3), 0, "num_splits must be >= 1"),
    (np.random.RandomState(0).randn(20, 3), 10, ">= 0"),
    (np.full((20, 3), 0.5), 10, "pass softmax outputs, not logits"),
    (np.full((20, 2), np.nan), 10, "finite"),
])
def test_bad_inputs_are_refused(probabilities, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(probabilities, splits)


@pytest.fixture(scope="module")
def softmax_standin(tmp_path_factory):
    return make_softmax_standin(tmp_path_factory.mktemp("softmax") / "classify_image_graph_def.pb")


def test_probabilities_come_from_the_classifier_weights_without_the_bias(softmax_standin):
    images = np.random.RandomState(0).randint(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    classifier = feature_nets.load_inception_probabilities(str(softmax_standin))
    p = classifier(images)
    assert p.shape == (6, CLASSES) and p.dtype == np.float32
    np.testing.assert_allclose(p, softmax_standin_probabilities(images), atol=1e-6)
    np.testing.assert_allclose(classifier(images[:1, ..., :1]),  # grayscale: repeated to RGB
                               softmax_standin_probabilities(np.repeat(images[:1, ..., :1], 3, -1)),
                               atol=1e-6)
    # The graph's own softmax (one image at a time) differs by the bias only.
    graph_def = feature_nets._read_graph_def(str(softmax_standin), "classify_image_graph_def.pb")
    own = feature_nets.frozen_function(graph_def, [feature_nets.INCEPTION_INPUT], "softmax:0",
                                       [tf.TensorSpec([None, None, None, 3], tf.float32)], "standin")
    with_bias = own(tf.cast(images[:1], tf.float32)).numpy()
    logits = np.log(softmax_standin_probabilities(images[:1])) + BIASES
    np.testing.assert_allclose(with_bias, np.exp(logits) / np.exp(logits).sum(), atol=1e-5)
    assert classifier.identity != feature_nets.load_inception(str(softmax_standin)).identity


def test_an_inception_file_without_a_classifier_is_named(inception_standin):
    with pytest.raises(ValueError, match="no classifier softmax/logits/MatMul") as raised:
        feature_nets.load_inception_probabilities(str(inception_standin))
    assert str(inception_standin) in str(raised.value) and "\n" not in str(raised.value)
