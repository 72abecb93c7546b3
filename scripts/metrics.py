"""Measures a network against a dataset: FID, KID, precision/recall, PPL, SWD.

  python scripts/metrics.py --network=NET --data=DIR --metrics=fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd

NET is an official TF1 pickle, a network folder or a generator .keras (its G_ema
is measured). Without --data, the built-in digits at the network's resolution.
FID and KID need Inception-v3 (--inception or STYLEGAN2_INCEPTION), precision/
recall VGG16 (--vgg16 or STYLEGAN2_VGG16), PPL LPIPS (--lpips or STYLEGAN2_LPIPS);
see the README for where the files come from. SWD needs none. Prints one JSON
line per metric (and appends it to --output when given).
"""

import json
import tempfile
import time
from pathlib import Path

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf.cli import define_weights_flags, generator_flag, run
from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.metrics import evaluate, feature_nets

NETWORK = flags.DEFINE_string("network", None, "Official .pkl, network folder or generator .keras.")
DATA = flags.DEFINE_string("data", None, "Dataset folder from dataset_tool.py (default: built-in digits).")
METRICS = flags.DEFINE_string("metrics", "fid50k_full", "Comma-separated metric names, e.g. "
                              "fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd.")
CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Dataset feature cache (default: "
                                "$STYLEGAN2_CACHE or ~/.cache/stylegan2_tf/metrics).")
BATCH = flags.DEFINE_integer("batch", 32, "Images per network call.", lower_bound=1)
SEED = flags.DEFINE_integer("seed", 0, "Seed of latents, labels and random projections.",
                            lower_bound=0)
OUTPUT = flags.DEFINE_string("output", None, "Also append the JSON lines to this file.")
weights_flags = define_weights_flags()
flags.mark_flags_as_required(["network"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        specs = evaluate.parse_metrics(METRICS.value)
        evaluate.check_weights(specs, weights_flags())
    except (ValueError, feature_nets.MissingWeightsError) as error:
        raise app.UsageError(str(error)) from error
    if not specs:
        raise app.UsageError("--metrics: give at least one metric")
    if OUTPUT.value is not None:
        output = Path(OUTPUT.value)
        if output.is_dir() or not output.parent.is_dir():
            raise app.UsageError(f"--output: {output} is a folder or its folder does not exist; "
                                 "expected a file to append to")
    G = generator_flag(NETWORK.value)
    data = DATA.value
    try:
        if data is None:
            data = digits_dataset(Path(tempfile.gettempdir()) / "stylegan2_tf-builtin",
                                  G.img_resolution)
        evaluator = evaluate.Evaluator(data, weights_flags(), CACHE_DIR.value, BATCH.value,
                                       SEED.value)
        evaluator.prepare(G, specs)
        for spec in specs:
            result = evaluator.evaluate(G, [spec])[spec.name]
            report(spec.name, result, data)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from error


def report(name, result, data):
    """Prints the metric's JSON line (NVIDIA's fields) and appends it to --output."""
    seconds = result.pop("time_s")
    line = json.dumps({"metric": name, "results": result, "total_time": seconds,
                       "network": NETWORK.value, "data": str(data), "timestamp": time.time()})
    print(line, flush=True)
    if OUTPUT.value:
        with open(OUTPUT.value, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    run(main)
