"""STYLEGAN2_TF_CUDA_ARCHS: parsing, defaults, and the nvcc command line it produces.

No CUDA toolkit is needed: a stand-in `nvcc` (conftest.fake_nvcc) lists its
targets and records the command line it was called with.
"""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
from custom_ops import build_cuda
from custom_ops.build_cuda import CudaArchsError, parse_archs

FORMAT_HINT = "each written 8.6, 86 or sm_86, optionally with +PTX"


@pytest.mark.parametrize(
    "spec, archs",
    [
        ("8.6", [(86, False)]),
        ("86", [(86, False)]),
        ("sm_86", [(86, False)]),
        ("7.5;8.0;8.6;9.0+PTX", [(75, False), (80, False), (86, False), (90, True)]),  # TORCH_CUDA_ARCH_LIST
        ("8.0 8.6+ptx", [(80, False), (86, True)]),
        (" 90 , sm_75 ", [(75, False), (90, False)]),  # sorted; blanks around commas
        ("8.6;86+PTX;sm_86", [(86, True)]),  # one entry per arch, PTX if any asks
        ("10.0;12.0", [(100, False), (120, False)]),
        ("SM_120+Ptx", [(120, True)]),
    ],
)
def test_parse_archs(spec, archs):
    assert parse_archs(spec) == archs


@pytest.mark.parametrize("spec", ["8", "8.x", "7.5.1", "sm_8.6", "compute_86", "ampere", "9.0a",
                                  "86+", "+PTX", "086", "1234"])
def test_parse_archs_rejects_with_one_line_naming_the_variable(spec):
    with pytest.raises(CudaArchsError, match="^STYLEGAN2_TF_CUDA_ARCHS=") as raised:
        parse_archs(f"7.5;{spec}")
    message = str(raised.value)
    assert "\n" not in message
    assert f"cannot read {spec!r}" in message and FORMAT_HINT in message


@pytest.mark.parametrize("spec", [";", " , ;"])
def test_parse_archs_rejects_an_empty_list(spec):
    with pytest.raises(CudaArchsError, match="names no architecture; expected compute capabilities"):
        parse_archs(spec)


def test_requested_archs_unset_or_blank_means_default(monkeypatch):
    monkeypatch.delenv("STYLEGAN2_TF_CUDA_ARCHS", raising=False)
    assert build_cuda.requested_archs() is None
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "  ")
    assert build_cuda.requested_archs() is None
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "8.6")
    assert build_cuda.requested_archs() == [(86, False)]


def test_gencode_flags_and_description():
    archs = [(86, False), (90, True)]
    assert build_cuda.gencode_flags(archs) == [
        "-gencode=arch=compute_86,code=sm_86",
        "-gencode=arch=compute_90,code=sm_90",
        "-gencode=arch=compute_90,code=compute_90",
    ]
    assert build_cuda.describe_archs(archs) == "sm_86, sm_90 + PTX compute_90"


def test_default_archs_are_the_preferred_ones_nvcc_supports(fake_nvcc, monkeypatch):
    monkeypatch.delenv("STYLEGAN2_TF_CUDA_ARCHS", raising=False)
    nvcc, _ = fake_nvcc
    assert build_cuda.cuda_archs(nvcc) == [(75, False), (80, False), (86, False), (89, False), (90, True)]
    assert build_cuda.nvcc_version(nvcc) == "12.5"


def test_archs_nvcc_cannot_compile_for_are_refused(fake_nvcc, monkeypatch):
    nvcc, _ = fake_nvcc
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "7.0;8.6;10.0")
    with pytest.raises(CudaArchsError) as raised:
        build_cuda.cuda_archs(nvcc)
    message = str(raised.value)
    assert message.startswith("STYLEGAN2_TF_CUDA_ARCHS='7.0;8.6;10.0': nvcc 12.5")
    assert "cannot compile for sm_70, sm_100; it supports sm_75, sm_80, sm_86, sm_89, sm_90" in message
    assert "\n" not in message


def test_nvcc_command_carries_exactly_the_chosen_archs():
    command = build_cuda.nvcc_command(
        "nvcc", Path("k.cu.cc"), Path("k.o"), REPO_ROOT, ["-I/tf/include", "-DX=1", "--std=c++17"],
        [(86, False), (90, True)],
    )
    assert [flag for flag in command if flag.startswith("-gencode")] == [
        "-gencode=arch=compute_86,code=sm_86",
        "-gencode=arch=compute_90,code=sm_90",
        "-gencode=arch=compute_90,code=compute_90",
    ]
    assert "--std=c++17" not in command and "-std=c++17" in command  # nvcc's own standard flag
    assert command[-3:] == ["k.cu.cc", "-o", "k.o"]


def test_env_archs_reach_the_nvcc_that_compile_cuda_objects_runs(fake_nvcc, monkeypatch, tmp_path):
    nvcc, record = fake_nvcc
    monkeypatch.setenv("STYLEGAN2_TF_CUDA_ARCHS", "8.6, 9.0+PTX")
    with pytest.raises(RuntimeError, match=r"nvcc failed \(3\): .*compute_86,code=sm_86") as raised:
        build_cuda.compile_cuda_objects("bias_act", REPO_ROOT, tmp_path / "build", [], nvcc=nvcc)
    assert "fake nvcc: no compiling here" in str(raised.value)
    args = record.read_text().splitlines()
    assert [a for a in args if a.startswith("-gencode")] == [
        "-gencode=arch=compute_86,code=sm_86",
        "-gencode=arch=compute_90,code=sm_90",
        "-gencode=arch=compute_90,code=compute_90",
    ]
    assert str(REPO_ROOT / "custom_ops" / "bias_act" / "bias_act_kernel.cu.cc") in args
