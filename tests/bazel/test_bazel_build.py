"""The Bazel route builds loadable custom-op libraries.

Runs .ci/bazel_build.sh (bazel build //:_upfirdn2d.so //:_bias_act.so) into a
temporary directory, then loads each library with tf.load_op_library in a fresh
interpreter and runs a tiny forward call. Skipped when `bazel` is not on PATH.
The first build takes ~30 s on 2 cores; later ones are Bazel cache hits.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "bazel_build.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("bazel") is None,
    reason="bazel is not on PATH (install Debian's bazel-bootstrap, or run .ci/bazel_build.sh)",
)

# Loads both libraries and runs one tiny call of each; prints a JSON report.
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
    print("@@REPORT@@" + json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def ops_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bazel-ops")
    env = dict(os.environ)
    # Build against the TensorFlow of the interpreter that will load the result.
    env.setdefault("PYTHON_BIN_PATH", sys.executable)
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{BUILD_SCRIPT.name} failed (rc {proc.returncode}):\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
    )
    for lib in ("_upfirdn2d.so", "_bias_act.so"):
        assert (out / lib).is_file(), f"{lib} was not copied to {out}"
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
