"""Measures a network against a dataset: FID, KID, precision/recall, PPL, SWD, IS.

  python scripts/metrics.py --network=NET --data=DIR --metrics=fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd,is50k

NET is an official TF1 pickle, a network folder or a generator .keras (its G_ema
is measured). Without --data, the built-in digits at the network's resolution.
FID, KID and the Inception Score (is50k: its class probabilities, 10 splits)
need Inception-v3 (--inception or STYLEGAN2_INCEPTION), precision/recall VGG16
(--vgg16 or STYLEGAN2_VGG16), PPL LPIPS (--lpips or STYLEGAN2_LPIPS); see the
README for where the files come from. SWD needs none. The dataset's shards must
hold the records its metadata.json claims. Prints one JSON line per metric (and
appends it to --output when given).
"""

import tempfile
import time
from pathlib import Path

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf import cli
from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.metrics import evaluate, feature_nets

NETWORK = cli.define_network_flag()
DATA = flags.DEFINE_string("data", None, "Dataset folder from dataset_tool.py (default: built-in digits).")
METRICS = flags.DEFINE_string("metrics", "fid50k_full", "Comma-separated metric names, e.g. "
                              "fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd,is50k.")
CACHE_DIR = cli.define_cache_dir_flag()
BATCH = flags.DEFINE_integer("batch", 32, "Images per network call.", lower_bound=1)
SEED = flags.DEFINE_integer("seed", 0, "Seed of latents, labels and random projections.",
                            lower_bound=0)
OUTPUT = flags.DEFINE_string("output", None, "Also append the JSON lines to this file.")
weights_flags = cli.define_weights_flags()
flags.mark_flags_as_required(["network"])


def main():
    with cli.usage_errors(errors=(ValueError, feature_nets.MissingWeightsError)):
        specs = evaluate.parse_metrics(METRICS.value)
        evaluate.check_weights(specs, weights_flags())
    if not specs:
        raise app.UsageError("--metrics: give at least one metric")
    if OUTPUT.value is not None:
        cli.output_file_flag(OUTPUT.value)
    cache_dir = cli.cache_dir_flag(CACHE_DIR.value)
    G = cli.generator_flag(NETWORK.value)
    data = DATA.value
    with cli.usage_errors(errors=(FileNotFoundError, ValueError)):
        if data is None:
            data = digits_dataset(Path(tempfile.gettempdir()) / "stylegan2_tf-builtin",
                                  G.img_resolution)
        evaluator = evaluate.Evaluator(data, weights_flags(), cache_dir, BATCH.value, SEED.value)
        evaluator.prepare(G, specs)
        for spec in specs:
            result = evaluator.evaluate(G, [spec])[spec.name]
            report(spec.name, result, data)


def report(name, result, data):
    """Prints the metric's JSON line (NVIDIA's fields) and appends it to --output."""
    line = evaluate.write_metric_line(name, result, OUTPUT.value or None, network=NETWORK.value,
                                      data=str(data), timestamp=time.time())
    print(line, flush=True)


if __name__ == "__main__":
    cli.run(main)
