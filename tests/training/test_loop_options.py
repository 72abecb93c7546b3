"""Training options beyond the loop itself: --xla and --metrics at each snapshot."""

import json

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.metrics.feature_nets import MissingWeightsError
from stylegan2_tf.training.loop import TrainingRun
from stylegan2_tf.training.setup import RunOptions
from stylegan2_tf.training.trainer import Trainer, TrainingConfig

TINY = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "mapping_layers": 1, "batch": 4}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return str(digits_dataset(tmp_path_factory.mktemp("data"), resolution=16))


def _trainer(networks, xla):
    G, D, G_ema = networks
    for variable in G.weights + G_ema.weights:  # noise strengths stay 0 (see below)
        if variable.path.endswith("noise_strength"):
            variable.trainable = False
    return Trainer(G, D, G_ema, TrainingConfig(batch=4, style_mixing_prob=0, pl_weight=0,
                                                xla=xla))


def test_an_xla_step_matches_graph_mode(tiny_networks):
    """Same losses and weights where no normal draws enter: XLA's normal sampler gives
    other numbers, so the path-length phase and style mixing are off, and the noise strengths
    stay 0 (their gradients are sums of noise, which would change D's fakes)."""
    rng = np.random.RandomState(0)
    batch = (tf.constant(rng.uniform(-1, 1, (4, 8, 8, 3)), tf.float32), tf.zeros([4, 0]),
             tf.constant(rng.randn(4, 8), tf.float32))
    graph, xla = (_trainer(tiny_networks(seed=0), use_xla) for use_xla in (False, True))
    graph_losses, xla_losses = graph.train_step(*batch), xla.train_step(*batch)
    assert xla_losses.keys() == graph_losses.keys() == {"g_main", "d_main", "d_reg"}
    for name, value in graph_losses.items():
        assert xla_losses[name] == pytest.approx(value, rel=1e-3), name
    # Adam's first step moves each weight by about +-lr whatever the gradient's size, so
    # gradients near 0 may flip; nearly every weight must agree.
    differences = np.concatenate([np.abs(a.numpy() - b.numpy()).ravel() for a, b in zip(
        graph.G.weights + graph.D.weights, xla.G.weights + xla.D.weights)])
    assert np.mean(differences > 1e-4) < 0.01 and differences.max() <= 4.1e-3


def test_xla_runs_trace_with_the_reference_ops(digits, tmp_path):
    options = RunOptions(outdir=str(tmp_path / "run"), data=digits, xla=True, **TINY)
    run = TrainingRun(options, log=lambda line: None)
    assert run.trainer.config.xla and run.impl == "ref"
    with pytest.raises(ValueError, match="--impl=custom"):
        TrainingRun(RunOptions(outdir=str(tmp_path / "bad"), data=digits, xla=True,
                               impl="custom", **TINY))


def test_metrics_are_measured_at_each_snapshot(digits, tmp_path, inception_standin):
    lines = []
    options = RunOptions(outdir=str(tmp_path / "run"), data=digits, kimg=0.008,
                         kimg_per_tick=0.004, snap=1, metrics=("fid32_full",),
                         metric_weights={"inception": str(inception_standin)},
                         metric_cache=str(tmp_path / "cache"), **TINY)
    TrainingRun(options, log=lines.append).run()
    entries = [json.loads(line) for line in
               (tmp_path / "run" / "metric-fid32_full.jsonl").read_text().splitlines()]
    assert [entry["kimg"] for entry in entries] == [0.004, 0.008]
    assert all(np.isfinite(e["results"]["fid32_full"]) and e["results"]["fid32_full"] > 0
               for e in entries)
    assert sum(line.startswith("metric fid32_full") for line in lines) == 2
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1  # the dataset pass ran once


def test_missing_metric_weights_stop_the_run_before_it_starts(digits, tmp_path, monkeypatch):
    monkeypatch.delenv("STYLEGAN2_LPIPS", raising=False)
    with pytest.raises(MissingWeightsError, match="net-lin_vgg_v0.1.pb"):
        TrainingRun(RunOptions(outdir=str(tmp_path / "run"), data=digits,
                               metrics=("ppl_wend",), **TINY))
    assert not (tmp_path / "run").exists()


def test_a_refused_start_leaves_no_run_folder(digits, tmp_path):
    """A start refused after the folder was made (here the batch does not split) removes the
    folders it made; a folder that was there before is the user's and stays."""
    options = {**TINY, "batch": 3}
    with pytest.raises(ValueError, match="batch 3 does not work"):
        TrainingRun(RunOptions(outdir=str(tmp_path / "runs" / "run"), data=digits, **options))
    assert not (tmp_path / "runs").exists()  # and the folders it made above it
    (tmp_path / "kept").mkdir()
    with pytest.raises(ValueError, match="batch 3 does not work"):
        TrainingRun(RunOptions(outdir=str(tmp_path / "kept"), data=digits, **options))
    assert (tmp_path / "kept").is_dir()
