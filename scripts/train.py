"""Trains StyleGAN2 on a converted dataset (or the built-in digits when --data is not given).

  python scripts/train.py --outdir=runs/digits --kimg=10 --fmap_base=256 --fmap_max=64
  python scripts/train.py --data=datasets/ffhq256 --outdir=runs/ffhq --cfg=paper256 --mirror

A run in --outdir resumes from its last snapshot when started again. Datasets come
from scripts/dataset_tool.py. Several GPUs train together through MirroredStrategy;
several machines through MultiWorkerMirroredStrategy when TF_CONFIG is set.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf.cli import define_weights_flags, require_finite, run
from stylegan2_tf.metrics.evaluate import parse_metrics
from stylegan2_tf.networks.presets import PRESET_NAMES
from stylegan2_tf.ops import current_impl
from stylegan2_tf.training.loop import RunOptions, TrainingRun

DATA = flags.DEFINE_string("data", None, "Dataset folder from dataset_tool.py (default: built-in digits).")
OUTDIR = flags.DEFINE_string("outdir", None, "Run folder: checkpoints, logs, samples, network.")
CFG = flags.DEFINE_enum("cfg", "auto", list(PRESET_NAMES), "Configuration preset.")
BATCH = flags.DEFINE_integer("batch", None, "Global minibatch (default: the preset's).", lower_bound=1)
GAMMA = flags.DEFINE_float("gamma", None, "R1 weight (default: the preset's).", lower_bound=0)
KIMG = flags.DEFINE_float("kimg", 25000, "Train until this many thousand images were shown.")
TICK = flags.DEFINE_float("kimg_per_tick", 4, "Thousands of images between status lines.")
SNAP = flags.DEFINE_integer("snap", 50, "Ticks between snapshots.", lower_bound=1)
MIRROR = flags.DEFINE_boolean("mirror", False, "Flip images left-right at random.")
SEED = flags.DEFINE_integer("seed", 0, "Seed of data order and latents.")
FMAP_BASE = flags.DEFINE_integer("fmap_base", None, "Override: official fmap_base.", lower_bound=1)
FMAP_MAX = flags.DEFINE_integer("fmap_max", None, "Override: most feature maps.", lower_bound=1)
LATENT = flags.DEFINE_integer("latent_size", None, "Override: z and w size.", lower_bound=1)
MAPPING = flags.DEFINE_integer("mapping_layers", None, "Override: mapping layers.", lower_bound=1)
MIXED = flags.DEFINE_boolean("mixed_precision", None, "Float16 in the 4 highest resolutions with "
                             "activations clamped to 256 (default: the preset's choice on GPUs, "
                             "off on CPUs, where float16 is emulated).")
RESUME = flags.DEFINE_string("resume", None, "Start from a checkpoint (file prefix or folder) of "
                             "another run, or fine-tune an official TF1 network pickle (.pkl).")
XLA = flags.DEFINE_boolean("xla", False, "Compile the training steps with XLA (uses the reference "
                           "ops; on CPUs usually slower, try it on GPUs).")
METRICS = flags.DEFINE_string("metrics", "", "Metrics of G_ema at each snapshot, comma-separated "
                              "(e.g. fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd).")
METRIC_CACHE = flags.DEFINE_string("metric_cache", None, "Dataset feature cache for --metrics "
                                   "(default: $STYLEGAN2_CACHE or ~/.cache/stylegan2_tf/metrics).")
weights_flags = define_weights_flags()
require_finite(KIMG, TICK, GAMMA)
flags.mark_flags_as_required(["outdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        metrics = parse_metrics(METRICS.value)
    except ValueError as error:
        raise app.UsageError(f"--metrics: {error}") from error
    options = RunOptions(outdir=OUTDIR.value, data=DATA.value, cfg=CFG.value, batch=BATCH.value,
                         gamma=GAMMA.value, kimg=KIMG.value, kimg_per_tick=TICK.value,
                         snap=SNAP.value, mirror=MIRROR.value, seed=SEED.value,
                         fmap_base=FMAP_BASE.value, fmap_max=FMAP_MAX.value,
                         latent_size=LATENT.value, mapping_layers=MAPPING.value, impl=current_impl(),
                         resume=RESUME.value, mixed_precision=MIXED.value, xla=XLA.value,
                         metrics=tuple(spec.name for spec in metrics), metric_weights=weights_flags(),
                         metric_cache=METRIC_CACHE.value)
    try:
        run = TrainingRun(options)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from error
    try:
        status = run.run()
    except ValueError as error:  # e.g. --resume names no checkpoint
        raise app.UsageError(str(error)) from error
    print(f"done at {status.get('kimg', run.kimg())} kimg; network in {run.outdir / 'network'}")


if __name__ == "__main__":
    run(main)
