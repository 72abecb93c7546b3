"""The metric runner: names, weights checks, dataset features and their cache, FID and IS end
to end.

A stand-in Inception graph file (tests/standins.py) goes through the
same loading path as the real one; stub generators make the expected values exact.
"""

import json

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import tensorflow as tf
from PIL import Image
from softmax_standin import make_softmax_standin, softmax_standin_probabilities
from standins import inception_standin_features

from stylegan2_tf.data.convert import convert_dataset
from stylegan2_tf.metrics import evaluate, feature_nets, inception_score, kid, ppl, precision_recall

RESOLUTION = 16
IMAGES = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset of IMAGES random 16x16 RGB images with 3 classes; returns (folder, uint8 images)."""
    source = tmp_path_factory.mktemp("source")
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (IMAGES, RESOLUTION, RESOLUTION, 3)).astype(np.uint8)
    labels = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(source / f"{i:03d}.png")
        labels.append([f"{i:03d}.png", [0, 2, 2][i % 3]])  # class 2 twice as often as class 0
    (source / "dataset.json").write_text(json.dumps({"labels": labels}))
    dest = tmp_path_factory.mktemp("data") / "random8"
    convert_dataset(source, dest, shards=2, progress=False)
    return dest, images


class ReplayGenerator:
    """Stands in for G: returns the given images, in order, one batch per call."""

    z_dim, w_dim = 4, 4

    def __init__(self, images, c_dim=0):
        self.images = np.asarray(images, np.float32) / 127.5 - 1
        self.img_resolution, self.img_channels = self.images.shape[1], self.images.shape[3]
        self.c_dim = c_dim
        self.position = 0
        self.labels_seen = []

    def __call__(self, z, c=None, noise_mode="random"):
        """Runs eagerly inside the evaluator's tf.function through tf.py_function."""
        def replay(z, c):
            n = int(z.shape[0])
            batch = self.images[self.position:self.position + n]
            self.position += n
            self.labels_seen.append(c.numpy())
            return batch

        c = tf.zeros([tf.shape(z)[0], 0]) if c is None else c
        images = tf.py_function(replay, [z, c], tf.float32)
        return tf.ensure_shape(images, [None, *self.images.shape[1:]])


