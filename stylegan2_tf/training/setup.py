"""Training setup: what a start of a run trains, resolved apart from the loop that trains it.

`setup_training(options)` turns RunOptions (scripts/train.py's flags) into a TrainingSetup:
  1. the metrics (their weights files checked now, not at the first snapshot), the run
     folder and the dataset (--data, or the built-in digits);
  2. the preset for the dataset's resolution and the number of replicas, with the
     overrides of the options (the official TF1 size names through presets.from_tf1_names):
     the NetworkSettings asked for and the TrainingConfig;
  3. the network source (`resolve_source`) and the networks from it (NETWORK_LOADERS),
     checked against the settings asked for and against the dataset;
  4. the Trainer, and in the run folder networks.json (the networks' configurations,
     written by a run's first start) and training_options.json (this start's resolved
     TrainingOptions, rewritten by every start).
training/loop.py trains what it returns: ticks, reports, snapshots.

Network sources, the first that applies:
  "this run"     the run folder's own newest readable checkpoint (`find_snapshots`): a restart
                 continues the run; a run folder with checkpoint files of which none can be
                 read is refused, not started over on top of them;
  "another run"  --resume names a run's checkpoint (a checkpoint prefix, a folder of
                 checkpoints, or a run folder): its networks and training state;
  "network"      --resume names anything else: what network_io.load_network reads (NVIDIA's
                 TF1 and PyTorch pickles, network folders, ...), whose G and D are fine-tuned;
  "this run"     the run folder's networks.json alone (a run stopped before its first snapshot);
  "new"          networks built from the settings.
A new format of network file needs nothing here (load_network reads it); a new kind of
source is one rule in `resolve_source` and one entry in NETWORK_LOADERS.
"""

import dataclasses
import json
import os
import re
from pathlib import Path

import keras
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.data.pipeline import ON_BAD_RECORD, BadRecordTracker, make_dataset
from stylegan2_tf.data.records import BadRecordError, read_metadata
from stylegan2_tf.files import atomic_write, make_output_folder
from stylegan2_tf.metrics.evaluate import Evaluator, check_weights, parse_metrics
from stylegan2_tf.network_io import load_network_and_state
from stylegan2_tf.networks.presets import (
    DEFAULT_PRESET,
    NetworkSettings,
    build_discriminator,
    build_generator,
    from_tf1_names,
    resolve_preset,
    with_mixed_precision,
)
from stylegan2_tf.ops.native import current_impl, impl_under_xla
from stylegan2_tf.seed_keys import RNG_ALG, latents_key
from stylegan2_tf.training.compatibility import check_fits_dataset, check_same_settings
from stylegan2_tf.training.trainer import Trainer, TrainingConfig

