"""Training setup: a preset with overrides (TF1 flag names) resolved into network and training
settings, each network source (new, this run, another run, a network file), refusals, and
the run folder's training_options.json."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.networks.presets import NetworkSettings
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import (
    ANOTHER_RUN,
    NETWORK,
    NEW,
    OPTIONS_FILE,
    THIS_RUN,
    NetworkSource,
    RunOptions,
    TrainingOptions,
    checkpoint_to_restore,
    resolve_source,
    setup_training,
)
from stylegan2_tf.training.trainer import TrainingConfig

REPO = Path(__file__).resolve().parents[2]
TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return str(digits_dataset(tmp_path_factory.mktemp("data"), resolution=16))


def _checkpoint(folder, number):
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(folder), 3)
    return manager.save(checkpoint_number=number)


def test_a_preset_with_overrides_resolves_to_settings_and_training_options(digits, tmp_path):
    outdir = tmp_path / "run"
    setup = setup_training(RunOptions(outdir=str(outdir), data=digits, cfg="paper256", gamma=0.5,
                                      mixed_precision=False, kimg_per_tick=0.5, **TINY))
    options = setup.options
    # TF1 flag names translated: channel_base = 2 * fmap_base; --latent_size sets z and w.
    assert options.network == NetworkSettings(z_dim=16, w_dim=16, mapping_layers=1, channel_base=128,
                                              channel_max=16, mbstd_group_size=4)
    assert NetworkSettings.of(setup.G, setup.D) == options.network
    # paper256's training settings, the overrides, TrainingConfig's defaults for the rest.
    assert options.training == TrainingConfig(batch=4, lrate=0.0025, r1_gamma=0.5, ema_kimg=20)
    assert setup.trainer.config == options.training
    assert (options.kimg, options.kimg_per_tick, options.snap, options.mirror) == (
        25000, 0.5, TrainingOptions.snap, TrainingOptions.mirror)
    assert (options.source, options.cfg, options.resolution, options.label_size) == (
        NetworkSource(NEW), "paper256", 16, 10)

    record = json.loads((outdir / OPTIONS_FILE).read_text())
    assert record["network"]["channel_base"] == 128 and record["training"]["r1_gamma"] == 0.5
    assert record["source"] == {"kind": NEW, "path": None, "checkpoint": None}
    assert (record["data"], record["cfg"], record["kimg"]) == (digits, "paper256", 25000)
    assert "xla" not in record["training"] and "impl" not in record  # how, not what
    assert (outdir / "networks.json").is_file()


def test_the_cifar_preset_sets_the_length(digits, tmp_path):
    options = setup_training(RunOptions(outdir=str(tmp_path / "a"), data=digits, cfg="cifar",
                                        **TINY)).options
    assert options.kimg == 100000 and options.network.d_architecture == "orig"
    options = setup_training(RunOptions(outdir=str(tmp_path / "b"), data=digits, cfg="cifar", kimg=2,
                                        **TINY)).options
    assert options.kimg == 2


def test_sources_are_resolved_in_order(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    assert resolve_source(run) == NetworkSource(NEW)
    theirs = _checkpoint(other / "checkpoints", 8)
    for resume in (theirs, other / "checkpoints", other):  # a prefix, its folder, the run folder
        assert resolve_source(run, str(resume)) == NetworkSource(ANOTHER_RUN, str(other), theirs)
    for resume in ("nets/ffhq.pkl", str(tmp_path / "nothing")):  # left to network_io.load_network
        assert resolve_source(run, resume) == NetworkSource(NETWORK, resume)
    run.mkdir()
    (run / "networks.json").write_text("{}")  # a run stopped before its first snapshot
    assert resolve_source(run) == NetworkSource(THIS_RUN, str(run))
    assert resolve_source(run, "nets/ffhq.pkl") == NetworkSource(NETWORK, "nets/ffhq.pkl")
    own = _checkpoint(run / "checkpoints", 4)
    assert resolve_source(run, str(other)) == NetworkSource(THIS_RUN, str(run), own)
    assert checkpoint_to_restore(run, NetworkSource(ANOTHER_RUN, str(other), theirs)) == own
    assert checkpoint_to_restore(tmp_path / "new", NetworkSource(ANOTHER_RUN, str(other), theirs)) == theirs


def test_each_network_source(digits, tmp_path):
    first = RunOptions(outdir=str(tmp_path / "a"), data=digits, **TINY)
    run_a = TrainingRun(first, log=lambda line: None)
    snapshot = run_a.snapshot(measure=False)
    settings = NetworkSettings.of(run_a.G, run_a.D)

    again = setup_training(first)
    assert again.options.source == NetworkSource(THIS_RUN, str(tmp_path / "a"), snapshot)
    assert json.loads((tmp_path / "a" / OPTIONS_FILE).read_text())["source"]["kind"] == THIS_RUN

    other = setup_training(RunOptions(**{**first.__dict__, "outdir": str(tmp_path / "b"),
                                         "resume": str(tmp_path / "a")}))
    assert other.options.source == NetworkSource(ANOTHER_RUN, str(tmp_path / "a"), snapshot)
    assert (tmp_path / "b" / "networks.json").read_text() == (tmp_path / "a" / "networks.json").read_text()

    folder = tmp_path / "a" / "network"  # fine-tuning a network folder: its weights, its settings
    tuned = setup_training(RunOptions(outdir=str(tmp_path / "c"), data=digits, resume=str(folder),
                                      batch=4))
    assert tuned.options.source == NetworkSource(NETWORK, str(folder))
    assert tuned.options.network == settings
    for ours, theirs in zip(tuned.G.weights + tuned.D.weights, run_a.G.weights + run_a.D.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    refusals = [
        ({"resume": str(folder / "G_ema.keras")}, "fine-tuning needs G and D, it holds only G_ema"),
        ({"resume": str(tmp_path / "nothing")}, "is no run's checkpoint, nor a network: network .* does not exist"),
        ({"resume": str(folder), "fmap_base": 128},
         "holds networks with other settings: fmap_base is 64 in the network, --fmap_base asks for 128"),
    ]
    for index, (change, message) in enumerate(refusals):
        with pytest.raises(ValueError, match=message):
            setup_training(RunOptions(outdir=str(tmp_path / f"refused{index}"), data=digits,
                                      **{**TINY, **change}))


def test_fine_tuning_an_official_pickle_takes_its_settings(tmp_path, rgb_dataset):
    data = rgb_dataset
    pickle = REPO / "tests" / "fixtures" / "official" / "stylegan2_config_f_tiny.pkl"
    setup = setup_training(RunOptions(outdir=str(tmp_path / "run"), data=str(data), batch=4,
                                      resume=str(pickle)))
    assert setup.options.source == NetworkSource(NETWORK, str(pickle))
    assert setup.options.network == NetworkSettings.of(setup.G, setup.D)
    assert setup.options.network.z_dim == 32 and setup.options.network.conditioning == "ada"


def test_a_run_saved_with_label_mode_continues(digits, tmp_path):
    """A run folder whose networks.json an earlier version wrote (label_mode) starts again."""
    options = RunOptions(outdir=str(tmp_path / "run"), data=digits, cfg="config-f", **TINY)
    setup_training(options)
    path = tmp_path / "run" / "networks.json"
    configs = json.loads(path.read_text())
    mapping = configs["G"]["config"]["mapping_kwargs"]
    assert mapping.pop("conditioning") == "official"
    mapping["label_mode"] = "concat"
    path.write_text(json.dumps(configs))
    again = setup_training(options)
    assert again.options.source == NetworkSource(THIS_RUN, str(tmp_path / "run"))
    assert again.G.mapping.conditioning == again.D.conditioning == "official"
