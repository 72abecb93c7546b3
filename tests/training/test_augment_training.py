"""Adaptive discriminator augmentation in training (training/ada.py), Freeze-D, and their options."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.network_io import save_network
from stylegan2_tf.training.ada import AdaptiveAugment
from stylegan2_tf.training.setup import RunOptions, augment_settings, check_augment_flags, setup_training
from stylegan2_tf.training.trainer import Trainer, TrainingConfig, trained_variables


@pytest.fixture(scope="module")
def network_size():
    return {"resolution": 16, "channel_max": 8}


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)
    return tf.constant(images), tf.zeros([n, 0]), tf.constant(rng.standard_normal((n, 8)).astype(np.float32))


def ada(**config):
    return AdaptiveAugment(TrainingConfig(**{"augment": "ada", **config}), tf.distribute.get_strategy())


def test_p_moves_by_the_reference_step_every_interval_and_never_below_zero():
    augment = ada(batch=8, ada_interval=4, ada_kimg=0.5, ada_target=0.6)
    step = 8 * 4 / 500  # batch * interval / (ada_kimg * 1000)
    for done in range(1, 4):  # r_t = 0.75 > target, recorded but not yet applied
        augment.record(6.0, 8)
        augment.adjust(done)
        assert float(augment.p.numpy()) == 0.0
    augment.record(6.0, 8)
    augment.adjust(4)
    assert float(augment.p.numpy()) == pytest.approx(step)
    assert augment.status() == {"augment": pytest.approx(step), "r_t": 0.75}
    np.testing.assert_array_equal(augment.signs.numpy(), [0, 0])  # sums restart
    for done in range(5, 13):  # r_t = -1 < target: down, to 0 and not below
        augment.record(-8.0, 8)
        augment.adjust(done)
    assert float(augment.p.numpy()) == 0.0 and augment.status()["r_t"] == -1.0


def test_fixed_and_noaug_keep_p():
    fixed = AdaptiveAugment(TrainingConfig(augment="fixed", augment_p=0.3), tf.distribute.get_strategy())
    fixed.record(8.0, 8)
    fixed.adjust(4)
    assert float(fixed.p.numpy()) == pytest.approx(0.3) and fixed.pipe is not None
    noaug = AdaptiveAugment(TrainingConfig(augment="noaug"), tf.distribute.get_strategy())
    assert noaug.pipe is None and noaug.augmenter(tf.constant([0, 0], tf.int64)) is None
    assert noaug.status() == {}


@pytest.mark.parametrize("config, message", [
    ({"augment": "sometimes"}, "augment must be one of ada, fixed, noaug"),
    ({"augment": "fixed", "augment_p": -0.5}, "p must be >= 0"),
    ({"augment": "fixed", "augment_p": float("nan")}, "p must be >= 0"),
])
def test_bad_augment_settings(config, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveAugment(TrainingConfig(**config), tf.distribute.get_strategy())


@pytest.mark.parametrize("flags, message", [
    ({"aug": "ada", "p": 0.2}, "--p is the probability of --aug=fixed"),
    ({"aug": "fixed"}, "--aug=fixed needs --p"),
    ({"aug": "noaug", "target": 0.5}, "with --aug=noaug give no --target"),
    ({"aug": "noaug", "augpipe": "bgc"}, "with --aug=noaug give no --augpipe"),
])
def test_flag_rules_of_stylegan2_ada(flags, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        check_augment_flags(RunOptions(outdir="x", **flags))
    with pytest.raises(ValueError, match=message):  # before the run folder is made
        setup_training(RunOptions(outdir=str(tmp_path / "run"), **flags))
    assert not (tmp_path / "run").exists()


def test_flags_become_training_settings():
    assert augment_settings(RunOptions(outdir="x", aug="fixed", p=0.4, augpipe="bg"), TrainingConfig()) == {
        "augment": "fixed", "augment_p": 0.4, "augpipe": "bg"}
    assert augment_settings(RunOptions(outdir="x", target=0.7), TrainingConfig()) == {
        "augment": TrainingConfig.augment, "ada_target": 0.7}


def test_training_with_ada_records_r_t_from_d_on_reals(tiny_networks):
    """Every D phase adds the signs of D's logits on the reals; after ada_interval steps p moves
    by one full step (ada_kimg tiny) in the direction r_t says."""
    G, D, G_ema = tiny_networks(seed=1)
    config = TrainingConfig(batch=4, augment="ada", ada_interval=2, ada_kimg=0.008, d_reg_interval=2)
    trainer = Trainer(G, D, G_ema, config)
    signs = []
    for i in range(2):
        images, labels, z = batch(seed=i)
        expected = np.sign(D(images).numpy()).sum()  # p = 0: D sees the reals as they are
        trainer.train_step(images, labels, z)
        signs.append(expected)
    # step 0 ran D main and R1 (both see the same reals), step 1 D main only.
    r_t = (2 * signs[0] + signs[1]) / 12
    assert trainer.ada.status()["r_t"] == pytest.approx(r_t, abs=1e-6)
    assert trainer.ada.status()["augment"] == (1.0 if r_t > 0.6 else 0.0)


def test_freeze_d_leaves_the_first_layers_as_they_are(tiny_networks):
    G, D, G_ema = tiny_networks()
    layers = D.block_layers
    # resnet at 16 px: b16 (fromrgb, conv0, conv1, skip), b8 (conv0, conv1, skip)
    assert [layer.name for layer in layers] == ["fromrgb", "conv0", "conv1", "skip", "conv0", "conv1", "skip"]
    trainer = Trainer(G, D, G_ema, TrainingConfig(batch=4, augment="noaug", freeze_d=3))
    frozen = [v.numpy().copy() for layer in layers[:3] for v in layer.trainable_variables]
    trained = [v.numpy().copy() for layer in layers[3:] for v in layer.trainable_variables]
    for i in range(2):
        trainer.train_step(*batch(seed=i))
    after_frozen = [v.numpy() for layer in layers[:3] for v in layer.trainable_variables]
    after_trained = [v.numpy() for layer in layers[3:] for v in layer.trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(frozen, after_frozen))
    assert not any(np.array_equal(a, b) for a, b in zip(trained, after_trained))
    assert len(trained_variables(D, 0)) == len(D.trainable_variables)


def test_freeze_d_counts_layers_like_stylegan2_ada(tiny_discriminator):
    D = tiny_discriminator(architecture="skip")
    assert [layer.name for layer in D.block_layers] == ["fromrgb", "conv0", "conv1"] * 2
    with pytest.raises(ValueError, match="--freezed=7: this discriminator has 6 layers"):
        trained_variables(D, 7)


def test_ada_state_resumes_exactly(tiny_networks, tmp_path):
    """p, r_t's running sums and r_t are checkpointed: 3 steps, restore, 3 more equals 6 straight."""
    config = TrainingConfig(batch=4, augment="ada", ada_interval=4, ada_kimg=0.016)

    def trainer_at(steps, checkpoint=None):
        G, D, G_ema = tiny_networks(seed=3)
        trainer = Trainer(G, D, G_ema, config)
        state = tf.train.Checkpoint(**trainer.checkpoint_items())
        if checkpoint:
            state.restore(checkpoint).assert_existing_objects_matched()
        for i in range(int(trainer.step.numpy()), steps):
            trainer.train_step(*batch(seed=i))
        return trainer, state

    straight, _ = trainer_at(6)
    first, state = trainer_at(3)
    assert float(first.ada.signs.numpy()[1]) > 0  # mid-interval: sums not yet applied
    resumed, _ = trainer_at(6, state.save(str(tmp_path / "ckpt")))
    for name in ("augment_p", "ada_signs", "ada_r_t"):
        np.testing.assert_array_equal(straight.checkpoint_items()[name].numpy(),
                                      resumed.checkpoint_items()[name].numpy())
    np.testing.assert_array_equal(np.concatenate([v.numpy().ravel() for v in straight.D.trainable_variables]),
                                  np.concatenate([v.numpy().ravel() for v in resumed.D.trainable_variables]))


