"""The Bazel route builds loadable custom-op libraries, and leaves no server behind.

Runs .ci/bazel_build.sh (bazel build //:_upfirdn2d.so //:_bias_act.so
//:_bilinear_sample.so) into a
temporary directory, then loads each library with tf.load_op_library in a fresh
interpreter and runs a tiny forward call; checks that STYLEGAN2_TF_CUDA_ARCHS
reaches the nvcc genrules. Skipped when `bazel` is not on PATH.

Bazel runs against an output base of its own (one per pytest worker, under
pytest's temporary directory), with a short idle time, and its server is shut
down after the module: a plain `bazel` command would leave a server running for
3 hours (--max_idle_secs=10800). The fresh output base means a full build every
run: ~80 s on 2 cores; the other checks take ~10 s each (@local_tf re-reads
TensorFlow when STYLEGAN2_TF_CUDA_ARCHS changes).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "bazel_build.sh"
sys.path.insert(0, str(REPO_ROOT))
from custom_ops import build_cuda

# A server outlives a killed test run by at most this long.
IDLE_S = 120

pytestmark = pytest.mark.skipif(
    shutil.which("bazel") is None,
    reason="bazel is not on PATH (install Debian's bazel-bootstrap, or run .ci/bazel_build.sh)",
)

# Loads the libraries and runs one tiny call of each; prints a JSON report.
_CHECK = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    ops_dir = sys.argv[1]
    report = {}

    up = tf.load_op_library(os.path.join(ops_dir, "_upfirdn2d.so"))
    x = tf.reshape(tf.range(2 * 3 * 4 * 5, dtype=tf.float32), [2, 3, 4, 5])
    y = up.style_gan2_upfirdn2d(x=x, f=tf.constant([[1.0]]))
    y_pad = up.style_gan2_upfirdn2d(
        x=x, f=tf.constant([[1.0]]), up_x=2, up_y=2, pad_x0=1, pad_y1=2
    )
    report["upfirdn2d"] = {
        "registered": op_def_registry.get("StyleGAN2>Upfirdn2d") is not None,
        "shape": y.shape.as_list(),
        "identity": bool(np.array_equal(y.numpy(), x.numpy())),
        "up_pad_shape": y_pad.shape.as_list(),
    }

    ba = tf.load_op_library(os.path.join(ops_dir, "_bias_act.so"))
    x = tf.constant([[1.0, -2.0, 3.0], [0.5, 0.0, -1.5]])
    b = tf.constant([10.0, 20.0, 30.0])
    empty = tf.zeros([0])
    y, _ = ba.style_gan2_bias_act(x=x, b=b, xref=empty, yref=empty, dy=empty, act=1)
    report["bias_act"] = {
        "registered": op_def_registry.get("StyleGAN2>BiasAct") is not None,
        "shape": y.shape.as_list(),
        "adds_bias": bool(np.allclose(y.numpy(), x.numpy() + b.numpy()[None, :])),
    }

    bs = tf.load_op_library(os.path.join(ops_dir, "_bilinear_sample.so"))
    x = tf.reshape(tf.range(2 * 3 * 4 * 1, dtype=tf.float32), [2, 3, 4, 1])
    y = bs.style_gan2_bilinear_sample(x=x, ix=tf.fill([2, 1, 1], 1.5), iy=tf.fill([2, 1, 1], 1.0))
    report["bilinear_sample"] = {
        "registered": op_def_registry.get("StyleGAN2>BilinearSample") is not None,
        "values": y.numpy().reshape(-1).tolist(),
    }
    print("@@REPORT@@" + json.dumps(report))
    """
)


def _servers(output_base):
    """Pids of live Bazel servers of `output_base` (server.pid.txt, or --output_base= in argv)."""
    pids = set()
    pid_file = output_base / "server" / "server.pid.txt"
    if pid_file.exists():
        pids.add(int(pid_file.read_text().strip() or 0))
    flag = f"--output_base={output_base}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if flag in (proc / "cmdline").read_bytes().split(b"\0"):
                pids.add(int(proc.name))
        except OSError:
            continue
    return {pid for pid in pids if pid and Path(f"/proc/{pid}").exists()}