NETWORKS_FILE = "networks.json"
OPTIONS_FILE = "training_options.json"
CHECKPOINTS = "checkpoints"
NEW, THIS_RUN, ANOTHER_RUN, NETWORK = "new", "this run", "another run", "network"


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What one start of a run asks for: scripts/train.py's flags.

    None means not given: the preset's value, else the default of TrainingOptions or
    TrainingConfig (the only homes of defaults). The size overrides carry the official
    TF1 names of the flags (--latent_size sets z and w). impl: the op implementation
    (None: the current setting, ops.current_impl); impl and xla say how this machine
    computes, and are not recorded with the run.
    """

    outdir: str
    data: str | None = None
    cfg: str = DEFAULT_PRESET
    batch: int | None = None
    gamma: float | None = None
    kimg: float | None = None
    kimg_per_tick: float | None = None
    snap: int | None = None
    mirror: bool | None = None
    seed: int | None = None
    fmap_base: int | None = None
    fmap_max: int | None = None
    latent_size: int | None = None
    mapping_layers: int | None = None
    mixed_precision: bool | None = None
    resume: str | None = None
    impl: str | None = None
    xla: bool | None = None
    metrics: tuple = ()
    metric_weights: dict = dataclasses.field(default_factory=dict)
    metric_cache: str | None = None
    on_bad_record: str = "stop"
    aug: str | None = None
    p: float | None = None
    target: float | None = None
    augpipe: str | None = None
    freezed: int | None = None


@dataclasses.dataclass(frozen=True)
class NetworkSource:
    """Where the networks of a start come from (see the module's docstring).

    kind: NEW, THIS_RUN, ANOTHER_RUN or NETWORK; path: the run folder (THIS_RUN,
    ANOTHER_RUN) or what --resume names (NETWORK); checkpoint: the training state to
    restore when the run has no checkpoint of its own, or None.
    """

    kind: str = NEW
    path: str | None = None
    checkpoint: str | None = None

    def describe(self):
        """How messages name the source: 'the run runs/a', '--resume x.pkl', ..."""
        return {NEW: "the new networks", THIS_RUN: f"the run {self.path}",
                ANOTHER_RUN: f"the run {self.path} (--resume)",
                NETWORK: f"--resume {self.path}"}[self.kind]


_SNAPSHOT_FILE = re.compile(r"ckpt-(\d+)\.(index|data-\d{5}-of-(\d{5}))")
STATE_FILE = "checkpoint"  # tf.train.CheckpointManager's index of its snapshots


@dataclasses.dataclass(frozen=True)
class Snapshots:
    """What find_snapshots found in a folder of checkpoints.

    latest: the prefix of the newest readable snapshot, or None; skipped: (prefix, why) of
    each newer snapshot that is not readable, newest first; numbers: the N of every ckpt-N
    with a file there, ascending; present: the names of the snapshot files and the state file.
    """

    latest: str | None = None
    skipped: tuple = ()
    numbers: tuple = ()
    present: tuple = ()


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """One start of a run, resolved; the run folder's training_options.json.

    outdir, data: the run and dataset folders; resolution, channels, label_size: the
    dataset's images. cfg: the preset; network: the settings of the networks trained (those
    of the source's networks when they come from one); training: the TrainingConfig;
    kimg: train until this many thousand images were shown; kimg_per_tick: thousands of
    images between status lines; snap: ticks between snapshots; mirror: random x-flips;
    source: where the networks come from; metrics: measured at each snapshot. How this
    machine computes (the op implementation, XLA, the devices) is not part of it.
    """

    outdir: str
    data: str
    resolution: int
    channels: int
    label_size: int
    network: NetworkSettings
    training: TrainingConfig
    kimg: float
    source: NetworkSource = NetworkSource()
    cfg: str = DEFAULT_PRESET
    kimg_per_tick: float = 4.0
    snap: int = 50
    mirror: bool = False
    metrics: tuple = ()
    on_bad_record: str = "stop"  # a bad record of the dataset: stop (with a snapshot) or skip it

    def to_json(self):
        """The readable JSON of training_options.json (without TrainingConfig.xla: how, not what)."""
        record = dataclasses.asdict(self)
        del record["training"]["xla"]
        return json.dumps(record, indent=2)


@dataclasses.dataclass
class TrainingSetup:
    """What setup_training returns: the resolved options and what was built for them.

    G, D, G_ema: built in strategy.scope(); trainer: their Trainer; chief: whether this
    process writes logs, samples and the kept checkpoints (worker 0); evaluator: the
    metrics' runner on the chief (None without metrics); impl: the op implementation
    to trace with; snapshots: find_snapshots of the run's checkpoints/.
    """

    options: TrainingOptions
    strategy: tf.distribute.Strategy
    chief: bool
    G: keras.Model
    D: keras.Model
    G_ema: keras.Model
    trainer: Trainer
    metric_specs: list
    evaluator: Evaluator | None
    impl: str
    snapshots: Snapshots = Snapshots()

    def batches(self, first_batch, skip_records=0):
        """The distributed dataset of (images, labels, z, positions), from global batch
        `first_batch` on, `skip_records` (bad records left out before it) later still; the
        positions show the bad records left out (data.pipeline.BadRecordTracker)."""
        o = self.options
        return self.strategy.distribute_datasets_from_function(_batches_fn(
            o.data, o.training.batch, self.G.z_dim, o.training.seed, o.mirror, first_batch,
            skip_records))


def choose_strategy():
    """MultiWorkerMirroredStrategy under TF_CONFIG, MirroredStrategy over several GPUs, else default."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes logs, samples and the real checkpoints (worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def _given(**values):
    return {name: value for name, value in values.items() if value is not None}


def requested_settings(options, preset, replicas):
    """(NetworkSettings, TrainingConfig) of `preset` with the overrides of RunOptions `options`."""
    network = dataclasses.replace(preset.network, **from_tf1_names(
        fmap_base=options.fmap_base, fmap_max=options.fmap_max, latent_size=options.latent_size,
        dlatent_size=options.latent_size, mapping_layers=options.mapping_layers))
    mixed = options.mixed_precision
    if mixed is None and not tf.config.list_logical_devices("GPU"):
        mixed = False  # float16 is emulated, slow, on CPUs: the presets' float16 is for GPUs
    if mixed is not None:
        network = with_mixed_precision(network, mixed)
    training = dataclasses.replace(preset.training, **_given(
        batch=options.batch, r1_gamma=options.gamma, seed=options.seed, xla=options.xla,
        freeze_d=options.freezed), **augment_settings(options, preset.training))
    if network.mbstd_group_size is not None:  # groups within each replica's share
        network = dataclasses.replace(network, mbstd_group_size=max(
            min(network.mbstd_group_size, training.batch // replicas), 1))
    return network, training


def check_augment_flags(options):
    """Raises ValueError for a combination of --aug, --p, --target and --augpipe that
    stylegan2-ada-pytorch's rules refuse (presets leave the augmentation at TrainingConfig's)."""
    aug = options.aug or TrainingConfig.augment
    if options.p is not None and aug != "fixed":
        raise ValueError(f"--p is the probability of --aug=fixed; with --aug={aug} give no --p")
    if aug == "fixed" and options.p is None:
        raise ValueError("--aug=fixed needs --p, the probability multiplier of the augmentations")
    if options.target is not None and aug != "ada":
        raise ValueError(f"--target is the r_t that --aug=ada aims at; with --aug={aug} give no --target")
    if options.augpipe is not None and aug == "noaug":
        raise ValueError("--augpipe names the augmentations; with --aug=noaug give no --augpipe")


def augment_settings(options, training):
    """The TrainingConfig fields of --aug, --p, --target and --augpipe (checked by
    check_augment_flags) over TrainingConfig `training`."""
    return _given(augment=options.aug or training.augment, augment_p=options.p, ada_target=options.target,
                  augpipe=options.augpipe)


def find_snapshots(folder):
    """The Snapshots of a folder of checkpoints, found from its ckpt-N.index and .data files
    (not from the `checkpoint` state file, which a kill or a hand can leave dangling).

    A snapshot is readable when its index and every .data shard are there and every tensor
    reads back (TF checks each one's checksum); the newest such is `latest`.
    """
    folder = Path(folder)
    files, present = {}, []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            match = _SNAPSHOT_FILE.fullmatch(path.name)
            if match:
                files.setdefault(int(match[1]), set()).add(path.name)
            if match or path.name == STATE_FILE:
                present.append(path.name)
    skipped = []
    for number in sorted(files, reverse=True):
        prefix = folder / f"ckpt-{number}"
        problem = _snapshot_problem(prefix, files[number])
        if problem is None:
            return Snapshots(str(prefix), tuple(skipped), tuple(sorted(files)), tuple(present))
        skipped.append((str(prefix), problem))
    return Snapshots(None, tuple(skipped), tuple(sorted(files)), tuple(present))


def _snapshot_problem(prefix, names):
    """Why the snapshot `prefix` (whose files in its folder are `names`) cannot be read, or None."""
    index = f"{prefix.name}.index"
    if index not in names:
        return f"{index} is missing"
    shards = sorted(name for name in names if name != index)
    total = int(_SNAPSHOT_FILE.fullmatch(shards[0])[3]) if shards else 1
    missing = [name for name in (f"{prefix.name}.data-{i:05d}-of-{total:05d}" for i in range(total))
               if name not in names]
    if missing:
        return f"{', '.join(missing)} is missing"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError, OSError) as error:  # a cut .data: IndexError
        text = getattr(error, "message", None) or str(error)
        return f"unreadable ({type(error).__name__}: {text.strip().splitlines()[0][:200]})"
    return None


def run_checkpoint(path):
    """The checkpoint `path` names: a checkpoint prefix, or the newest readable one in a folder
    of checkpoints or in a run folder's checkpoints/; None when it names none."""
    if os.path.isdir(path):
        return (find_snapshots(path).latest or find_snapshots(os.path.join(path, CHECKPOINTS)).latest)
    return path if os.path.exists(f"{path}.index") else None


def resolve_source(outdir, resume=None, snapshots=None):
    """The NetworkSource of a start of the run in `outdir` with --resume `resume` (see the
    module's docstring for the order); `snapshots`: find_snapshots of its checkpoints/, when
    already found.

    A run folder with snapshot files of which none is readable raises ValueError naming
    them: starting it over in place would overwrite them.
    """
    outdir = Path(outdir)
    folder = outdir / CHECKPOINTS
    snapshots = find_snapshots(folder) if snapshots is None else snapshots
    if snapshots.latest:
        return NetworkSource(THIS_RUN, str(outdir), snapshots.latest)
    if snapshots.present:
        why = "; ".join(f"{Path(prefix).name}: {problem}" for prefix, problem in snapshots.skipped)
        raise ValueError(f"{folder} holds {', '.join(snapshots.present)} but no readable snapshot"
                         f"{f' ({why})' if why else ''}; not starting the run {outdir} over on top of "
                         f"them: move {folder} away to start it again from kimg 0, or use another --outdir")
    if resume:
        checkpoint = run_checkpoint(resume)
        if checkpoint:  # the run folder holding a checkpoints/ folder
            return NetworkSource(ANOTHER_RUN, str(Path(checkpoint).parent.parent), checkpoint)
        return NetworkSource(NETWORK, resume)
    if (outdir / NETWORKS_FILE).exists():
        return NetworkSource(THIS_RUN, str(outdir))
    return NetworkSource(NEW)


def checkpoint_to_restore(outdir, source):
    """The run's own newest readable checkpoint, else the source's (another run's), else None."""
    return find_snapshots(Path(outdir) / CHECKPOINTS).latest or source.checkpoint


def _new_networks(source, settings, metadata):
    """((G, D, G_ema) built from NetworkSettings `settings`, G_ema a copy of G; no state)."""
    shape = (metadata["resolution"], metadata["channels"], metadata["label_size"])
    G, G_ema = build_generator(settings, *shape), build_generator(settings, *shape)
    G_ema.set_weights(G.get_weights())
    return (G, build_discriminator(settings, *shape), G_ema), {}


def _run_networks(source, settings, metadata):
    """(the networks of a run folder's networks.json, G_ema a copy of G (as a new run starts;
    the checkpoint restores them and the training state); built from the settings for runs
    older than networks.json, {})."""
    path = Path(source.path) / NETWORKS_FILE
    if not path.exists():
        return _new_networks(source, settings, metadata)
    G, D = read_networks_file(path)
    G_ema = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(G))
    G_ema.set_weights(G.get_weights())
    return (G, D, G_ema), {}


MAX_NETWORKS_FILE_BYTES = 64 << 20  # two Keras configurations: a few kilobytes


def read_networks_file(path):
    """(G, D) built from a run's networks.json; ValueError naming the file for one that is too
    large, cut, not JSON or not the configurations of a Generator and a Discriminator."""
    from stylegan2_tf.networks.discriminator import Discriminator
    from stylegan2_tf.networks.generator import Generator

    fix = (f"it keeps the configurations of the run's networks: restore it from a copy, or move "
           f"the run folder {path.parent} away to start the run again")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_NETWORKS_FILE_BYTES + 1)
        if len(data) > MAX_NETWORKS_FILE_BYTES:
            raise ValueError(f"larger than {MAX_NETWORKS_FILE_BYTES >> 20} MiB")
        configs = json.loads(data.decode())
        if not isinstance(configs, dict) or not {"G", "D"} <= set(configs):
            raise ValueError('expected {"G": ..., "D": ...}')
        networks = [keras.saving.deserialize_keras_object(configs[name]) for name in ("G", "D")]
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}; {fix}") from error
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as error:
        why = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a readable {NETWORKS_FILE} ({why}); {fix}") from error
    for network, name, kind in zip(networks, ("G", "D"), (Generator, Discriminator)):
        if not isinstance(network, kind):
            raise ValueError(f"{path} is not a readable {NETWORKS_FILE} ({name} does not describe a "  # noqa: TRY004
                             f"{kind.__name__}); {fix}")
    return networks


