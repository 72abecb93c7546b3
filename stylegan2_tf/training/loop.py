"""The training loop: data, networks and Trainer on a strategy, ticks, snapshots, logs, resume.

Progress is counted in images (kimg). Every tick (`kimg_per_tick`) prints one
status line and appends it to `log.jsonl` and TensorBoard; every `snap` ticks
the full training state goes to a tf.train.CheckpointManager (TF writes the
files, then switches the `checkpoint` index: a run killed at any moment
resumes from its last complete snapshot), the networks to `network/`, a
grid of fixed-seed samples to `samples-{kimg}.png` and, with `metrics`, the
metrics of G_ema to `metric-<name>.jsonl`.
"""

import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.data.pipeline import make_dataset
from stylegan2_tf.data.records import read_metadata
from stylegan2_tf.files import atomic_write
from stylegan2_tf.inference import image_grid, save_png, to_uint8
from stylegan2_tf.metrics.evaluate import Evaluator, check_weights, parse_metrics
from stylegan2_tf.network_io import save_network
from stylegan2_tf.networks.presets import build_discriminator, build_generator, resolve_preset
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.ops.native import impl_under_xla, use_impl
from stylegan2_tf.training.compatibility import check_fits_dataset, check_same_settings
from stylegan2_tf.training.interrupts import DeferredInterrupts
from stylegan2_tf.training.trainer import Trainer, TrainingConfig

SAMPLE_SEEDS = 16
NETWORKS_FILE = "networks.json"


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What to train on and how long. Network overrides use the official TF1 names."""

    outdir: str
    data: str | None = None
    cfg: str = "auto"
    batch: int | None = None
    gamma: float | None = None
    kimg: float = 25000
    kimg_per_tick: float = 4.0
    snap: int = 50
    mirror: bool = False
    seed: int = 0
    fmap_base: int | None = None
    fmap_max: int | None = None
    latent_size: int | None = None
    mapping_layers: int | None = None
    impl: str = "auto"
    resume: str | None = None
    mixed_precision: bool | None = None
    xla: bool = False
    metrics: tuple = ()
    metric_weights: dict = dataclasses.field(default_factory=dict)
    metric_cache: str | None = None


def choose_strategy():
    """MultiWorkerMirroredStrategy under TF_CONFIG, MirroredStrategy over several GPUs, else default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _preset(options, resolution, replicas):
    preset = resolve_preset(options.cfg, resolution, replicas)
    overrides = {"batch": options.batch, "gamma": options.gamma,
                 "channel_max": options.fmap_max, "z_dim": options.latent_size,
                 "w_dim": options.latent_size, "mapping_layers": options.mapping_layers,
                 "channel_base": None if options.fmap_base is None else 2 * options.fmap_base}
    mixed = options.mixed_precision
    if mixed is None and not tf.config.list_logical_devices("GPU"):
        mixed = False  # float16 is emulated, slow, on CPUs: keep the presets' fp16 for GPUs
    if mixed is not None:  # stylegan2-ada's: 4 float16 resolutions, clamp 256
        overrides["num_fp16_res"] = 4 if mixed else 0
        preset = dataclasses.replace(preset, conv_clamp=256.0 if mixed else None)
    return dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})


def _dataset_fn(data_dir, batch, z_dim, seed, mirror, first_batch):
    """Per-replica (images, labels, z) batches from batch `first_batch` on (so that a resumed
    run sees what an uninterrupted one would); z from a stateless RNG keyed by (seed, batch index)."""
    def fn(context):
        dataset = make_dataset(data_dir, batch, seed, mirror=mirror, input_context=context,
                               skip_batches=first_batch)
        per_replica = context.get_per_replica_batch_size(batch)
        pipeline = context.input_pipeline_id

        def add_latents(index, item):
            images, labels = item
            key = tf.stack([tf.constant(seed, tf.int64), index * 1024 + pipeline])
            return images, labels, tf.random.stateless_normal([per_replica, z_dim], key)

        return dataset.enumerate(start=first_batch).map(add_latents)
    return fn