class Bazel:
    """`bazel` with this module's startup options, from the workspace root."""

    def __init__(self, output_base):
        self.output_base = output_base
        self.startup = [f"--output_base={output_base}", f"--max_idle_secs={IDLE_S}"]
        # Build against the TensorFlow of the interpreter that will load the result;
        # leave the workspace's bazel-* links alone (they would point into a temp dir).
        self.env = dict(
            os.environ,
            PYTHON_BIN_PATH=os.environ.get("PYTHON_BIN_PATH", sys.executable),
            BAZEL_STARTUP_ARGS=" ".join(self.startup),
            BAZEL_ARGS=f"{os.environ.get('BAZEL_ARGS', '')} --symlink_prefix=/".strip(),
        )

    def run(self, *args, timeout=1800, **env):
        return subprocess.run(["bazel", *self.startup, *args], cwd=REPO_ROOT, env=dict(self.env, **env),
                              capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def bazel(tmp_path_factory):
    """Bazel with its own output base; afterwards its server is shut down and checked gone."""
    runner = Bazel(tmp_path_factory.mktemp("bazel-output-base"))
    yield runner
    shutdown = runner.run("shutdown", timeout=300)
    assert shutdown.returncode == 0, f"bazel shutdown failed:\n{shutdown.stderr[-4000:]}"
    deadline = time.monotonic() + 30
    while _servers(runner.output_base) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _servers(runner.output_base)
    assert not left, f"Bazel server(s) {sorted(left)} of {runner.output_base} still running after shutdown"


@pytest.fixture(scope="module")
def ops_dir(bazel, tmp_path_factory):
    out = tmp_path_factory.mktemp("bazel-ops")
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(out)],
        cwd=REPO_ROOT,
        env=bazel.env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{BUILD_SCRIPT.name} failed (rc {proc.returncode}):\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
    )
    for lib in ("_upfirdn2d.so", "_bias_act.so", "_bilinear_sample.so"):
        assert (out / lib).is_file(), f"{lib} was not copied to {out}"
    assert _servers(bazel.output_base), "the build ran without a Bazel server of its output base"
    return out


@pytest.fixture(scope="module")
def report(ops_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("STYLEGAN2_TF_OPS_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK, str(ops_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@REPORT@@")]
    assert proc.returncode == 0 and lines, (
        f"loading the Bazel-built libraries failed (rc {proc.returncode}):\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    )
    return json.loads(lines[-1][len("@@REPORT@@") :])


def test_upfirdn2d_library(report):
    r = report["upfirdn2d"]
    assert r["registered"]
    assert r["shape"] == [2, 3, 4, 5]
    assert r["identity"], "upfirdn2d with a [[1]] filter and up=down=1 must return x"
    # (in * up + pad0 + pad1 - taps) / down + 1: h 3*2+0+2-1+1 = 8, w 4*2+1+0-1+1 = 9
    assert r["up_pad_shape"] == [2, 8, 9, 5]


def test_bias_act_library(report):
    r = report["bias_act"]
    assert r["registered"]
    assert r["shape"] == [2, 3]
    assert r["adds_bias"], "bias_act linear must return x + b"


def test_bilinear_sample_library(report):
    r = report["bilinear_sample"]
    assert r["registered"]
    # Row 1 of each image, halfway between columns 1 and 2: (5 + 6) / 2 and (17 + 18) / 2.
    assert r["values"] == [5.5, 17.5]


@pytest.mark.skipif(build_cuda.find_nvcc() is None, reason="nvcc not found (set NVCC or CUDA_HOME)")
def test_cuda_archs_reach_the_nvcc_genrules(bazel):
    """STYLEGAN2_TF_CUDA_ARCHS, read by @local_tf, is in the command of each nvcc genrule."""
    result = bazel.run("query", "--output=build",
                       "//:upfirdn2d_upfirdn2d_kernel_nvcc + //:bias_act_bias_act_kernel_nvcc",
                       STYLEGAN2_TF_CUDA_ARCHS="8.6;9.0+PTX")
    assert result.returncode == 0, result.stderr[-8000:]
    commands = [line for line in result.stdout.splitlines() if line.strip().startswith("cmd = ")]
    assert len(commands) == 2, result.stdout
    for command in commands:
        assert [word for word in command.split() if word.startswith("-gencode")] == [
            "-gencode=arch=compute_86,code=sm_86",
            "-gencode=arch=compute_90,code=sm_90",
            "-gencode=arch=compute_90,code=compute_90",
        ], command


def test_malformed_cuda_archs_stop_the_configure_with_one_line(bazel):
    result = bazel.run("query", "//:_upfirdn2d.so", STYLEGAN2_TF_CUDA_ARCHS="8.6;sm86x")
    assert result.returncode != 0, result.stdout
    assert ("[tf_configure] STYLEGAN2_TF_CUDA_ARCHS='8.6;sm86x': cannot read 'sm86x'; expected compute "
            "capabilities separated by ';', ',' or spaces") in result.stderr, result.stderr[-8000:]
