"""A failed op build is reported clearly and does not fail the install."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from custom_ops.build import AVX512_FLAGS, build_op_library

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_compiler_failure_raises_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "false")
    monkeypatch.setenv("STYLEGAN2_TF_CUDA", "0")
    output = tmp_path / "_bias_act.so"
    with pytest.raises(RuntimeError, match=r"command failed \(1\): false -shared"):
        build_op_library("bias_act", output)
    assert not output.exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_setup_build_ext_survives_a_failed_build(tmp_path):
    env = dict(os.environ, CXX="false", STYLEGAN2_TF_CUDA="0")
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path),
         "--build-temp", str(tmp_path / "temp")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "could not build the upfirdn2d custom op; impl='ref' still works" in result.stderr
    assert not list(tmp_path.rglob("*.so"))
    # What was attempted, and how it ended, in the progress lines (pip -v shows them).
    out = result.stdout
    assert ("stylegan2_tf: compiling the custom ops upfirdn2d, bias_act, bilinear_sample in parallel: "
            "CPU kernels only (STYLEGAN2_TF_CUDA=0)") in out, out
    for op in ("upfirdn2d", "bias_act", "bilinear_sample"):
        # The first compile fails: an op's AVX-512 loops where it has them, else the rest.
        has_avx512 = AVX512_FLAGS and (REPO_ROOT / "custom_ops" / op / f"{op}_cpu_avx512.cc").exists()
        step = "AVX-512 CPU loops" if has_avx512 else "CPU kernels and link"
        assert f"stylegan2_tf: {op} {step} (false) ..." in out, out
        assert re.search(rf"stylegan2_tf: {op} {step}: failed after \d+s", out), out
    assert re.search(r"stylegan2_tf: custom ops finished in \d+s", out), out
