"""Trains StyleGAN2 on a converted dataset (or the built-in digits when --data is not given).

  python scripts/train.py --outdir=runs/digits --kimg=10 --fmap_base=256 --fmap_max=64
  python scripts/train.py --data=datasets/ffhq256 --outdir=runs/ffhq --cfg=paper256 --mirror

A run in --outdir resumes from its last snapshot when started again. Datasets come
from scripts/dataset_tool.py. Several GPUs train together through MirroredStrategy;
several machines through MultiWorkerMirroredStrategy when TF_CONFIG is set.

The dataset is checked at the start (metadata.json against its shards and first record,
then the first batch, before the run writes networks.json) and each record as it is read.
A bad record (unreadable, undecodable, of another shape, a label out of range) stops the
run with a snapshot, naming the shard file and the record's index in it; with
--on_bad_record=skip it is left out and counted (bad_records in the status line and
log.jsonl). A TFRecord shard cannot be read past a damaged record: with skip, the rest
of that shard is left out too, each record counted.

Exit codes: 0 done; 2 a usage error or a start that is refused (bad flags, a dataset
that does not match its metadata.json, a run folder in use by another process, ...);
65 stopped at a bad record of the dataset (a snapshot was written first); 74 no space
left on the disk while writing a snapshot or the log (the partial snapshot is removed or
set aside; the message names the snapshot the run resumes from); 130 / 143 Ctrl-C /
SIGTERM (after a snapshot); 1 anything else.
"""

import sys

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf.augment import PIPELINES
from stylegan2_tf.cli import define_cache_dir_flag, define_weights_flags, require_finite, run
from stylegan2_tf.data.pipeline import ON_BAD_RECORD
from stylegan2_tf.metrics.evaluate import parse_metrics
from stylegan2_tf.networks.presets import DEFAULT_PRESET, PRESET_NAMES, PRESETS, Preset
from stylegan2_tf.ops import current_impl
from stylegan2_tf.training.ada import AUGMENT_MODES
from stylegan2_tf.training.loop import BAD_RECORD_EXIT_CODE, NO_SPACE_EXIT_CODE, RunStopped, TrainingRun
from stylegan2_tf.training.setup import RunOptions, TrainingOptions
from stylegan2_tf.training.trainer import TrainingConfig


def _on_off(value):
    return "on" if value else "off"


# Defaults not given here live in one place each: the presets (networks/presets.py),
# TrainingConfig (training/trainer.py) and TrainingOptions (training/setup.py).
_OTHER_KIMG = ", ".join(f"{name} {preset.kimg:g}" for name, preset in PRESETS.items()
                        if preset.kimg != Preset.kimg)

DATA = flags.DEFINE_string("data", None, "Dataset folder from dataset_tool.py (default: built-in digits).")
OUTDIR = flags.DEFINE_string("outdir", None, "Run folder: checkpoints, logs, samples, network.")
CFG = flags.DEFINE_enum("cfg", DEFAULT_PRESET, list(PRESET_NAMES), "Configuration preset.")
BATCH = flags.DEFINE_integer("batch", None, "Global minibatch (default: the preset's).", lower_bound=1)
GAMMA = flags.DEFINE_float("gamma", None, "R1 weight (default: the preset's).", lower_bound=0)
KIMG = flags.DEFINE_float("kimg", None, "Train until this many thousand images were shown "
                          f"(default: the preset's, {Preset.kimg:g}; {_OTHER_KIMG}).")
TICK = flags.DEFINE_float("kimg_per_tick", None, "Thousands of images between status lines "
                          f"(default {TrainingOptions.kimg_per_tick:g}).")
SNAP = flags.DEFINE_integer("snap", None, f"Ticks between snapshots (default {TrainingOptions.snap}).",
                            lower_bound=1)
MIRROR = flags.DEFINE_boolean("mirror", None, "Flip images left-right at random "
                              f"(default: {_on_off(TrainingOptions.mirror)}).")
SEED = flags.DEFINE_integer("seed", None, "Seed of data order, latents, every random draw and the "
                            f"initial weights (default {TrainingConfig.seed}).")
