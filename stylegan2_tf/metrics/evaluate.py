"""Metrics of a generator against a dataset, by name: FID, KID, precision/recall, PPL, SWD, IS.

Names follow NVIDIA's (stylegan2 / stylegan2-ada), with the number of generated
images in the name, so smaller runs are spelled the same way:

- `fid50k_full`: Fréchet Inception distance, 50k generated images against the
  whole dataset (`fid10k_full`, `fid2k_full`, `fid500_full` ... likewise);
- `kid50k_full`: kernel Inception distance (reported ×1e3 by NVIDIA's tables; here raw);
- `pr50k3_full`: improved precision and recall, VGG16 features, k = 3, 50k
  generated images against the first 200k of the dataset;
- `ppl_wend`, `ppl_wfull`, `ppl_zend`, `ppl_zfull` (crop to the face region, as
  NVIDIA's TF1 metrics), `ppl2_wend` (no crop; stylegan2-ada's): perceptual path
  length over 50k samples (`ppl_wend10k` for fewer);
- `swd`: sliced Wasserstein distance of Laplacian-pyramid patches (Karras et al.
  2018), 16384 real and generated images (`swd2k` ...), ×1e3 per level from the
  image resolution down to 16 and their average; needs no pretrained network;
- `is50k`: Inception Score of 50k generated images (`is10k` ...), from the class
  probabilities of the FID's Inception-v3, in 10 splits: `is50k_mean` and
  `is50k_std` over the splits, as NVIDIA reports it; needs no dataset images
  (only the dataset's labels, for a conditional network).

Generated images use random noise and no truncation, as NVIDIA's metrics do,
quantized to uint8 as every image of the library (inference.to_uint8_tf).
Dataset features are cached per (dataset, network file, image count) in the
metrics/ subfolder of the cache folder (files.cache_root: $STYLEGAN2_CACHE,
else $XDG_CACHE_HOME/stylegan2_tf or ~/.cache/stylegan2_tf).

An Evaluator first checks that the dataset's shards hold the records its
metadata.json claims (data.records.check_record_counts).
"""

import dataclasses
import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from stylegan2_tf.data.pipeline import make_dataset
from stylegan2_tf.data.records import FEATURES, DatasetFormatError, check_record_counts, read_metadata
from stylegan2_tf.files import atomic_write, cache_folder
from stylegan2_tf.inference import to_uint8_tf
from stylegan2_tf.metrics import feature_nets, inception_score, kid, ppl, precision_recall, swd
from stylegan2_tf.metrics.frechet import feature_statistics, frechet_distance
from stylegan2_tf.network_io import float32_generator

FEATURE_CACHE = "metrics"  # the subfolder of the cache folder that holds dataset features
PR_MAX_REAL = 200_000  # stylegan2-ada's pr50k3_full: up to 200k dataset images
SWD_DEFAULT_IMAGES = 16384  # as ProGAN reports it
PPL_VARIANTS = {"ppl_zfull": ("z", "full", True), "ppl_wfull": ("w", "full", True),
                "ppl_zend": ("z", "end", True), "ppl_wend": ("w", "end", True),
                "ppl2_wend": ("w", "end", False)}
_COUNT = r"(\d+)(k?)"
_PATTERNS = {
    "fid": re.compile(rf"fid{_COUNT}_full"),
    "kid": re.compile(rf"kid{_COUNT}_full"),
    "pr": re.compile(rf"pr{_COUNT}(\d)_full"),
    "ppl": re.compile(rf"({'|'.join(PPL_VARIANTS)})(?:{_COUNT})?"),
    "swd": re.compile(rf"swd(?:{_COUNT})?"),
    "is": re.compile(rf"is{_COUNT}"),
}
NEEDS = {"fid": feature_nets.INCEPTION, "kid": feature_nets.INCEPTION, "pr": feature_nets.VGG16,
         "ppl": feature_nets.LPIPS, "swd": None, "is": feature_nets.INCEPTION}
# The network of each kind, for Evaluator._network: a weights file can give more than one.
NETWORKS = {"fid": "inception", "kid": "inception", "pr": "vgg16", "ppl": "lpips",
            "is": "inception_probabilities"}
