"""Checks of the CUDA sources that need no GPU: the standalone harness's CPU
checks, nvcc compiles of the .cu.cc launchers, and g++ compiles of the TF kernels
with GOOGLE_CUDA. With a GPU visible, the harness's GPU checks run as well.

Cost on 2 cores: harness ~5 s, each nvcc compile ~10 s (one arch), each g++
syntax check ~7 s, the GPU harness (GPU only) ~20 s.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from custom_ops import build_cuda
from custom_ops.build import AVX512_FLAGS

OPS = ("upfirdn2d", "bias_act", "bilinear_sample")
# The launchers each <op>_kernel.cu.cc instantiates, as `nm -C` prints them (stylegan2::...).
LAUNCHERS = {
    "upfirdn2d": [f"Upfirdn2dLaunchGpu<{t}>" for t in ("float", "Eigen::half")],
    "bias_act": [f"BiasActLaunchGpu<{t}>" for t in ("float", "Eigen::half")],
    "bilinear_sample": [f"{name}<{t}, {p}>" for name in ("BilinearSampleLaunchGpu",
                                                          "BilinearSampleAdjointLaunchGpu")
                        for t in ("float", "double") for p in ("float", "double")],
}
RUN_SH = REPO_ROOT / "tests" / "cuda" / "run.sh"
NVCC = build_cuda.find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (set NVCC or CUDA_HOME)")


def _run(command, env=None, timeout=300):
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                            check=False, cwd=REPO_ROOT)
    return result.returncode, result.stdout + result.stderr


def _harness(tmp_path, *args, **env_vars):
    env = dict(os.environ, BUILD_DIR=str(tmp_path), **env_vars)
    if NVCC:
        env["NVCC"] = NVCC
    code, output = _run(["bash", str(RUN_SH), *args], env=env)
    assert code == 0, output
    assert "ALL PASSED: 0 failure(s)" in output, output
    assert "FAIL " not in output, output
    return output


def _gpu_visible():
    smi = shutil.which("nvidia-smi")
    return bool(smi) and _run([smi, "-L"], timeout=60)[1].lstrip().startswith("GPU")


@pytest.fixture(scope="module")
def tf_compile_flags():
    tf = pytest.importorskip("tensorflow")
    return tf.sysconfig.get_compile_flags()


def test_harness_cpu_checks(tmp_path):
    """The header CPU loops against the naive references (~5 s)."""
    if shutil.which(os.environ.get("CXX", "g++")):
        output = _harness(tmp_path, "--cpu-only")
    elif NVCC:
        output = _harness(tmp_path)
    else:
        pytest.skip("neither g++ nor nvcc found")
    for check in ("cpu Upfirdn2dCpuRows<float>", "cpu Upfirdn2dCpuRows<half>",
                  "cpu Upfirdn2dCpuColumnRows<float>", "cpu Upfirdn2dCpuColumnRows<half>",
                  "cpu Upfirdn2dCpuFewChannelRows<float>", "cpu Upfirdn2dCpuFewChannelRows<half>",
                  "cpu BiasActCpuRange<float>", "cpu BiasActCpuRange<half>",
                  "cpu BilinearSampleCpuRows<float>", "cpu BilinearSampleCpuRows<double>",
                  "cpu BilinearSampleAdjointCpuImages<float>",
                  "cpu BilinearSampleAdjointCpuImages<double>"):
        assert f"PASS {check}" in output, output


def _cpu_runs_avx512():
    """True when /proc/cpuinfo lists every extension that AVX512_FLAGS compiles for
    ("-mavx512f" -> "avx512f"; tuning flags such as -mprefer-vector-width=512 name none)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith("flags")), [])
    extensions = {flag[len("-m"):] for flag in AVX512_FLAGS if "=" not in flag}
    return extensions <= set(flags)