def _file_networks(source, settings, metadata):
    """((G, D, G_ema) of a network that load_network reads, to fine-tune; the state it holds,
    network_io.load_network_and_state's)."""
    try:
        nets, state = load_network_and_state(source.path)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"--resume {source.path} is no run's checkpoint, nor a network: {error}") from error
    if nets["G"] is None or nets["D"] is None:
        raise ValueError(f"--resume {source.path}: fine-tuning needs G and D, it holds only G_ema")
    return (nets["G"], nets["D"], nets["G_ema"]), state


NETWORK_LOADERS = {NEW: _new_networks, THIS_RUN: _run_networks, ANOTHER_RUN: _run_networks,
                   NETWORK: _file_networks}


def check_before_start(options):
    """The metric specs of `options`, once their weights files are found: a run that would
    fail at its first snapshot fails before its folder is made (MissingWeightsError), as do
    augmentation flags that do not go together (ValueError)."""
    check_augment_flags(options)
    metric_specs = parse_metrics(",".join(options.metrics))
    check_weights(metric_specs, options.metric_weights)
    return metric_specs


def setup_training(options, strategy=None):
    """Resolves RunOptions `options` and builds what training them needs (see the module's
    docstring); returns a TrainingSetup. Raises ValueError or FileNotFoundError (metrics'
    MissingWeightsError) naming what does not fit, before anything is trained."""
    strategy = strategy or choose_strategy()
    chief = is_chief(strategy)
    xla = TrainingConfig.xla if options.xla is None else options.xla
    impl = impl_under_xla(options.impl or current_impl()) if xla else options.impl or current_impl()
    metric_specs = check_before_start(options)
    if options.on_bad_record not in ON_BAD_RECORD:
        raise ValueError(f"--on_bad_record must be one of {', '.join(ON_BAD_RECORD)}, got {options.on_bad_record!r}")
    try:
        outdir = make_output_folder(options.outdir)
    except ValueError as error:
        raise ValueError(f"--outdir: {error}") from error
    builtin = outdir / ("builtin-data" if chief else
                        f".builtin-data-worker{strategy.cluster_resolver.task_id}")
    data = options.data or str(digits_dataset(builtin))
    metadata = read_metadata(data)
    evaluator = None
    if metric_specs and chief:  # fail now on what would fail at the 1st snapshot
        evaluator = Evaluator(data, options.metric_weights, options.metric_cache, progress=False)
        evaluator.prepare(None, metric_specs)

    replicas = strategy.num_replicas_in_sync
    preset = resolve_preset(options.cfg, metadata["resolution"], replicas)
    requested, training = requested_settings(options, preset, replicas)
    snapshots = find_snapshots(outdir / CHECKPOINTS)
    source = resolve_source(outdir, options.resume, snapshots)
    keras.utils.set_random_seed(training.seed)  # the seed also fixes the initial weights
    with strategy.scope():
        (G, D, G_ema), state = NETWORK_LOADERS[source.kind](source, requested, metadata)
    if state.get("augment_p") is not None and training.augment == "ada" and options.p is None:
        training = dataclasses.replace(training, augment_p=state["augment_p"])  # continue its p
    network = NetworkSettings.of(G, D)
    if source.kind != NEW:
        fine_tuning = source.kind == NETWORK  # a network file: only flags given contradict it
        check_same_settings(network, requested, options, source.describe(), whole_preset=not fine_tuning,
                            held_in="the network" if fine_tuning else "the run")
        check_fits_dataset(G_ema, metadata, data, source.describe())
    trainer = Trainer(G, D, G_ema, training, strategy)

    resolved = TrainingOptions(
        outdir=str(outdir), data=str(data), resolution=metadata["resolution"],
        channels=metadata["channels"], label_size=metadata["label_size"], network=network,
        training=training, kimg=preset.kimg if options.kimg is None else options.kimg,
        source=source, cfg=options.cfg, metrics=tuple(spec.name for spec in metric_specs),
        on_bad_record=options.on_bad_record,
        **_given(kimg_per_tick=options.kimg_per_tick, snap=options.snap, mirror=options.mirror))
    if chief:
        check_first_batch(resolved)  # before networks.json: a lying dataset leaves none behind
        _write_run_files(resolved, G, D)
    return TrainingSetup(resolved, strategy, chief, G, D, G_ema, trainer, metric_specs, evaluator,
                         impl, snapshots)