ADA_PICKLE = Path(__file__).parents[1] / "fixtures" / "ada_pytorch" / "ada_uncond_skip_resnet.pkl"


@pytest.mark.parametrize("flags, expected_p", [({}, 0.123), ({"aug": "fixed", "p": 0.5}, 0.5),
                                               ({"aug": "noaug"}, 0.0)])
def test_resuming_a_stylegan2_ada_pytorch_snapshot_continues_its_p(rgb_dataset, tmp_path, flags, expected_p):
    """The fixture's augment_pipe holds p = 0.123 (tests/fixtures/make_ada_pytorch_fixtures.py)."""
    setup = setup_training(RunOptions(outdir=str(tmp_path / "run"), data=str(rgb_dataset),
                                      resume=str(ADA_PICKLE), batch=4, **flags))
    assert float(setup.trainer.ada.p.numpy()) == pytest.approx(expected_p)
    recorded = json.loads((tmp_path / "run" / "training_options.json").read_text())["training"]
    assert recorded["augment"] == flags.get("aug", "ada")


def test_a_network_of_another_resolution_is_refused_naming_both(rgb_dataset, tmp_path, tiny_networks):
    G, D, G_ema = tiny_networks()  # 16x16 RGB
    save_network({"G": G, "D": D, "G_ema": G_ema}, tmp_path / "net")
    with pytest.raises(ValueError, match=f"the dataset {rgb_dataset} holds 32x32 RGB images without labels, "
                                         f"but --resume {tmp_path / 'net'} has networks for 16x16 RGB images"):
        setup_training(RunOptions(outdir=str(tmp_path / "run"), data=str(rgb_dataset),
                                  resume=str(tmp_path / "net"), batch=4))