@pytest.mark.skipif(not AVX512_FLAGS or not _cpu_runs_avx512(), reason="the CPU has no AVX-512")
@pytest.mark.skipif(not shutil.which(os.environ.get("CXX", "g++")), reason="g++ not found")
def test_harness_cpu_checks_avx512(tmp_path):
    """The header CPU loops compiled with AVX512_FLAGS, as upfirdn2d_cpu_avx512.cc is (~10 s)."""
    output = _harness(tmp_path, "--cpu-only", CPU_FLAGS=" ".join(AVX512_FLAGS))
    for check in ("cpu Upfirdn2dCpuRows<float>", "cpu Upfirdn2dCpuRows<half>"):
        assert f"PASS {check}" in output, output


@needs_nvcc
@pytest.mark.skipif(not _gpu_visible(), reason="no GPU visible (nvidia-smi -L)")
def test_harness_gpu_checks(tmp_path):
    """Slow (~20 s build): the CUDA kernels against the references, plus timings."""
    output = _harness(tmp_path)
    for check in ("gpu Upfirdn2dCuda<float>", "gpu BiasActCuda<__half>",
                  "gpu BilinearSampleCuda<float>", "gpu BilinearSampleCuda<double>",
                  "gpu BilinearSampleAdjointCuda<float>", "gpu BilinearSampleAdjointCuda<double>"):
        assert f"PASS {check}" in output, output


@needs_nvcc
@pytest.mark.parametrize("op", OPS)
def test_nvcc_compiles_launcher(op, tmp_path, tf_compile_flags, monkeypatch):
    """Slow (~10 s each): <op>_kernel.cu.cc through build_cuda, for the one arch asked for."""
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "75")
    objects, compile_flags, link_flags = build_cuda.compile_cuda_objects(
        op, REPO_ROOT, tmp_path, tf_compile_flags)
    assert len(objects) == 1 and objects[0].stat().st_size > 0
    # Each embedded cubin records ptxas's options ("-arch sm_75"): only the requested
    # architecture was compiled. (Embedded PTX is compressed; no such check for it.)
    data = objects[0].read_bytes()
    assert set(re.findall(rb"-arch (sm_\d+)", data)) == {b"sm_75"}, set(re.findall(rb"sm_\d+", data))
    assert "-DGOOGLE_CUDA=1" in compile_flags
    assert not [flag for flag in link_flags if "cudart" in flag], link_flags
    nm = shutil.which("nm")
    if nm:
        # The object carries the static CUDA runtime, with its symbols made local:
        # nothing CUDA is left undefined, and no CUDA runtime symbol stays global.
        code, symbols = _run([nm, str(objects[0])])  # mangled: one word per name
        assert code == 0, symbols
        entries = [line.split()[-2:] for line in symbols.splitlines() if line.strip()]
        undefined = [name for kind, name in entries if kind == "U" and "cuda" in name.lower()]
        exported = [name for kind, name in entries if kind in "TDBRW" and "cuda" in name.lower()
                    and not name.startswith("_ZN9stylegan2")]  # our own launch helpers
        assert not undefined and not exported, (undefined, exported)
        code, symbols = _run([nm, "-C", "--extern-only", str(objects[0])])
        assert code == 0, symbols
        for launcher in LAUNCHERS[op]:
            assert f"stylegan2::{launcher}(" in symbols, symbols


@needs_nvcc
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found")
@pytest.mark.parametrize("op", OPS)
def test_gxx_compiles_kernel_with_cuda(op, tf_compile_flags):
    """Slow (~7 s each): <op>_kernel.cc with GOOGLE_CUDA (the GPU functor and registrations)."""
    include, _ = build_cuda.cuda_paths(NVCC)
    source = REPO_ROOT / "custom_ops" / op / f"{op}_kernel.cc"
    code, output = _run(["g++", "-fsyntax-only", "-Wno-deprecated-declarations", *tf_compile_flags,
                         "-DGOOGLE_CUDA=1", f"-I{include}", f"-I{REPO_ROOT}", str(source)])
    assert code == 0, output