def is_chief(strategy):
    """Whether this process writes logs, samples and the real checkpoints (worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def _row_kimg(line):
    """The kimg of a log row; infinite for a row cut short by a kill (dropped at resume)."""
    try:
        return float(json.loads(line).get("kimg", 0))
    except (ValueError, AttributeError, TypeError):
        return float("inf")


class TrainingRun:
    """Builds everything for `options` and trains; `run()` returns the final status dict.

    Under MultiWorkerMirroredStrategy every worker runs this; only the chief
    writes logs, samples and the network, and the others save their (required)
    checkpoint copies into a scratch folder that is deleted again.
    """

    def __init__(self, options, strategy=None, log=print):
        self.options = options
        self.outdir = Path(options.outdir)
        self.strategy = strategy or choose_strategy()
        self.chief = is_chief(self.strategy)
        self.log = log if self.chief else (lambda line: None)
        self.impl = impl_under_xla(options.impl) if options.xla else options.impl
        self.metric_specs = parse_metrics(",".join(options.metrics))
        check_weights(self.metric_specs, options.metric_weights)  # fail now, not at the 1st snapshot
        self.evaluator = None
        if any(p.exists() and not p.is_dir() for p in (self.outdir, *self.outdir.parents)):
            raise ValueError(f"--outdir {options.outdir}: it or a folder above it is a file")
        self.outdir.mkdir(parents=True, exist_ok=True)
        builtin = self.outdir / ("builtin-data" if self.chief else
                                 f".builtin-data-worker{self.strategy.cluster_resolver.task_id}")
        self.data_dir = options.data or str(digits_dataset(builtin))
        metadata = read_metadata(self.data_dir)
        if self.metric_specs and self.chief:  # fail now on what would fail at the 1st snapshot
            self.evaluator = Evaluator(self.data_dir, options.metric_weights, options.metric_cache,
                                       progress=False)
            self.evaluator.prepare(None, self.metric_specs)
        replicas = self.strategy.num_replicas_in_sync
        self.preset = _preset(options, metadata["resolution"], replicas)
        c_dim, channels = metadata["label_size"], metadata["channels"]
        saved_networks = self._saved_networks_file()
        keras.utils.set_random_seed(options.seed)  # --seed also fixes the initial weights
        with self.strategy.scope():
            if saved_networks is not None:
                self.G, self.D, self.G_ema = self._networks_from_file(saved_networks)
                source = (f"the run {self.outdir}" if saved_networks.parent == self.outdir
                          else f"the run {saved_networks.parent} (--resume)")
                check_same_settings(self.G, self.D, self.preset, options, source)
                check_fits_dataset(self.G, metadata, self.data_dir, source)
            elif options.resume and options.resume.endswith(".pkl"):
                self.G, self.D, self.G_ema = self._official_networks(options.resume, metadata)
            else:
                self.G = build_generator(self.preset, metadata["resolution"], channels, c_dim)
                self.G_ema = build_generator(self.preset, metadata["resolution"], channels, c_dim)
                self.G_ema.set_weights(self.G.get_weights())
                self.D = build_discriminator(self.preset, metadata["resolution"], channels, c_dim,
                                             mbstd_group_size=min(self.preset.mbstd_group_size,
                                                                  self.preset.batch // replicas))
        config = TrainingConfig(batch=self.preset.batch, r1_gamma=self.preset.gamma,
                                pl_weight=self.preset.pl_weight,
                                style_mixing_prob=self.preset.style_mixing_prob,
                                lrate=self.preset.lrate, ema_kimg=self.preset.ema_kimg,
                                ema_rampup=self.preset.ema_rampup, seed=options.seed,
                                xla=options.xla)
        self.trainer = Trainer(self.G, self.D, self.G_ema, config, self.strategy)
        self._write_networks_file()
        with self.strategy.scope():
            self.ticks = tf.Variable(0, dtype=tf.int64, trainable=False, name="ticks")
            self.checkpoint = tf.train.Checkpoint(**self.trainer.checkpoint_items(), ticks=self.ticks)
        self.checkpoint_dir = self.outdir / "checkpoints"
        if not self.chief:
            self.checkpoint_dir = self.outdir / f".checkpoints-worker{self.strategy.cluster_resolver.task_id}"
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.checkpoint_dir),
                                                  max_to_keep=3)
        self.c_dim = c_dim
        self.summary = (tf.summary.create_file_writer(str(self.outdir / "tensorboard"))
                        if self.chief else tf.summary.create_noop_writer())

    def _saved_networks_file(self):
        """networks.json of this run, or of the run whose checkpoints --resume names, or None.

        A run records its network configurations when it starts, so that resuming
        rebuilds the same networks whatever the preset flags say.
        """
        own = self.outdir / NETWORKS_FILE
        if own.exists():
            return own
        resume = self.options.resume
        if resume and not resume.endswith(".pkl"):
            checkpoints = Path(resume) if os.path.isdir(resume) else Path(resume).parent
            other = checkpoints.parent / NETWORKS_FILE
            return other if other.exists() else None
        return None

    def _networks_from_file(self, path):
        configs = json.loads(Path(path).read_text())
        build = keras.saving.deserialize_keras_object
        G, D, G_ema = build(configs["G"]), build(configs["D"]), build(configs["G"])
        G_ema.set_weights(G.get_weights())  # as a new run starts, before any snapshot restores
        return G, D, G_ema

    def _write_networks_file(self):
        path = self.outdir / NETWORKS_FILE
        if self.chief and not path.exists():
            configs = {"G": keras.saving.serialize_keras_object(self.G),
                       "D": keras.saving.serialize_keras_object(self.D)}
            atomic_write(path, lambda partial: Path(partial).write_text(json.dumps(configs, indent=1)))

    def _official_networks(self, pickle_path, metadata):
        """(G, D, G_ema) of an official pickle, to fine-tune; must fit the dataset."""
        nets = load_official(pickle_path)
        G_ema = nets["G_ema"]
        check_fits_dataset(G_ema, metadata, self.data_dir, f"--resume {pickle_path}")
        if nets["G"] is None or nets["D"] is None:
            raise ValueError(f"--resume {pickle_path}: fine-tuning needs G and D, the pickle "
                             "holds only Gs")
        return nets["G"], nets["D"], G_ema

    def restore(self):
        """Resumes from --resume (a checkpoint) or the latest snapshot in outdir/checkpoints.

        Returns whether training state was restored (an official pickle given to
        --resume only provides the starting networks). Rows of log.jsonl and
        metric-*.jsonl written after the restored snapshot are dropped: the run
        replays those images.
        """
        latest = tf.train.latest_checkpoint(str(self.outdir / "checkpoints"))
        resume = self.options.resume
        if latest is None and resume and not resume.endswith(".pkl"):
            latest = tf.train.latest_checkpoint(resume) if os.path.isdir(resume) else resume
            if latest is None:
                raise ValueError(f"--resume {resume}: no checkpoint there")
        if latest:
            has_ticks = any(name.split("/")[0] == "ticks" for name, _ in tf.train.list_variables(latest))
            checkpoint = self.checkpoint if has_ticks else tf.train.Checkpoint(
                **self.trainer.checkpoint_items())  # written before tick numbers were saved
            checkpoint.restore(latest).assert_existing_objects_matched()
            self.log(f"resumed from {latest} at {self.kimg():.3f} kimg, tick {int(self.ticks.numpy())}")
            if self.chief:
                self._forget_after(self.kimg())
        return bool(latest)

    def _forget_after(self, kimg):
        """Drops log rows of kimg beyond the restored snapshot; marks the resume in TensorBoard."""
        for path in [self.outdir / "log.jsonl", *self.outdir.glob("metric-*.jsonl")]:
            if not path.is_file():
                continue
            lines = path.read_text().splitlines(keepends=True)
            kept = [line for line in lines if _row_kimg(line) <= kimg + 1e-9]
            if len(kept) < len(lines):
                atomic_write(path, lambda partial, kept=kept: Path(partial).write_text("".join(kept)))
                self.log(f"{path.name}: dropped {len(lines) - len(kept)} rows after {kimg:.3f} kimg "
                         "(replayed from the snapshot)")
        with self.summary.as_default(step=int(self.trainer.images_seen.numpy())):
            tf.summary.scalar("progress/resumed_at_kimg", kimg)

    def kimg(self):
        return int(self.trainer.images_seen.numpy()) / 1000

    def run(self):
        """Trains to options.kimg; on Ctrl-C or SIGTERM finishes the step, writes a snapshot and
        re-raises (KeyboardInterrupt / SystemExit 143). Returns the last status dict."""
        with use_impl(self.impl):  # the ops every phase, sample grid and metric traces with
            return self._run()

    def _run(self):
        options = self.options
        self.restore()
        dataset = self.strategy.distribute_datasets_from_function(
            _dataset_fn(self.data_dir, self.preset.batch, self.G.z_dim, options.seed, options.mirror,
                        int(self.trainer.step.numpy())))
        iterator = iter(dataset)
        tick_start, tick_kimg = time.time(), self.kimg()
        status = {}
        # Every worker must take part in a snapshot: several machines stop as before.
        multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        with DeferredInterrupts(self.log, enabled=not multi_worker) as interrupts:
            while self.kimg() < options.kimg:
                losses = self.trainer.train_step(*next(iterator))
                done = self.kimg() >= options.kimg
                if done or interrupts.requested or self.kimg() >= tick_kimg + options.kimg_per_tick:
                    self.ticks.assign_add(1)
                    tick = int(self.ticks.numpy())
                    status = self._report(tick, time.time() - tick_start, self.kimg() - tick_kimg,
                                          losses)
                    if done or interrupts.requested or tick % options.snap == 0:
                        path = self.snapshot(measure=not interrupts.requested)
                    tick_start, tick_kimg = time.time(), self.kimg()
                if interrupts.requested:
                    self.log(f"stopped at {self.kimg():.3f} kimg; the same command resumes from {path}")
                    interrupts.stop()
        return status

    def _report(self, tick, seconds, kimg_done, losses):
        if not self.chief:
            return {"tick": tick, "kimg": round(self.kimg(), 3)}
        memory_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        status = {"tick": tick, "kimg": round(self.kimg(), 3), "sec_per_tick": round(seconds, 2),
                  "sec_per_kimg": round(seconds / max(kimg_done, 1e-9), 2),
                  "losses": {k: round(v, 4) for k, v in losses.items()},
                  "skipped_steps": int(self.trainer.skipped_steps.numpy()),
                  "peak_memory_gb": round(memory_gb, 2)}
        loss_text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
        self.log(f"tick {tick:<4d} kimg {status['kimg']:<9.3f} sec/tick {seconds:<7.1f} "
                 f"sec/kimg {status['sec_per_kimg']:<7.2f} {loss_text} "
                 f"skipped {status['skipped_steps']} mem {status['peak_memory_gb']:.2f}GB")
        if not all(np.isfinite(v) for v in losses.values()):
            self.log("warning: a non-finite loss; its gradients were not applied")
        with (self.outdir / "log.jsonl").open("a") as f:
            f.write(json.dumps(status) + "\n")
        with self.summary.as_default(step=int(self.trainer.images_seen.numpy())):
            for name, value in losses.items():
                tf.summary.scalar(f"loss/{name}", value)
            tf.summary.scalar("timing/sec_per_kimg", status["sec_per_kimg"])
        return status

    def sample_grid(self):
        """uint8 grid of G_ema images for the fixed seeds 0..15 (class seed % c_dim)."""
        z = np.concatenate([np.random.RandomState(s).randn(1, self.G_ema.z_dim)
                            for s in range(SAMPLE_SEEDS)]).astype(np.float32)
        c = None
        if self.c_dim:
            c = np.eye(self.c_dim, dtype=np.float32)[np.arange(SAMPLE_SEEDS) % self.c_dim]
        images = to_uint8(self.G_ema(z, c, noise_mode="const"))
        return image_grid(images, 4)

    def snapshot(self, measure=True):
        """Checkpoint, network folder and sample grid of the current state, and with `measure`
        the metrics; returns the checkpoint's path."""
        path = self.manager.save(checkpoint_number=int(self.trainer.images_seen.numpy()))
        if not self.chief:  # every worker must save; only the chief's copy is kept
            tf.io.gfile.rmtree(str(self.checkpoint_dir))
            return path
        save_network({"G": self.G, "D": self.D, "G_ema": self.G_ema}, self.outdir / "network")
        grid = self.sample_grid()
        save_png(grid, self.outdir / f"samples-{int(self.kimg() * 1000):09d}.png")
        with self.summary.as_default(step=int(self.trainer.images_seen.numpy())):
            tf.summary.image("samples", grid[np.newaxis], max_outputs=1)
        self.log(f"snapshot {path}")
        if self.metric_specs and measure:
            self.measure(path)
        return path

    def measure(self, snapshot):
        """Evaluates G_ema on --metrics; one line each to the log, metric-<name>.jsonl, TensorBoard.

        Runs on the chief, whose evaluator the constructor made and checked.
        """
        step = int(self.trainer.images_seen.numpy())
        for spec in self.metric_specs:
            results = self.evaluator.evaluate(self.G_ema, [spec])[spec.name]
            seconds = results.pop("time_s")
            line = {"metric": spec.name, "results": results, "total_time": seconds,
                    "kimg": round(self.kimg(), 3), "snapshot": snapshot}
            with (self.outdir / f"metric-{spec.name}.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
            with self.summary.as_default(step=step):
                for key, value in results.items():
                    tf.summary.scalar(f"metrics/{key}", value)
            values = " ".join(f"{key} {value:.4f}" for key, value in results.items())
            self.log(f"metric {values} ({seconds:.1f} s)")
