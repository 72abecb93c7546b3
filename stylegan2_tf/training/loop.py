"""The training loop: ticks, status reports, snapshots and resume of a set-up run.

What to train (preset, overrides, network source, dataset, metrics) is resolved by
training/setup.py; this module only trains it. Progress is counted in images
(kimg). Every tick (`kimg_per_tick`) prints one status line and appends it to
`log.jsonl` and TensorBoard; every `snap` ticks the full training state goes to a
tf.train.CheckpointManager (TF writes the files, then switches the `checkpoint`
index: a run killed at any moment resumes from its last complete snapshot), the
networks to `network/`, a grid of fixed-seed samples to `samples-{kimg}.png` and,
with `metrics`, the metrics of G_ema to `metric-<name>.jsonl`. A run holds its folder's lock
(files.lock_folder) from its start to the end of run(), and first removes what a killed run
left half-written there (remove_leftovers).

Early stops that are no bug end in a RunStopped exception, whose message is one line and
whose `exit_code` scripts/train.py exits with:
  - BadRecordStop (BAD_RECORD_EXIT_CODE): a bad record of the dataset (data/pipeline.py) with
    options.on_bad_record "stop"; the run wrote a snapshot first (the batch holding the
    record is not trained). With "skip" the record is left out and counted: `bad_records` in
    the status line, log.jsonl and the checkpoint (a resume starts after the same records);
  - NoSpaceStop (NO_SPACE_EXIT_CODE): the disk filled up while writing a snapshot or the log;
    the partial files of that snapshot are removed or set aside, and the message names the
    snapshot the run resumes from.
"""

import errno
import json
import os
import re
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan2_tf.data.pipeline import BadRecordTracker
from stylegan2_tf.files import atomic_write, lock_folder, remove_aside_leftovers, remove_path
from stylegan2_tf.inference import image_grid, save_png, to_uint8
from stylegan2_tf.metrics.evaluate import write_metric_line
from stylegan2_tf.network_io import save_network
from stylegan2_tf.ops.native import use_impl
from stylegan2_tf.training.interrupts import DeferredInterrupts
from stylegan2_tf.training.setup import (
    CHECKPOINTS,
    NETWORKS_FILE,
    THIS_RUN,
    check_before_start,
    choose_strategy,
    find_snapshots,
    is_chief,
    setup_training,
)

SAMPLE_SEEDS = 16
# What a run writes aside (files.aside_name) and renames, by folder: the stems of the files.
ASIDE_STEMS = {".": r"log|metric-.+|networks|training_options|samples-\d+|builtin-data",
               "network": r"G|D|G_ema"}
CHECKPOINT_TEMP = re.compile(r"ckpt-\d+_temp.*")  # what tf.train.CheckpointManager writes aside
STATE_TEMP = re.compile(r"checkpoint\.tmp[0-9a-f]{32}")  # TF's write-aside of the `checkpoint` state file
UNREADABLE = "unreadable"  # checkpoints/unreadable/ckpt-N/: snapshots skipped at a resume
BAD_RECORD_EXIT_CODE = 65  # sysexits' EX_DATAERR: stopped at a bad record of the dataset
NO_SPACE_EXIT_CODE = 74  # sysexits' EX_IOERR: the disk is full
BAD_RECORDS_LOGGED = 100  # skipped records named one line each; after these only counted


class RunStopped(Exception):
    """A run that stopped early for a reason its one-line message gives; scripts exit with
    `exit_code`."""

    exit_code = 1


class BadRecordStop(RunStopped):
    """The run stopped at a bad record of its dataset, after writing a snapshot."""

    exit_code = BAD_RECORD_EXIT_CODE


class NoSpaceStop(RunStopped):
    """The disk filled up while the run wrote a snapshot or its log."""

    exit_code = NO_SPACE_EXIT_CODE


def remove_leftovers(outdir):
    """Removes what a killed run left in the run folder `outdir`: its write-aside files
    (ASIDE_STEMS) and TF's ckpt-N_temp folders; returns their paths. Call it holding the
    run folder's lock."""
    outdir = Path(outdir)
    removed = [path for folder, stem in ASIDE_STEMS.items()
               for path in remove_aside_leftovers(outdir / folder, stem)]
    checkpoints = outdir / CHECKPOINTS
    for path in sorted(checkpoints.iterdir()) if checkpoints.is_dir() else ():
        if CHECKPOINT_TEMP.fullmatch(path.name) or STATE_TEMP.fullmatch(path.name):
            remove_path(path)
            removed.append(path)
    return removed