FMAP_BASE = flags.DEFINE_integer("fmap_base", None, "Override: official fmap_base (channel_base / 2).",
                                 lower_bound=1)
FMAP_MAX = flags.DEFINE_integer("fmap_max", None, "Override: most feature maps.", lower_bound=1)
LATENT = flags.DEFINE_integer("latent_size", None, "Override: z and w size.", lower_bound=1)
MAPPING = flags.DEFINE_integer("mapping_layers", None, "Override: mapping layers.", lower_bound=1)
MIXED = flags.DEFINE_boolean("mixed_precision", None, "Float16 in the 4 highest resolutions with "
                             "activations clamped to 256 (default: the preset's choice on GPUs, "
                             "off on CPUs, where float16 is emulated).")
RESUME = flags.DEFINE_string("resume", None, "Start from another run's checkpoint (a file prefix, "
                             "its checkpoints folder or the run folder), or fine-tune a network "
                             "(an official TF1 or stylegan2-ada-pytorch pickle, a network folder).")
XLA = flags.DEFINE_boolean("xla", None, "Compile the training steps with XLA (uses the reference "
                           "ops; on CPUs usually slower, try it on GPUs; default: "
                           f"{_on_off(TrainingConfig.xla)}).")
METRICS = flags.DEFINE_string("metrics", "", "Metrics of G_ema at each snapshot, comma-separated "
                              "(e.g. fid50k_full,kid50k_full,pr50k3_full,ppl_wend,swd,is50k).")
AUG = flags.DEFINE_enum("aug", None, list(AUGMENT_MODES), "Augmentation of what D sees: ada (adaptive "
                        "probability p, starting at 0, or at the p of a stylegan2-ada-pytorch "
                        "pickle given to --resume), fixed (--p) or noaug (default: "
                        f"{TrainingConfig.augment}).")
P = flags.DEFINE_float("p", None, "The augmentation probability multiplier of --aug=fixed.",
                       lower_bound=0)
TARGET = flags.DEFINE_float("target", None, "The r_t = E[sign(D(reals))] that --aug=ada steers p toward "
                            f"(default {TrainingConfig.ada_target}).", lower_bound=0, upper_bound=1)
AUGPIPE = flags.DEFINE_enum("augpipe", None, list(PIPELINES), "The augmentations, as stylegan2-ada-pytorch's "
                            f"--augpipe (default {TrainingConfig.augpipe}; README: Augmentation).")
FREEZED = flags.DEFINE_integer("freezed", None, "Freeze-D: do not train D's first N layers from the "
                               f"image resolution down (default {TrainingConfig.freeze_d}).", lower_bound=0)
ON_BAD_RECORD_FLAG = flags.DEFINE_enum(
    "on_bad_record", "stop", list(ON_BAD_RECORD), "A record of the dataset that cannot be read or "
    f"decoded, or does not fit metadata.json: stop (with a snapshot; exit {BAD_RECORD_EXIT_CODE}) naming "
    "its shard and index, or skip it (counted as bad_records; in a damaged TFRecord shard the "
    f"records after the damage are lost too). A full disk exits with {NO_SPACE_EXIT_CODE}.")
CACHE_DIR = define_cache_dir_flag("metric_cache")  # --metric_cache: its deprecated old name
weights_flags = define_weights_flags()
require_finite(KIMG, TICK, GAMMA, P, TARGET)
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
                         metric_cache=CACHE_DIR.value, aug=AUG.value, p=P.value, target=TARGET.value,
                         augpipe=AUGPIPE.value, freezed=FREEZED.value,
                         on_bad_record=ON_BAD_RECORD_FLAG.value)
    try:
        run = TrainingRun(options)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from error
    try:
        status = run.run()
    except ValueError as error:  # e.g. a checkpoint that does not fit
        raise app.UsageError(str(error)) from error
    except RunStopped as stop:  # a bad record, a full disk: one line, its exit code
        print(f"train.py: {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    print(f"done at {status.get('kimg', run.kimg())} kimg; network in {run.outdir / 'network'}")


if __name__ == "__main__":
    run(main)
