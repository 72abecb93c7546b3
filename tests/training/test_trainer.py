"""The training step: phases, lazy regularization, EMA, non-finite guard, replicas."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.training.trainer import Trainer, TrainingConfig, lazy_adam

REPO = Path(__file__).resolve().parents[2]


# Grayscale 8x8 images, 8 channels at 4x4 and 8x8 (the networks of the subprocess below too).
SIZE = {"channels": 1, "channel_max": 8}


@pytest.fixture(scope="module")
def network_size():
    return SIZE


def batch(n=4, c_dim=0, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32)
    labels = np.eye(max(c_dim, 1), dtype=np.float32)[rng.integers(0, max(c_dim, 1), n)][:, :c_dim]
    z = rng.standard_normal((n, 8)).astype(np.float32)
    return tf.constant(images), tf.constant(labels), tf.constant(z)


def test_lazy_adam_correction():
    opt = lazy_adam(TrainingConfig(lrate=0.002, betas=(0.0, 0.99)), 16)
    ratio = 16 / 17
    assert np.isclose(float(opt.learning_rate), 0.002 * ratio)
    assert np.isclose(opt.beta_2, 0.99 ** ratio) and opt.beta_1 == 0.0


def test_iterations_run_every_phase_and_update_everything(tiny_networks):
    G, D, G_ema = tiny_networks(c_dim=3)
    config = TrainingConfig(batch=4, g_reg_interval=2, d_reg_interval=2, ema_kimg=0.001)
    trainer = Trainer(G, D, G_ema, config)
    before = [w.numpy().copy() for w in (G.trainable_weights + D.trainable_weights + G_ema.trainable_weights)]
    phases = [trainer.train_step(*batch(c_dim=3, seed=i)) for i in range(3)]
    assert [sorted(p) for p in phases] == [["d_main", "d_reg", "g_main", "g_reg"],
                                           ["d_main", "g_main"],
                                           ["d_main", "d_reg", "g_main", "g_reg"]]
    assert all(np.isfinite(v) for p in phases for v in p.values())
    after = G.trainable_weights + D.trainable_weights + G_ema.trainable_weights
    changed = [not np.array_equal(b, a.numpy()) for b, a in zip(before, after)]
    assert np.mean(changed) > 0.9
    assert int(trainer.step.numpy()) == 3 and int(trainer.images_seen.numpy()) == 12
    assert float(trainer.pl_mean.numpy()) > 0 and int(trainer.skipped_steps.numpy()) == 0
    assert float(np.abs(G.mapping.w_avg.numpy()).sum()) > 0
    # EMA with a tiny half-life follows G closely.
    for ema, current in zip(G_ema.trainable_weights, G.trainable_weights):
        np.testing.assert_allclose(ema.numpy(), current.numpy(), atol=1e-3)


def test_non_finite_gradients_are_not_applied(tiny_networks):
    G, D, G_ema = tiny_networks()
    trainer = Trainer(G, D, G_ema, TrainingConfig(batch=4, pl_weight=0, r1_gamma=0))
    images, labels, z = batch()
    d_before = [w.numpy().copy() for w in D.trainable_weights]
    trainer.train_step(images * np.float32(np.nan), labels, z)
    assert int(trainer.skipped_steps.numpy()) == 1  # D main saw NaN reals; G main was fine
    for b, a in zip(d_before, D.trainable_weights):
        np.testing.assert_array_equal(b, a.numpy())


def test_two_replicas_give_the_same_update_as_one():
    """2 logical CPU devices and 1 device, same global batch and latents -> same weights, and the
    same sums of ADA's r_t (p = 0 at the first step: D sees the reals as they are)."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        sys.path[:0] = sys.argv[1:3]
        from conftest import build_networks
        from test_trainer import SIZE, batch
        from stylegan2_tf.training.trainer import Trainer, TrainingConfig
        results, signs = [], []
        for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
            strategy = tf.distribute.MirroredStrategy(devices)
            tf.keras.utils.set_random_seed(0)
            with strategy.scope():
                G, D, G_ema = build_networks(**SIZE)
            config = TrainingConfig(batch=4, style_mixing_prob=0, pl_weight=0)
            trainer = Trainer(G, D, G_ema, config, strategy)
            images, labels, z = batch()
            dist = strategy.experimental_distribute_values_from_function(
                lambda ctx: tuple(t[ctx.replica_id_in_sync_group::ctx.num_replicas_in_sync]
                                  for t in (images, labels, z)))
            # Noise is random per replica: disable it for an exact comparison.
            for layer in G.synthesis.blocks:
                for conv in (layer.conv0, layer.conv1):
                    if conv is not None:
                        conv.use_noise = False
            trainer.train_step(*dist)
            results.append(np.concatenate([w.numpy().ravel() for w in G.trainable_weights + D.trainable_weights]))
            signs.append(trainer.ada.signs.numpy())  # ADA's r_t sums: every replica's reals
        print("MAXDIFF", float(np.abs(results[0] - results[1]).max()), float(np.abs(results[0]).max()))
        print("SIGNS", *signs[0], *signs[1])
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent),
                          str(Path(__file__).parents[1])], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("MAXDIFF"))
    diff, scale = map(float, line.split()[1:])
    assert diff <= 1e-4 * max(scale, 1.0), line
    signs = [float(v) for v in next(x for x in out.stdout.splitlines() if x.startswith("SIGNS")).split()[1:]]
    assert signs[:2] == signs[2:] and signs[1] == 8, signs  # D main and R1 saw the 4 reals: 8 signs


def test_training_is_a_function_of_the_seed(tiny_networks):
    """Same initial weights, batches and seed -> the same weights (noise, mixing, PL included)."""
    results = []
    for seed in (5, 5, 6):
        G, D, G_ema = tiny_networks()
        if results:
            for model, weights in zip((G, D, G_ema), results[0][1]):
                model.set_weights(weights)
        else:
            initial = [m.get_weights() for m in (G, D, G_ema)]
        trainer = Trainer(G, D, G_ema, TrainingConfig(batch=4, seed=seed, g_reg_interval=1,
                                                      d_reg_interval=1))
        for i in range(2):
            trainer.train_step(*batch(seed=i))
        results.append((np.concatenate([w.numpy().ravel() for w in G.trainable_weights]),
                        initial))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert not np.array_equal(results[0][0], results[2][0])


def test_w_avg_follows_every_training_mapping_call(tiny_networks):
    """w_avg after one iteration is the references' lerp sequence over the phases that run G:
    G main (the batch's z), G reg (its first half, pl_batch_shrink 2) and D main (the batch)."""
    G, D, G_ema = tiny_networks()
    config = TrainingConfig(batch=4, lrate=0.0)  # weights stay put: the mapping is fixed
    trainer = Trainer(G, D, G_ema, config)
    images, labels, z = batch()
    beta = G.mapping.w_avg_beta
    expected = G.mapping.w_avg.numpy().astype(np.float64)
    for latents in (z, z[:2], z):  # style mixing's second mapping does not count
        mean = G.mapping(latents)[:, 0].numpy().astype(np.float64).mean(axis=0)
        expected = mean + (expected - mean) * beta
    assert sorted(trainer.train_step(images, labels, z)) == ["d_main", "d_reg", "g_main", "g_reg"]
    np.testing.assert_allclose(G.mapping.w_avg.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert float(np.abs(expected).sum()) > 0
