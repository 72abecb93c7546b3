"""What the op build says while it runs, and which settings stop it.

Progress lines come from custom_ops.build.Progress; plan_build reads the
STYLEGAN2_TF_CUDA* variables (TensorFlow is stubbed here: no import, no compile).
"""

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from custom_ops import build
from custom_ops.build import BuildConfigError, Progress, format_duration, plan_build


@pytest.mark.parametrize("seconds, text", [(0.2, "0s"), (42, "42s"), (59.6, "1m00s"), (187, "3m07s"),
                                           (3600, "60m00s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def _wait_for(stream, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while text not in stream.getvalue():
        assert time.monotonic() < deadline, f"no {text!r} in {stream.getvalue()!r}"
        time.sleep(0.01)


def test_progress_lines_steps_and_heartbeat():
    stream = io.StringIO()
    progress = Progress(stream, heartbeat_s=0.02)
    with progress.heartbeat():
        with progress.step("upfirdn2d CUDA kernels", "nvcc, 2 GPU architectures"):
            _wait_for(stream, "still compiling")
        with pytest.raises(RuntimeError), progress.step("bias_act CPU kernels and link", "c++"):
            raise RuntimeError("compiler error")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "stylegan2_tf: upfirdn2d CUDA kernels (nvcc, 2 GPU architectures) ..."
    heartbeat = r"stylegan2_tf: still compiling after \d+s: upfirdn2d CUDA kernels \(\d+s\)"
    assert re.fullmatch(heartbeat, lines[1])
    assert re.fullmatch(r"stylegan2_tf: upfirdn2d CUDA kernels: done in \d+s", lines[-3])
    assert lines[-2] == "stylegan2_tf: bias_act CPU kernels and link (c++) ..."
    assert re.fullmatch(r"stylegan2_tf: bias_act CPU kernels and link: failed after \d+s", lines[-1])


def test_progress_without_a_stream_is_silent(capsys):
    progress = Progress()
    with progress.heartbeat(), progress.step("upfirdn2d CUDA kernels"):
        progress.line("hello")
    assert capsys.readouterr() == ("", "")


@pytest.fixture
def cuda_tensorflow(monkeypatch):
    """TensorFlow stubbed as a CUDA build (plan_build does not import it then)."""
    monkeypatch.setattr(build, "tensorflow_flags", lambda: (["-DTF"], ["-ltf"], True))
    for name in ("STYLEGAN2_TF_CUDA", "STYLEGAN2_TF_CUDA_ARCHS", "NVCC"):
        monkeypatch.delenv(name, raising=False)


def test_plan_default_with_nvcc(cuda_tensorflow, fake_nvcc, monkeypatch):
    nvcc, _ = fake_nvcc
    monkeypatch.setenv("NVCC", nvcc)
    plan = plan_build()
    assert (plan.nvcc, plan.compile_flags, plan.link_flags) == (nvcc, ["-DTF"], ["-ltf"])
    assert plan.describe() == (f"CPU + CUDA kernels for sm_75, sm_80, sm_86, sm_89, sm_90 + PTX compute_90 "
                               f"(nvcc 12.5, {nvcc})")
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "8.6")
    assert plan_build().archs == [(86, False)]
    monkeypatch.setenv("STYLEGAN2_TF_CUDA", "0")
    plan = plan_build()
    assert plan.nvcc is None and plan.describe() == "CPU kernels only (STYLEGAN2_TF_CUDA=0)"


def test_plan_without_nvcc(cuda_tensorflow, monkeypatch, tmp_path):
    monkeypatch.setenv("NVCC", str(tmp_path / "no-such-nvcc"))
    assert plan_build().describe() == "CPU kernels only (nvcc not found: set NVCC or CUDA_HOME)"
    monkeypatch.setenv("STYLEGAN2_TF_CUDA", "1")
    with pytest.raises(BuildConfigError, match="^STYLEGAN2_TF_CUDA=1 but nvcc not found"):
        plan_build()


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("STYLEGAN2_TF_CUDA", "yes", r"^STYLEGAN2_TF_CUDA='yes': expected 0 \(CPU kernels only\), 1 "),
        ("STYLEGAN2_TF_CUDA_ARCHS", "8.6;ampere",
         r"^STYLEGAN2_TF_CUDA_ARCHS='8.6;ampere': cannot read 'ampere'"),
        ("STYLEGAN2_TF_CUDA_ARCHS", "7.0",
         r"^STYLEGAN2_TF_CUDA_ARCHS='7.0': nvcc 12.5 .* cannot compile for sm_70"),
    ],
)
def test_plan_refuses_a_setting_it_cannot_honor(cuda_tensorflow, fake_nvcc, monkeypatch, name, value, error):
    monkeypatch.setenv("NVCC", fake_nvcc[0])
    monkeypatch.setenv(name, value)
    with pytest.raises(BuildConfigError, match=error):
        plan_build()


def _setup_build_ext(tmp_path, **env):
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path),
         "--build-temp", str(tmp_path / "temp")],
        cwd=REPO_ROOT, env=dict(os.environ, **env), capture_output=True, text=True, timeout=600, check=False,
    )


def test_setup_fails_at_once_on_a_malformed_archs_variable(tmp_path):
    result = _setup_build_ext(tmp_path, STYLEGAN2_TF_CUDA_ARCHS="8.6;9.0a")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        "stylegan2_tf: error: STYLEGAN2_TF_CUDA_ARCHS='8.6;9.0a': cannot read '9.0a'; expected compute "
        "capabilities separated by ';', ',' or spaces, each written 8.6, 86 or sm_86, optionally with +PTX "
        "(e.g. '8.6' or '7.5;8.0;8.6;9.0+PTX')"
    )
    assert not list(tmp_path.rglob("*.so"))