LOADERS = {"inception": feature_nets.load_inception, "vgg16": feature_nets.load_vgg16,
           "lpips": feature_nets.load_lpips,
           "inception_probabilities": feature_nets.load_inception_probabilities}


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric: its name, kind ("fid", "kid", "pr", "ppl", "swd", "is"), images and options."""

    name: str
    kind: str
    num_gen: int
    nhood_size: int = 3
    space: str = "w"
    sampling: str = "end"
    crop: bool = False

    @property
    def weights(self):
        """The feature_nets.WeightsFile this metric needs, or None."""
        return NEEDS[self.kind]


def _count(digits, thousands):
    return int(digits) * (1000 if thousands else 1)


def parse_metric(name):
    """MetricSpec of a metric name such as 'fid50k_full'; ValueError naming the valid forms."""
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(name)
        if not match:
            continue
        if kind in ("fid", "kid", "is"):
            spec = MetricSpec(name, kind, _count(*match.groups()))
        elif kind == "pr":
            spec = MetricSpec(name, kind, _count(match[1], match[2]), nhood_size=int(match[3]))
        elif kind == "ppl":
            space, sampling, crop = PPL_VARIANTS[match[1]]
            num = _count(match[2], match[3]) if match[2] else 50_000
            spec = MetricSpec(name, kind, num, space=space, sampling=sampling, crop=crop)
        else:
            spec = MetricSpec(name, kind, _count(*match.groups()) if match[1] else SWD_DEFAULT_IMAGES)
        if spec.num_gen < 2:
            raise ValueError(f"metric {name}: needs at least 2 images")
        if kind == "is" and spec.num_gen < inception_score.NUM_SPLITS:
            raise ValueError(f"metric {name}: needs at least {inception_score.NUM_SPLITS} images "
                             f"(one per split)")
        if kind == "pr" and not 1 <= spec.nhood_size < spec.num_gen:
            raise ValueError(f"metric {name}: needs a neighborhood size k in [1, images), "
                             f"got k = {spec.nhood_size} for {spec.num_gen} images")
        return spec
    raise ValueError(f"unknown metric {name!r}; expected fid50k_full, kid50k_full, pr50k3_full, "
                     f"{', '.join(PPL_VARIANTS)}, swd, is50k (or other counts: fid10k_full, "
                     "pr2k3_full, ppl_wend10k, swd16k, is10k)")


def parse_metrics(text):
    """'fid50k_full,swd' -> [MetricSpec, ...]; an empty text or 'none' gives []."""
    names = [n.strip() for n in str(text or "").split(",") if n.strip() and n.strip() != "none"]
    return [parse_metric(name) for name in dict.fromkeys(names)]


def write_metric_line(name, result, path=None, **fields):
    """The JSON line (no newline) of one metric's result, in NVIDIA's fields: {"metric": name,
    "results": result without "time_s", "total_time": result["time_s"], **fields}; appended
    to the file `path` when given. scripts/metrics.py and the training loop write with it.
    """
    results = {key: value for key, value in result.items() if key != "time_s"}
    line = json.dumps({"metric": name, "results": results, "total_time": result["time_s"], **fields})
    if path is not None:
        with open(path, "a") as f:
            f.write(line + "\n")
    return line


def check_weights(specs, paths):
    """Resolves the weights files `specs` need ({flag: path} overrides env) to {flag: path}.

    Raises one MissingWeightsError naming every file that is missing, each with the
    metrics that need it, its flag, environment variable and URL.
    """
    resolved, problems = {}, []
    for weights in dict.fromkeys(spec.weights for spec in specs if spec.weights is not None):
        try:
            resolved[weights.flag] = feature_nets.resolve_weights(weights, paths.get(weights.flag))
        except feature_nets.MissingWeightsError as error:
            needed_by = ", ".join(spec.name for spec in specs if spec.weights == weights)
            problems.append(f"{needed_by}: {error}")
    if len(problems) == 1:
        raise feature_nets.MissingWeightsError(problems[0])
    if problems:
        raise feature_nets.MissingWeightsError(
            f"{len(problems)} weights files are missing:\n" + "\n".join(f"  {p}" for p in problems))
    return resolved


class Evaluator:
    """Computes metrics of generators against one dataset, loading each network once.

    Args:
        data_dir: a dataset folder from scripts/dataset_tool.py.
        weights: {"inception" | "vgg16" | "lpips": path}; missing entries come
            from the environment (see feature_nets).
        cache_dir: the cache folder (None: files.cache_root's default); dataset
            features are kept in its metrics/ subfolder. ValueError
            (files.OutputPathError) when it or the subfolder cannot be a folder.
        batch_size: images per generator / feature-network call.
        seed: seeds the latents, labels and projections of every metric.
        progress: show progress bars.
    """

    def __init__(self, data_dir, weights=None, cache_dir=None, batch_size=32, seed=0, progress=True):
        self.data_dir = str(data_dir)
        self.metadata = read_metadata(self.data_dir)
        check_record_counts(self.metadata, self.data_dir)
        self.weights = dict(weights or {})
        self.feature_cache = cache_folder(cache_dir, FEATURE_CACHE)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.progress = progress
        self._networks = {}
        self._labels = None

    def evaluate(self, G, specs):
        """{metric name: {result name: float}} plus "time_s" per metric, for G (usually G_ema)."""
        self._check_generator(G)
        specs = [parse_metric(s) if isinstance(s, str) else s for s in specs]
        check_weights(specs, self.weights)
        measure = {"fid": self._fid, "kid": self._kid, "pr": self._pr, "ppl": self._ppl,
                   "swd": self._swd, "is": self._is}
        results = {}
        for spec in specs:
            start = time.time()
            values = measure[spec.kind](G, spec)
            results[spec.name] = {**values, "time_s": round(time.time() - start, 2)}
        return results

    def prepare(self, G, specs):
        """Raises ValueError now for what `evaluate(G, specs)` would fail on only after hours:
        G not drawing the dataset's images, a dataset too small for a metric, a feature
        network file that does not load. G None: skip the generator check."""
        if G is not None:
            self._check_generator(G)
        specs = [parse_metric(s) if isinstance(s, str) else s for s in specs]
        check_weights(specs, self.weights)
        count = self.metadata["image_count"]
        for spec in specs:
            needed = {"fid": 2, "kid": 2, "pr": spec.nhood_size + 1, "swd": spec.num_gen}.get(
                spec.kind, 0)
            if count < needed:
                hint = f" (name a smaller count: swd{count})" if spec.kind == "swd" and count >= 2 else ""
                raise ValueError(f"metric {spec.name} needs at least {needed} dataset images; "
                                 f"{self.data_dir} has {count}{hint}")
            if spec.weights is not None:
                self._network(spec.weights, NETWORKS[spec.kind])

    def _check_generator(self, G):
        """G must draw the dataset's images; a conditional G, for the dataset's classes."""
        meta = self.metadata
        found = (G.img_resolution, G.img_channels, G.c_dim)
        expected = (meta["resolution"], meta["channels"], G.c_dim and meta["label_size"])
        if found != expected:
            raise ValueError(f"the network draws (resolution, channels, classes) {found} but the "
                             f"dataset {self.data_dir} has {expected}")

    # The metrics.

    def _fid(self, G, spec):
        extractor = self._network(feature_nets.INCEPTION)
        real = feature_statistics(self.dataset_features(extractor))
        fake = feature_statistics(self.generator_features(G, extractor, spec.num_gen))
        return {spec.name: frechet_distance(*fake, *real)}

    def _kid(self, G, spec):
        extractor = self._network(feature_nets.INCEPTION)
        real = self.dataset_features(extractor)
        fake = self.generator_features(G, extractor, spec.num_gen)
        return {spec.name: kid.kernel_inception_distance(real, fake, seed=self.seed)}

    def _pr(self, G, spec):
        extractor = self._network(feature_nets.VGG16)
        real = self.dataset_features(extractor, max_items=PR_MAX_REAL)
        fake = self.generator_features(G, extractor, spec.num_gen)
        precision, recall = precision_recall.precision_recall(real, fake, nhood_size=spec.nhood_size)
        return {f"{spec.name}_precision": precision, f"{spec.name}_recall": recall}

    def _ppl(self, G, spec):
        distance = self._network(feature_nets.LPIPS)
        G = float32_generator(G)  # float16 is too coarse for steps of 1e-4
        labels = self._label_sampler(G)(spec.num_gen) if G.c_dim else None
        with self._bar(spec.num_gen, spec.name) as bar:
            distances = ppl.path_length_distances(
                G, distance, spec.num_gen, space=spec.space, sampling=spec.sampling, crop=spec.crop,
                batch_size=self.batch_size, seed=self.seed, labels=labels, progress=bar.update)
        return {spec.name: ppl.perceptual_path_length(distances)}

    def _is(self, G, spec):
        classifier = self._network(feature_nets.INCEPTION, NETWORKS["is"])
        probabilities = self.generator_features(G, classifier, spec.num_gen)
        mean, std = inception_score.inception_score(probabilities)
        return {f"{spec.name}_mean": mean, f"{spec.name}_std": std}

    def _swd(self, G, spec):
        real = self._swd_descriptors(self.real_batches(spec.num_gen), spec.num_gen, "swd: dataset", 0)
        fake = self._swd_descriptors(self.generated_batches(G, spec.num_gen), spec.num_gen,
                                     "swd: generator", 1)
        levels = swd.swd(real, fake, G.img_resolution, G.img_channels, seed=self.seed)
        average = levels.pop("swd_avg")
        return {spec.name: average, **{f"{spec.name}_{key[4:]}": v for key, v in levels.items()}}

    def _swd_descriptors(self, batches, count, description, stream):
        """Raw descriptors of every pyramid level (finest first) of `count` images, concatenated.

        Each set (stream 0: dataset, 1: generator) and batch draws its own patch
        positions, as the reference's one global random stream does: the same
        positions in both sets would pair up patches and understate the distance.
        """
        levels = []
        with self._bar(count, description) as bar:
            for index, images in enumerate(batches):
                seed = np.random.SeedSequence([self.seed, stream, index]).generate_state(1)[0]
                levels.append(swd.laplacian_descriptors(images, seed=int(seed)))
                bar.update(len(images))
        return [np.concatenate(level) for level in zip(*levels)]

    # Features.

    def dataset_features(self, extractor, max_items=None):
        """Features [min(max_items, dataset size), D] of the dataset's first images, cached."""
        count = self.metadata["image_count"] if max_items is None else min(
            max_items, self.metadata["image_count"])
        content = self.metadata.get("checksum") or str(Path(self.data_dir).resolve())
        key = json.dumps([content, extractor.identity, count])
        name = Path(self.data_dir).resolve().name
        cache = self.feature_cache / (f"{name}-{extractor.name}-{count}-"
                                      f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy")
        if cache.is_file():
            return np.load(cache)
        features = self._features(self.real_batches(count), extractor, count,
                                  f"{extractor.name}: dataset")
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda partial: np.save(partial, features))
        return features

    def generator_features(self, G, extractor, count):
        """Features [count, D] of `count` images of G (random noise, no truncation)."""
        return self._features(self.generated_batches(G, count), extractor, count,
                              f"{extractor.name}: generator")

    def _features(self, batches, extractor, count, description):
        parts = []
        with self._bar(count, description) as bar:
            for images in batches:
                parts.append(extractor(images))
                bar.update(len(images))
        return np.concatenate(parts)

    def real_batches(self, count):
        """uint8 batches [<= batch_size, R, R, C] of the dataset's first `count` images, in order."""
        dataset = make_dataset(self.data_dir, self.batch_size, self.seed, shuffle_buffer=0,
                               repeat=False).take(-(-count // self.batch_size))
        done = 0
        batches = iter(dataset)
        while True:
            try:
                images, _ = next(batches)
            except StopIteration:
                return
            except tf.errors.InvalidArgumentError as error:  # the pipeline's "corrupt record K of shard F"
                found = re.search(r"corrupt record \d+ of shard [^\]\n]*", error.message)
                if found is None:
                    raise
                raise DatasetFormatError(f"{found[0].strip()} (scripts/dataset_tool.py --verify "
                                         "checks every record)") from None
            images = to_uint8_tf(images).numpy()[:count - done]  # the pipeline's u / 127.5 - 1 back to u
            done += len(images)
            yield images

    def generated_batches(self, G, count):
        """uint8 batches of `count` images of G: z from RandomState(seed), labels from the dataset."""
        rng = np.random.RandomState(self.seed)
        sample_labels = self._label_sampler(G, rng) if G.c_dim else None
        draw = _draw_function(G)
        for start in range(0, count, self.batch_size):
            n = min(self.batch_size, count - start)
            z = tf.constant(rng.randn(n, G.z_dim), tf.float32)
            c = tf.constant(sample_labels(n)) if sample_labels else tf.zeros([n, 0])
            yield draw(z, c).numpy()

    def _label_sampler(self, G, rng=None):
        """fn(n) -> one-hot labels [n, c_dim] drawn from the dataset's labels (its class frequencies)."""
        if self._labels is None:
            self._labels = _dataset_labels(self.data_dir, self.metadata)
        rng = rng or np.random.RandomState(self.seed)
        eye = np.eye(G.c_dim, dtype=np.float32)
        return lambda n: eye[self._labels[rng.randint(len(self._labels), size=n)]]

    def _network(self, weights, network=None):
        """The network `network` (a LOADERS key; default: weights.flag) from the file of
        `weights`, loaded once."""
        network = network or weights.flag
        if network not in self._networks:
            self._networks[network] = LOADERS[network](self.weights.get(weights.flag))
        return self._networks[network]

    def _bar(self, total, description):
        return tqdm(total=total, desc=description, unit="img", disable=not self.progress,
                    leave=False)


def _draw_function(G):
    """tf.function (z [N, z_dim], c [N, c_dim]) -> uint8 images of G (inference.to_uint8_tf)."""
    @tf.function(reduce_retracing=True)
    def draw(z, c):
        return to_uint8_tf(G(z, c if G.c_dim else None, noise_mode="random"))
    return draw


def _dataset_labels(data_dir, metadata):
    """int class indices [image_count] of the dataset's records (images are not decoded)."""
    files = [os.path.join(data_dir, shard["file"]) for shard in metadata["shards"]]
    labels = tf.data.TFRecordDataset(files).map(
        lambda record: tf.io.parse_single_example(record, {"label": FEATURES["label"]})["label"])
    values = np.fromiter(labels.as_numpy_iterator(), np.int64)
    if values.size == 0 or values.min() < 0:
        raise ValueError(f"{data_dir}: the dataset has no labels for a conditional network")
    return values