def check_first_batch(options):
    """Reads the first batch of the dataset of TrainingOptions `options` (in dataset order) and
    checks each record (data.pipeline); with on_bad_record "stop", a bad one raises
    BadRecordError naming its shard file, its index there and why."""
    dataset = make_dataset(options.data, options.training.batch, options.training.seed,
                           shuffle_buffer=0, positions=True)
    tracker = BadRecordTracker(options.data)
    bad = tracker.found(next(iter(dataset))[2].numpy())
    if bad and options.on_bad_record == "stop":
        raise BadRecordError(bad[0].path, bad[0].index, f"{tracker.why(bad[0])} (in the first batch; "
                             "--on_bad_record=skip leaves such records out)")


def _write_run_files(options, G, D):
    """networks.json (a run's first start: later starts rebuild these networks whatever the
    flags say) and training_options.json (every start)."""
    outdir = Path(options.outdir)
    networks = outdir / NETWORKS_FILE
    if not networks.exists():
        configs = {"G": keras.saving.serialize_keras_object(G),
                   "D": keras.saving.serialize_keras_object(D)}
        atomic_write(networks, lambda partial: Path(partial).write_text(json.dumps(configs, indent=1)))
    text = options.to_json()
    atomic_write(outdir / OPTIONS_FILE, lambda partial: Path(partial).write_text(text))


def _batches_fn(data_dir, batch, z_dim, seed, mirror, first_batch, skip_records=0):
    """Per-replica (images, labels, z, positions) batches from global batch `first_batch` on (a
    resumed run sees what an uninterrupted one would); z of batch b from seed_keys.latents_key."""
    def fn(context):
        dataset = make_dataset(data_dir, batch, seed, mirror=mirror, input_context=context,
                               skip_batches=first_batch, positions=True, skip_records=skip_records)
        per_replica = context.get_per_replica_batch_size(batch)
        pipeline = context.input_pipeline_id

        def add_latents(index, item):
            images, labels, positions = item
            z = tf.random.stateless_normal([per_replica, z_dim], latents_key(seed, index, pipeline),
                                           alg=RNG_ALG)
            return images, labels, z, positions

        return dataset.enumerate(start=first_batch).map(add_latents)
    return fn