def direct_fid(a, b):
    """FID from the definition, with the matrix square root's trace from eigenvalues."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_trace = np.sum(np.sqrt(np.clip(np.real(np.linalg.eigvals(cov_a @ cov_b)), 0, None)))
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * root_trace


def test_metric_names_parse_with_their_counts_and_options():
    assert evaluate.parse_metric("fid50k_full") == evaluate.MetricSpec("fid50k_full", "fid", 50_000)
    assert evaluate.parse_metric("kid2k_full").num_gen == 2000
    pr = evaluate.parse_metric("pr50k3_full")
    assert (pr.kind, pr.num_gen, pr.nhood_size) == ("pr", 50_000, 3)
    wend = evaluate.parse_metric("ppl_wend")
    assert (wend.num_gen, wend.space, wend.sampling, wend.crop) == (50_000, "w", "end", True)
    assert not evaluate.parse_metric("ppl2_wend").crop
    assert evaluate.parse_metric("ppl_zfull1k").num_gen == 1000
    assert evaluate.parse_metric("swd").num_gen == evaluate.SWD_DEFAULT_IMAGES
    assert evaluate.parse_metric("swd16k").num_gen == 16_000
    assert [s.name for s in evaluate.parse_metrics("fid50k_full, swd,fid50k_full")] == [
        "fid50k_full", "swd"]
    assert evaluate.parse_metrics("none") == []
    assert evaluate.parse_metric("is50k") == evaluate.MetricSpec("is50k", "is", 50_000)
    assert evaluate.parse_metric("is10k").num_gen == 10_000
    assert evaluate.parse_metric("is10").num_gen == 10
    assert evaluate.parse_metric("is50k").weights == feature_nets.INCEPTION
    for bad in ("fid", "fid50k", "is", "is50k_full", "pr50k_full", "fid1_full"):
        with pytest.raises(ValueError, match="metric"):
            evaluate.parse_metric(bad)
    with pytest.raises(ValueError, match="expected .*is50k"):
        evaluate.parse_metric("inception")
    with pytest.raises(ValueError, match="is9: needs at least 10 images"):
        evaluate.parse_metric("is9")


def test_missing_weights_fail_before_any_work(dataset, monkeypatch):
    monkeypatch.delenv("STYLEGAN2_VGG16", raising=False)
    evaluator = evaluate.Evaluator(dataset[0], progress=False)
    G = ReplayGenerator(dataset[1])
    with pytest.raises(feature_nets.MissingWeightsError, match="--vgg16=PATH"):
        evaluator.evaluate(G, ["swd", "pr1k3_full"])
    assert G.position == 0


def test_missing_weights_are_named_together_with_the_metrics_needing_them(tmp_path, monkeypatch):
    for env in ("STYLEGAN2_INCEPTION", "STYLEGAN2_VGG16", "STYLEGAN2_LPIPS"):
        monkeypatch.delenv(env, raising=False)
    specs = evaluate.parse_metrics("fid50k_full,pr50k3_full,swd,kid50k_full,ppl_wend,is50k")
    with pytest.raises(feature_nets.MissingWeightsError) as raised:
        evaluate.check_weights(specs, {})
    lines = str(raised.value).splitlines()
    assert lines[0] == "3 weights files are missing:"
    assert lines[1].startswith("  fid50k_full, kid50k_full, is50k: Inception-v3 weights are needed")
    assert lines[2].startswith("  pr50k3_full: VGG16 weights are needed")
    assert lines[3].startswith("  ppl_wend: LPIPS (VGG16, v0.1) weights are needed")
    for flag, env, file_name in [("--inception", "STYLEGAN2_INCEPTION", "classify_image_graph_def.pb"),
                                 ("--vgg16", "STYLEGAN2_VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
                                 ("--lpips", "STYLEGAN2_LPIPS", "net-lin_vgg_v0.1.pb")]:
        assert f"{flag}=PATH" in str(raised.value) and env in str(raised.value)
        assert file_name in str(raised.value)

    weights = tmp_path / "vgg16.h5"
    weights.write_bytes(b"")
    with pytest.raises(feature_nets.MissingWeightsError) as raised:  # one missing: one line
        evaluate.check_weights(specs, {"inception": str(weights), "vgg16": str(weights)})
    assert str(raised.value).startswith("ppl_wend: LPIPS (VGG16, v0.1) weights are needed")
    assert "\n" not in str(raised.value)
    assert evaluate.check_weights(specs[:2], {"inception": str(weights), "vgg16": str(weights)}) == {
        "inception": str(weights), "vgg16": str(weights)}


def test_dataset_features_are_the_images_features_and_are_cached(dataset, inception_standin,
                                                                 tmp_path):
    folder, images = dataset
    evaluator = evaluate.Evaluator(folder, {"inception": str(inception_standin)}, cache_dir=tmp_path,
                                   batch_size=5, progress=False)
    extractor = evaluator._network(feature_nets.INCEPTION)
    features = evaluator.dataset_features(extractor)
    np.testing.assert_allclose(features, inception_standin_features(images), atol=1e-5)
    np.testing.assert_allclose(evaluator.dataset_features(extractor, max_items=7), features[:7])
    assert len(list((tmp_path / "metrics").glob("*.npy"))) == 2  # the cache's metrics/ subfolder

    def no_reading(count):
        raise AssertionError("the cached features should have been used")

    evaluator.real_batches = no_reading
    np.testing.assert_array_equal(evaluator.dataset_features(extractor), features)


def test_fid_of_the_dataset_against_itself_is_zero_and_matches_the_definition(
        dataset, inception_standin, tmp_path):
    folder, images = dataset
    evaluator = evaluate.Evaluator(folder, {"inception": str(inception_standin)}, cache_dir=tmp_path,
                                   batch_size=5, progress=False)
    results = evaluator.evaluate(ReplayGenerator(images, c_dim=3), ["fid24_full"])
    assert abs(results["fid24_full"]["fid24_full"]) < 1e-6
    assert results["fid24_full"]["time_s"] >= 0

    shifted = np.clip(images.astype(int) + 40, 0, 255).astype(np.uint8)[::-1]
    fid = evaluator.evaluate(ReplayGenerator(shifted, c_dim=3), ["fid20_full"])["fid20_full"]
    expected = direct_fid(inception_standin_features(shifted[:20]),
                          inception_standin_features(images))
    assert fid["fid20_full"] == pytest.approx(expected, rel=1e-4)
    assert fid["fid20_full"] > 1e-3


def test_conditional_generators_get_labels_with_the_dataset_frequencies(dataset):
    folder, images = dataset
    evaluator = evaluate.Evaluator(folder, batch_size=200, progress=False)
    G = ReplayGenerator(np.repeat(images, 50, axis=0), c_dim=3)
    batches = list(evaluator.generated_batches(G, 1200))
    assert sum(len(b) for b in batches) == 1200
    labels = np.concatenate(G.labels_seen)
    assert labels.shape == (1200, 3) and np.all(labels.sum(axis=1) == 1)
    frequencies = labels.mean(axis=0)
    np.testing.assert_allclose(frequencies, [1 / 3, 0, 2 / 3], atol=0.05)


def test_a_generator_that_does_not_fit_the_dataset_is_refused(dataset):
    evaluator = evaluate.Evaluator(dataset[0], progress=False)
    gray = ReplayGenerator(dataset[1][..., :1], c_dim=3)
    with pytest.raises(ValueError, match="resolution, channels, classes"):
        evaluator.evaluate(gray, ["swd"])


def test_frechet_distance_matches_the_definition():
    rng = np.random.RandomState(3)
    a, b = rng.randn(50, 4), rng.randn(60, 4) * 1.5 + 0.3
    from stylegan2_tf.metrics.frechet import feature_statistics, frechet_distance

    assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(
        direct_fid(a, b), rel=1e-6)
    sigma = np.cov(a, rowvar=False)
    assert np.allclose(scipy.linalg.sqrtm(sigma @ sigma), sigma, atol=1e-8)


def test_kid_and_precision_recall_use_the_dataset_and_generator_features(dataset, inception_standin,
                                                                        tmp_path):
    folder, images = dataset
    inception = str(inception_standin)
    evaluator = evaluate.Evaluator(folder, {"inception": inception, "vgg16": inception},
                                   cache_dir=tmp_path, batch_size=7, progress=False)
    evaluator._networks["vgg16"] = evaluator._network(feature_nets.INCEPTION)  # a stand-in VGG
    fakes = np.clip(images.astype(int) * 0.7 + 30, 0, 255).astype(np.uint8)
    results = evaluator.evaluate(ReplayGenerator(fakes), ["kid20_full"])["kid20_full"]
    real, fake = inception_standin_features(images), inception_standin_features(fakes[:20])
    assert results["kid20_full"] == pytest.approx(kid.kernel_inception_distance(real, fake), rel=1e-4)
    # The whole dataset (24 images, fewer than 200k) against 12 generated ones.
    results = evaluator.evaluate(ReplayGenerator(fakes), ["pr123_full"])["pr123_full"]
    assert set(results) == {"pr123_full_precision", "pr123_full_recall", "time_s"}
    expected = precision_recall.precision_recall(real, inception_standin_features(fakes[:12]))
    assert (results["pr123_full_precision"], results["pr123_full_recall"]) == pytest.approx(expected)


def test_swd_draws_other_patches_for_each_set_and_sees_blur(dataset, tmp_path, monkeypatch):
    folder, images = dataset
    evaluator = evaluate.Evaluator(folder, cache_dir=tmp_path, batch_size=8, progress=False)
    seeds = []
    original = evaluate.swd.laplacian_descriptors

    def recording(images, seed):
        seeds.append(seed)
        return original(images, seed=seed)

    monkeypatch.setattr(evaluate.swd, "laplacian_descriptors", recording)
    same = evaluator.evaluate(ReplayGenerator(images), ["swd24"])["swd24"]
    assert set(same) == {"swd24", "swd24_16", "time_s"}
    assert len(seeds) == 6 and len(set(seeds)) == 6  # 3 batches per set, no position reused
    blurred = scipy.ndimage.gaussian_filter(images.astype(np.float32), (0, 1.5, 1.5, 0))
    other = evaluator.evaluate(ReplayGenerator(blurred.astype(np.uint8)), ["swd24"])["swd24"]
    assert 0 < same["swd24"] < 0.5 * other["swd24"]
    assert seeds[6:9] == seeds[:3]  # the dataset's patches are the same in every evaluation


def test_ppl_uses_lpips_and_a_float32_copy_of_a_float16_generator(dataset, lpips_standin,
                                                                   tiny_generator):
    folder, _ = dataset
    lpips = str(lpips_standin)
    evaluator = evaluate.Evaluator(folder, {"lpips": lpips}, batch_size=4, progress=False)
    G = tiny_generator(resolution=RESOLUTION, synthesis={"num_fp16_res": 1, "conv_clamp": 256})
    value = evaluator.evaluate(G, ["ppl2_wend10"])["ppl2_wend10"]["ppl2_wend10"]
    G32 = tiny_generator(resolution=RESOLUTION, synthesis={"num_fp16_res": 0, "conv_clamp": 256})
    G32.set_weights(G.get_weights())
    distances = ppl.path_length_distances(G32, feature_nets.load_lpips(lpips), 10, batch_size=4,
                                          seed=0)
    assert value == pytest.approx(ppl.perceptual_path_length(distances), rel=1e-5)
    assert value > 0


@pytest.fixture(scope="module")
def softmax_standin(tmp_path_factory):
    """The Inception stand-in with the real file's classifier (softmax/logits/MatMul)."""
    return make_softmax_standin(tmp_path_factory.mktemp("softmax") / "classify_image_graph_def.pb")


