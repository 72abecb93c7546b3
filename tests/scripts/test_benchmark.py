"""scripts/benchmark.py on tiny networks: one JSON line with the FLOPs, rates, machine limits,
memory and (--profile) the time by layer kind; the bytes and copy fractions of `ops`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylegan2_tf import flops
from stylegan2_tf.networks.presets import NetworkSettings, build_generator, from_tf1_names

REPO = Path(__file__).resolve().parents[2]
TINY = {"resolution": 8, "fmap_base": 32, "fmap_max": 16, "latent_size": 8, "mapping_layers": 1}
SMALL_LIMITS = ["--matmul_size=64", "--copy_mb=1"]


def benchmark(*args):
    """(the one JSON line on stdout, stderr) of benchmark.py run as a user runs it."""
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), *args],
                            cwd=REPO, env=environ, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0]), result.stderr


def _flags(**size):
    return [f"--{name}={value}" for name, value in {**TINY, **size}.items()]


def test_generate_reports_flops_limits_memory_and_profile():
    result, stderr = benchmark("generate", "--batch=2", "--repeats=1", "--profile", "--profile_calls=1",
                               *SMALL_LIMITS, *_flags(resolution=16))
    settings = NetworkSettings(**from_tf1_names(fmap_base=32, fmap_max=16, latent_size=8,
                                                dlatent_size=8, mapping_layers=1))
    count = flops.generator_flops(build_generator(settings, 16), 2, noise_mode="const")
    assert result["g_fwd_gflop"] == pytest.approx(count.total / 1e9, rel=1e-3)
    assert result["g_fwd_gflop_by_kind"]["convolution"] == pytest.approx(count["convolution"] / 1e9,
                                                                         rel=1e-3)
    assert result["g_fwd_gflops_per_s"] == pytest.approx(
        result["g_fwd_gflop"] / result["g_fwd_ms"] * 1e3, rel=0.01)
    limits = result["limits"]
    assert limits["matmul_size"] == 64 and limits["matmul_gflops"] > 0 and limits["copy_gbps"] > 0
    assert result["g_fwd_fraction_of_matmul"] == pytest.approx(
        result["g_fwd_gflops_per_s"] / limits["matmul_gflops"], abs=2e-3)
    assert "multiply-add = 2 FLOPs" in result["flops_convention"]
    assert result["peak_rss_mb"] >= result["run_peak_rss_mb"] > 0 and result["rss_built_mb"] > 0
    assert result["intra_op_threads"] == 0  # TensorFlow's default
    kinds = result["profile"]["g_fwd"]["kinds"]
    assert kinds["convolution"]["ms"] > 0 and kinds["convolution"]["gflop"] > 0
    assert "G forward:" in stderr and "convolution" in stderr


def test_train_reports_phase_flops_and_rates_with_threads():
    result, stderr = benchmark("train", "--batch=2", "--repeats=1", "--threads=1", "--nolimits",
                               "--profile", "--profile_calls=1", "--aug=ada", "--p=0.7", *_flags())
    phases = ("g_main", "g_reg", "d_main", "d_reg", "ema")
    assert set(result["phase_gflop"]) == set(result["phase_gflops_per_s"]) == set(phases)
    assert result["train_iter_gflop"] == pytest.approx(sum(result["phase_gflop"].values()), rel=1e-3)
    assert result["train_iter_gflops_per_s"] == pytest.approx(
        result["train_iter_gflop"] / result["train_iter_s"], rel=0.01)
    assert result["train_iter_amortized_gflop"] < result["train_iter_gflop"]
    assert result["train_iter_amortized_s"] < result["train_iter_s"]
    assert result["reg_intervals"] == {"g_reg": 4, "d_reg": 16}
    assert "backward" in result["flops_convention"]
    assert result["limits"] is None and "train_iter_fraction_of_matmul" not in result
    assert result["intra_op_threads"] == result["inter_op_threads"] == 1
    assert set(result["profile"]) == set(phases)
    assert result["profile"]["d_main"]["kinds"]["convolution"]["backward_ms"] > 0
    assert "optimizer" in result["profile"]["ema"]["kinds"]
    assert "train phase g_reg:" in stderr
    assert (result["aug"], result["augpipe"], result["p"]) == ("ada", "bgc", 0.7)
    assert result["augment_overhead"] == pytest.approx(
        result["train_iter_s_augmented"] / result["train_iter_s_plain"] - 1, abs=0.01)  # of rounded times


def test_ops_reports_bytes_and_copy_fractions():
    result, _ = benchmark("ops", "--batch=1", "--repeats=1", *SMALL_LIMITS)
    case = result["cases"]["bias_act_lrelu_c64_256"]
    x, b = 256 * 256 * 64 * 4, 64 * 4
    # Forward: read x and b, write y; backward: read dy and y, write dx and db.
    assert case["fwd_mb"] == pytest.approx((x + b + x) / 1e6, abs=1e-3)
    assert case["fwd_bwd_mb"] == pytest.approx((x + b + x + 2 * x + x + b) / 1e6, abs=1e-3)
    resample = result["cases"]["downsample2d_c64_256to128"]
    assert resample["fwd_bwd_mb"] == pytest.approx(2 * resample["fwd_mb"], abs=2e-3)
    # 4x4 taps, no upsampling: 2 * 16 FLOPs per output element of [1, 128, 128, 64].
    assert resample["fwd_gflop"] == pytest.approx(2 * 16 * 128 * 128 * 64 / 1e9, rel=1e-3)
    assert result["cases"]["upsample2d_c128_64to128"]["fwd_gflop"] == pytest.approx(
        2 * 16 / 4 * 128 * 128 * 128 / 1e9, rel=1e-3)  # 2x upsampling: a quarter of the taps per output
    assert resample["custom_fwd_gflops_per_s"] > 0 and "fwd_gflop" not in case
    copy_gbps, overhead = result["limits"]["copy_gbps"], result["call_overhead_ms"]
    for entry in result["cases"].values():
        assert entry["copy_gbps_at_size"] > 0
        assert entry["custom_fwd_bwd_copy_fraction"] == pytest.approx(
            entry["fwd_bwd_mb"] / copy_gbps / max(entry["custom_fwd_bwd_ms"] - overhead, 1e-3), rel=0.05)
    assert result["min_custom_fwd_bwd_copy_fraction"] == min(
        entry["custom_fwd_bwd_copy_fraction"] for entry in result["cases"].values())
    assert result["limits"]["copy_mb"] == 1