def is_no_space(error):
    """Whether `error` (or an error it was raised from) says the disk or quota is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(error, tf.errors.ResourceExhaustedError) and not any(
                word in str(error).lower() for word in ("oom", "memory", "allocat")):
            return True
        if isinstance(error, (tf.errors.OpError, OSError)) and (
                "no space left" in str(error).lower() or "quota exceeded" in str(error).lower()):
            return True
        error = error.__cause__ or error.__context__
    return False


def describe_device(path):
    """'<device> (mounted on <folder>, <free> free)' of the file system holding `path`, as far
    as it can be told."""
    path = Path(path).resolve()
    mount = next((p for p in [path, *path.parents] if os.path.ismount(p)), Path("/"))
    device = None
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 1 and fields[1] == str(mount):
                    device = fields[0]
    except OSError:
        pass
    try:
        free = f", {shutil.disk_usage(path).free:,} bytes free"
    except OSError:
        free = ""
    return f"{device} (mounted on {mount}{free})" if device else f"{mount}{free}"


def set_aside(prefix):
    """Moves the files of the snapshot `prefix` (<folder>/ckpt-N) into a new
    <folder>/unreadable/ckpt-N[-k]/, names unchanged; returns that folder."""
    prefix = Path(prefix)
    target = prefix.parent / UNREADABLE / prefix.name
    count = 1
    while target.exists():
        target, count = prefix.parent / UNREADABLE / f"{prefix.name}-{count}", count + 1
    target.mkdir(parents=True)
    for path in prefix.parent.glob(f"{prefix.name}.*"):
        path.rename(target / path.name)
    return target


def _row_kimg(line):
    """The kimg of a log row; infinite for a row cut short by a kill (dropped at resume)."""
    try:
        return float(json.loads(line).get("kimg", 0))
    except (ValueError, AttributeError, TypeError):
        return float("inf")


def _first_missing(path):
    """The outermost folder of `path` (itself included) that does not exist yet, or None."""
    missing = None
    for folder in (path.absolute(), *path.absolute().parents):
        if folder.exists():
            return missing
        missing = folder
    return missing


class TrainingRun:
    """Trains what training.setup.setup_training resolves for RunOptions `options`;
    `run()` returns the final status dict.

    Under MultiWorkerMirroredStrategy every worker runs this; only the chief
    writes logs, samples and the network, and the others save their (required)
    checkpoint copies into a scratch folder that is deleted again.
    """

    def __init__(self, options, strategy=None, log=print):
        strategy = strategy or choose_strategy()
        check_before_start(options)  # before the lock makes the run folder
        # A folder this start makes is removed again if the start is refused (a --batch that
        # does not split, a network of another resolution, ...): no run folder that never ran.
        new_folder = _first_missing(Path(options.outdir)) if is_chief(strategy) else None
        # One process at a time trains a run folder (the chief; the other workers write
        # only their scratch folders), from here to the end of run() or close().
        self.lock = lock_folder(options.outdir) if is_chief(strategy) else None
        try:
            if self.lock:
                for path in remove_leftovers(options.outdir):
                    log(f"removed {path}, left by a run that was stopped while writing it")
            self._start(options, strategy, log)
        except BaseException:
            self.close()
            if new_folder:
                shutil.rmtree(new_folder, ignore_errors=True)
            raise

    def _start(self, options, strategy, log):
        self.setup = setup_training(options, strategy)
        self.options = self.setup.options  # the resolved TrainingOptions
        self.outdir = Path(self.options.outdir)
        self.strategy = self.setup.strategy
        self.chief = self.setup.chief
        self.log = log if self.chief else (lambda line: None)
        self.impl = self.setup.impl
        self.G, self.D, self.G_ema = self.setup.G, self.setup.D, self.setup.G_ema
        self.trainer = self.setup.trainer
        with self.strategy.scope():
            self.ticks = tf.Variable(0, dtype=tf.int64, trainable=False, name="ticks")
            # Records of the dataset left out as bad (on_bad_record "skip") before this point.
            self.bad_records = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_records")
            self.checkpoint = tf.train.Checkpoint(**self.trainer.checkpoint_items(), ticks=self.ticks,
                                                  bad_records=self.bad_records)
        self.checkpoint_dir = self.outdir / CHECKPOINTS
        if not self.chief:
            self.checkpoint_dir = self.outdir / f".checkpoints-worker{self.strategy.cluster_resolver.task_id}"
        elif self.options.source.kind == THIS_RUN:
            self._repoint_snapshots(self.options.source.checkpoint)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.checkpoint_dir),
                                                  max_to_keep=3)
        self.summary = (tf.summary.create_file_writer(str(self.outdir / "tensorboard"))
                        if self.chief else tf.summary.create_noop_writer())

    def close(self):
        """Releases the run folder (run() does when it ends)."""
        if getattr(self, "lock", None):
            self.lock.release()
            self.lock = None

    def restore(self):
        """Resumes from the newest readable snapshot in outdir/checkpoints, else the checkpoint
        of the run that --resume names (the source's checkpoint, setup.resolve_source).

        Returns whether training state was restored (a network given to --resume only
        provides the starting networks). Newer snapshots that cannot be read were moved
        to checkpoints/unreadable/ at the start (never deleted; their number is written
        again), and the manager's state lists the snapshots up to this one. Rows of log.jsonl and
        metric-*.jsonl written after the restored snapshot are dropped: the run
        replays those images (from kimg 0 in a run stopped before its first snapshot).
        """
        source = self.options.source
        latest = source.checkpoint
        if latest:
            saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
            # Checkpoints written before tick numbers, bad-record counts and the augmentation's
            # state were saved lack them (those keep their starting values).
            items = {**self.trainer.checkpoint_items(), "ticks": self.ticks, "bad_records": self.bad_records}
            added_later = {"ticks", "bad_records", *self.trainer.ada.checkpoint_items()}
            checkpoint = tf.train.Checkpoint(**{name: item for name, item in items.items()
                                                if name in saved or name not in added_later})
            checkpoint.restore(latest).assert_existing_objects_matched()
            self.log(f"resumed from {latest} at {self.kimg():.3f} kimg, tick {int(self.ticks.numpy())}")
            if self.chief:
                self._forget_after(self.kimg())
        elif self.chief and source.kind == THIS_RUN:
            self.log(f"no snapshot in {self.checkpoint_dir} yet: starting the run {self.outdir} "
                     f"again at kimg 0 from its {NETWORKS_FILE}")
            self._forget_after(0.0)
        return bool(latest)

    def _repoint_snapshots(self, latest):
        """Sets the unreadable snapshots newer than `latest` aside and points the state file the
        manager reads at the snapshots up to `latest` (it may be missing or dangling)."""
        snapshots = self.setup.snapshots
        for prefix, problem in snapshots.skipped:
            self.log(f"skipped the snapshot {prefix}: {problem}; its files are kept in {set_aside(prefix)}")
        if latest is None:
            return
        last = int(Path(latest).name.split("-")[1])
        kept = [f"ckpt-{n}" for n in snapshots.numbers
                if n <= last and (self.checkpoint_dir / f"ckpt-{n}.index").exists()]
        # Names relative to the folder, as the manager writes them. The manager deletes only
        # what its state lists with a time (the oldest beyond max_to_keep): the usual rotation
        # of the intact snapshots, never what was set aside.
        times = [(self.checkpoint_dir / f"{name}.index").stat().st_mtime for name in kept]
        tf.compat.v1.train.update_checkpoint_state(str(self.checkpoint_dir), kept[-1],
                                                   all_model_checkpoint_paths=kept,
                                                   all_model_checkpoint_timestamps=times)

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
        try:
            with use_impl(self.impl):  # the ops every phase, sample grid and metric traces with
                return self._run()
        finally:
            self.close()

    def _run(self):
        options = self.options
        self.restore()
        first_batch, skipped = int(self.trainer.step.numpy()), int(self.bad_records.numpy())
        iterator = iter(self.setup.batches(first_batch, skipped))
        per_replica = options.training.batch // self.strategy.num_replicas_in_sync
        self.tracker = BadRecordTracker(options.data, first_batch * per_replica + skipped)
        self._bad_logged = 0
        tick_start, tick_kimg = time.time(), self.kimg()
        status = {}
        # Every worker must take part in a snapshot: several machines stop as before.
        multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        with DeferredInterrupts(self.log, enabled=not multi_worker) as interrupts:
            while self.kimg() < options.kimg:
                images, labels, z, positions = next(iterator)
                self._check_records(positions)  # may stop (with a snapshot) before this batch
                losses = self.trainer.train_step(images, labels, z)
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

    def _check_records(self, positions):
        """Applies options.on_bad_record to the bad records left out before the batch whose
        positions these are: BadRecordStop after a snapshot, or count and name them."""
        local = [np.asarray(p) for p in self.strategy.experimental_local_results(positions)]
        bad = self.tracker.found(np.concatenate(local))
        if not bad:
            return
        if self.options.on_bad_record == "stop":
            record = bad[0]
            why = self.tracker.why(record)
            more = (f" (and {record.count - 1} more bad record(s) just before it in the shuffled stream)"
                    if record.count > 1 else "")
            path = self._snapshot_now()
            raise BadRecordStop(
                f"corrupt record {record.index} of shard {record.path}{more}: {why}; stopped at "
                f"{self.kimg():.3f} kimg with the snapshot {path}; the same command resumes from "
                f"{Path(path).name} (and stops at this record again), or use --on_bad_record=skip to "
                f"leave such records out (scripts/dataset_tool.py --verify={self.options.data} "
                "lists every bad record)")
        self.bad_records.assign_add(sum(record.count for record in bad))
        for record in bad:
            self._bad_logged += 1
            if self._bad_logged <= BAD_RECORDS_LOGGED:
                self.log(f"skipped corrupt record {record.index} of shard {record.path}"
                         + (f" (and {record.count - 1} more just before it in the shuffled stream)"
                            if record.count > 1 else "")
                         + f": {self.tracker.why(record)}")
            if self._bad_logged == BAD_RECORDS_LOGGED:
                self.log("(the next bad records are only counted: bad_records in the status line)")

    def _snapshot_now(self):
        """The path of a snapshot of the current state: the latest, if it is of this image
        count (a resumed run that stops again at once), else a new one (without metrics)."""
        latest = self.manager.latest_checkpoint
        if latest and Path(latest).name == f"ckpt-{int(self.trainer.images_seen.numpy())}":
            return latest
        return self.snapshot(measure=False)

    def _report(self, tick, seconds, kimg_done, losses):
        if not self.chief:
            return {"tick": tick, "kimg": round(self.kimg(), 3)}
        memory_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        status = {"tick": tick, "kimg": round(self.kimg(), 3), "sec_per_tick": round(seconds, 2),
                  "sec_per_kimg": round(seconds / max(kimg_done, 1e-9), 2),
                  "losses": {k: round(v, 4) for k, v in losses.items()},
                  "skipped_steps": int(self.trainer.skipped_steps.numpy()),
                  "peak_memory_gb": round(memory_gb, 2), "bad_records": int(self.bad_records.numpy()),
                  **self.trainer.ada.status()}
        loss_text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
        if "augment" in status:  # p, and r_t once p was first adjusted
            loss_text += f" augment {status['augment']:.3f}" + (
                "" if status["r_t"] is None else f" r_t {status['r_t']:.3f}")
        self.log(f"tick {tick:<4d} kimg {status['kimg']:<9.3f} sec/tick {seconds:<7.1f} "
                 f"sec/kimg {status['sec_per_kimg']:<7.2f} {loss_text} "
                 f"skipped {status['skipped_steps']} mem {status['peak_memory_gb']:.2f}GB"
                 + (f" bad_records {status['bad_records']}"
                    if status["bad_records"] or self.options.on_bad_record == "skip" else ""))
        if not all(np.isfinite(v) for v in losses.values()):
            self.log("warning: a non-finite loss; its gradients were not applied")
        try:
            with (self.outdir / "log.jsonl").open("a") as f:
                f.write(json.dumps(status) + "\n")
        except OSError as error:
            if not is_no_space(error):
                raise
            raise self._no_space("log.jsonl") from error
        with self.summary.as_default(step=int(self.trainer.images_seen.numpy())):
            for name, value in losses.items():
                tf.summary.scalar(f"loss/{name}", value)
            tf.summary.scalar("timing/sec_per_kimg", status["sec_per_kimg"])
            for name in ("augment", "r_t"):
                if status.get(name) is not None:
                    tf.summary.scalar(f"progress/{name}", status[name])
        return status

    def sample_grid(self):
        """uint8 grid of G_ema images for the fixed seeds 0..15 (class seed % c_dim)."""
        z = np.concatenate([np.random.RandomState(s).randn(1, self.G_ema.z_dim)
                            for s in range(SAMPLE_SEEDS)]).astype(np.float32)
        c_dim = self.G_ema.c_dim
        c = None
        if c_dim:
            c = np.eye(c_dim, dtype=np.float32)[np.arange(SAMPLE_SEEDS) % c_dim]
        images = to_uint8(self.G_ema(z, c, noise_mode="const"))
        return image_grid(images, 4)

    def snapshot(self, measure=True):
        """Checkpoint, network folder and sample grid of the current state, and with `measure`
        the metrics; returns the checkpoint's path. A full disk raises NoSpaceStop, after
        removing (or setting aside) what this snapshot had written in part."""
        number = int(self.trainer.images_seen.numpy())
        try:
            return self._snapshot(number, measure)
        except Exception as error:
            if not is_no_space(error):
                raise
            raise self._no_space(f"snapshot {number}", number) from error

    def _no_space(self, what, number=None):
        """NoSpaceStop for a full disk while writing `what`, once the partial files of snapshot
        `number` are gone: TF's and our write-aside files removed, its ckpt files (unreadable
        if the write stopped inside them) set aside, as a resume would."""
        for path in remove_leftovers(self.outdir) if self.chief else ():
            self.log(f"removed {path}, written in part")
        if number is not None and self.chief:
            for prefix, problem in find_snapshots(self.checkpoint_dir).skipped:
                if Path(prefix).name == f"ckpt-{number}":
                    self.log(f"{prefix} was written in part ({problem}); its files are kept in "
                             f"{set_aside(prefix)}")
        latest = find_snapshots(self.checkpoint_dir).latest if self.chief else None
        resumes = (f"the run resumes from snapshot {Path(latest).name} ({latest})" if latest else
                   "no snapshot was written yet: the run starts again at kimg 0")
        return NoSpaceStop(f"no space left on {describe_device(self.outdir)} while writing {what} "
                           f"in {self.outdir}; {resumes} once there is room")

    def _snapshot(self, number, measure):
        path = self.manager.save(checkpoint_number=number)
        if not self.chief:  # every worker must save; only the chief's copy is kept
            tf.io.gfile.rmtree(str(self.checkpoint_dir))
            return path
        save_network({"G": self.G, "D": self.D, "G_ema": self.G_ema}, self.outdir / "network")
        grid = self.sample_grid()
        save_png(grid, self.outdir / f"samples-{int(self.kimg() * 1000):09d}.png")
        with self.summary.as_default(step=int(self.trainer.images_seen.numpy())):
            tf.summary.image("samples", grid[np.newaxis], max_outputs=1)
        self.log(f"snapshot {path}")
        if self.setup.metric_specs and measure:
            self.measure(path)
        return path

    def measure(self, snapshot):
        """Evaluates G_ema on --metrics; one line each to the log, metric-<name>.jsonl, TensorBoard.

        Runs on the chief, whose evaluator the setup made and checked.
        """
        step = int(self.trainer.images_seen.numpy())
        for spec in self.setup.metric_specs:
            result = self.setup.evaluator.evaluate(self.G_ema, [spec])[spec.name]
            write_metric_line(spec.name, result, self.outdir / f"metric-{spec.name}.jsonl",
                              kimg=round(self.kimg(), 3), snapshot=snapshot)
            seconds = result["time_s"]
            results = {key: value for key, value in result.items() if key != "time_s"}
            with self.summary.as_default(step=step):
                for key, value in results.items():
                    tf.summary.scalar(f"metrics/{key}", value)
            values = " ".join(f"{key} {value:.4f}" for key, value in results.items())
            self.log(f"metric {values} ({seconds:.1f} s)")