def test_inception_score_of_generated_images_end_to_end(dataset, softmax_standin, tmp_path):
    folder, images = dataset
    evaluator = evaluate.Evaluator(folder, {"inception": str(softmax_standin)}, cache_dir=tmp_path,
                                   batch_size=7, progress=False)
    evaluator.prepare(None, ["fid24_full", "is23"])
    G = ReplayGenerator(images, c_dim=3)
    results = evaluator.evaluate(G, ["is23"])["is23"]
    assert set(results) == {"is23_mean", "is23_std", "time_s"}
    expected = inception_score.inception_score(softmax_standin_probabilities(images[:23]))
    assert (results["is23_mean"], results["is23_std"]) == pytest.approx(expected, rel=1e-4)
    assert 1 < results["is23_mean"] and results["is23_std"] > 0
    assert G.position == 23  # generated images only: 23 of them, in 4 batches of <= 7
    assert not list((tmp_path / "metrics").glob("*.npy"))  # nothing of the dataset cached
    # The same file serves the FID, with its pool_3 features, in the same evaluation.
    G = ReplayGenerator(np.concatenate([images, images[:23]]), c_dim=3)  # 24 for FID, 23 for IS
    both = evaluator.evaluate(G, ["fid24_full", "is23"])
    assert abs(both["fid24_full"]["fid24_full"]) < 1e-6
    assert both["is23"]["is23_mean"] == pytest.approx(results["is23_mean"], rel=1e-6)
    assert set(evaluator._networks) == {"inception", "inception_probabilities"}


def test_inception_score_needs_the_classifier_of_the_inception_file(dataset, inception_standin):
    evaluator = evaluate.Evaluator(dataset[0], {"inception": str(inception_standin)}, progress=False)
    evaluator.prepare(None, ["fid24_full"])  # pool_3 is there
    with pytest.raises(ValueError, match="no classifier softmax/logits/MatMul") as raised:
        evaluator.prepare(None, ["is10"])
    assert "\n" not in str(raised.value)
