"""Compiles the CUDA kernels of the custom ops with nvcc (used by custom_ops/build.py).

Imports nothing from TensorFlow: the caller passes TensorFlow's compile flags in.
The op library carries CUDA's static runtime, so it loads on machines without a GPU
or CUDA installation (the GPU kernels then simply never run); running them needs a
driver new enough for nvcc's CUDA version.

Environment:
    NVCC: the nvcc to use (else nvcc on PATH, $CUDA_HOME/bin, /usr/local/cuda/bin).
    STYLEGAN2_TF_CUDA_ARCHS: the GPU architectures to compile for, as compute
        capabilities separated by ";", "," or spaces, each written 8.6, 86 or sm_86,
        with "+PTX" to also embed PTX for it: "8.6", "7.5;8.0;8.6;9.0+PTX" (numeric
        TORCH_CUDA_ARCH_LIST values of PyTorch work as they are). Default: sm_75, 80, 86, 89, 90
        as far as nvcc supports them, plus PTX of the newest. Fewer architectures
        build faster: nvcc compiles the kernels once per architecture.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

PREFERRED_ARCHS = (75, 80, 86, 89, 90)
NVCC_FLAGS = ["-std=c++17", "--expt-relaxed-constexpr", "-O3", "-DGOOGLE_CUDA=1", "-DNDEBUG"]
ARCHS_ENV = "STYLEGAN2_TF_CUDA_ARCHS"
ARCHS_FORMAT = (
    "compute capabilities separated by ';', ',' or spaces, each written 8.6, 86 or sm_86, "
    "optionally with +PTX (e.g. '8.6' or '7.5;8.0;8.6;9.0+PTX')"
)
# 8.6 | 86 | sm_86, then +PTX; the number is [major][minor], minor one digit (10.0 -> 100).
_ARCH = re.compile(r"(?:(?P<major>[1-9]\d?)\.(?P<minor>\d)|(?:sm_)?(?P<number>[1-9]\d{1,2}))(?P<ptx>\+ptx)?",
                   re.IGNORECASE)


class CudaArchsError(ValueError):
    """STYLEGAN2_TF_CUDA_ARCHS cannot be honored; the message is one line naming it."""


def find_nvcc() -> str | None:
    """Path of nvcc: $NVCC, then PATH, then $CUDA_HOME/bin, /usr/local/cuda/bin; None if absent."""
    if os.environ.get("NVCC"):
        return shutil.which(os.environ["NVCC"])
    candidates = [shutil.which("nvcc")]
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            candidates.append(shutil.which(str(Path(root) / "bin" / "nvcc")))
    return next((c for c in candidates if c), None)


def _query(nvcc: str, *args: str) -> str:
    result = subprocess.run([nvcc, *args], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr if result.returncode == 0 else ""


def nvcc_version(nvcc: str) -> str:
    """'13.0' (from `nvcc --version`), or '?' when it does not say."""
    match = re.search(r"release (\d+\.\d+)", _query(nvcc, "--version"))
    return match.group(1) if match else "?"


def supported_archs(nvcc: str) -> list[int]:
    """The sm_ targets nvcc can compile for, ascending; [] when it cannot list them (< 11.1)."""
    return sorted({int(n) for n in re.findall(r"\bsm_(\d+)\b", _query(nvcc, "--list-gpu-code"))})


def parse_archs(spec: str) -> list[tuple[int, bool]]:
    """'7.5;sm_86, 90+PTX' -> [(75, False), (86, False), (90, True)].

    Sorted by architecture; a repeated one is kept once (with PTX if any entry asks
    for it). Raises CudaArchsError for an entry of another form, or for no entry.
    """
    archs: dict[int, bool] = {}
    for token in re.split(r"[;,\s]+", spec.strip()):
        if not token:
            continue
        match = _ARCH.fullmatch(token)
        if match is None:
            raise CudaArchsError(f"{ARCHS_ENV}={spec!r}: cannot read {token!r}; expected {ARCHS_FORMAT}")
        number = int(match["number"] or match["major"] + match["minor"])
        archs[number] = archs.get(number, False) or match["ptx"] is not None
    if not archs:
        raise CudaArchsError(f"{ARCHS_ENV}={spec!r} names no architecture; expected {ARCHS_FORMAT}")
    return sorted(archs.items())


def requested_archs() -> list[tuple[int, bool]] | None:
    """$STYLEGAN2_TF_CUDA_ARCHS parsed (see parse_archs); None when unset or blank."""
    spec = os.environ.get(ARCHS_ENV, "")
    return parse_archs(spec) if spec.strip() else None


def cuda_archs(nvcc: str) -> list[tuple[int, bool]]:
    """[(arch, with PTX)]: $STYLEGAN2_TF_CUDA_ARCHS, else PREFERRED_ARCHS that nvcc supports + PTX.

    Raises CudaArchsError when the variable is malformed or names an architecture
    that this nvcc cannot compile for.
    """
    requested = requested_archs()
    supported = supported_archs(nvcc)
    if requested is None:
        # An nvcc too old to list its targets (< 11.1) gets sm_75..sm_86.
        chosen = [a for a in PREFERRED_ARCHS if a in supported] if supported else [75, 80, 86]
        chosen = chosen or supported[:1]  # an nvcc newer than all preferred: its oldest target
        return [(a, a == chosen[-1]) for a in chosen]
    unsupported = [a for a, _ in requested if supported and a not in supported]
    if unsupported:
        raise CudaArchsError(
            f"{ARCHS_ENV}={os.environ[ARCHS_ENV]!r}: nvcc {nvcc_version(nvcc)} ({nvcc}) cannot compile "
            f"for {', '.join(f'sm_{a}' for a in unsupported)}; it supports "
            f"{', '.join(f'sm_{a}' for a in supported)}"
        )
    return requested


def gencode_flags(archs: list[tuple[int, bool]]) -> list[str]:
    """nvcc -gencode flags: SASS for each architecture, PTX too where asked."""
    flags = []
    for arch, ptx in archs:
        flags.append(f"-gencode=arch=compute_{arch},code=sm_{arch}")
        if ptx:
            flags.append(f"-gencode=arch=compute_{arch},code=compute_{arch}")
    return flags


def describe_archs(archs: list[tuple[int, bool]]) -> str:
    """'sm_75, sm_86, sm_90 + PTX compute_90'."""
    text = ", ".join(f"sm_{arch}" for arch, _ in archs)
    ptx = [f"compute_{arch}" for arch, with_ptx in archs if with_ptx]
    return text + (f" + PTX {', '.join(ptx)}" if ptx else "")


def cuda_arch_flags(nvcc: str) -> list[str]:
    """-gencode flags of cuda_archs(nvcc) (the Bazel build reads them through tf_configure.bzl)."""
    return gencode_flags(cuda_archs(nvcc))


def cuda_paths(nvcc: str) -> tuple[Path, Path]:
    """(include dir with cuda_runtime.h, lib dir with libcudart_static.a) of nvcc's toolkit."""
    # `nvcc --dryrun` prints the toolkit's own -I and -L paths; a wrapper script
    # around nvcc or a targets/<arch>/ layout is then no problem.
    dryrun = _query(nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull)
    includes = [Path(p) for p in re.findall(r'-I"?([^"\s]+)', dryrun)]
    libs = [Path(p) for p in re.findall(r'-L"?([^"\s]+)', dryrun)]
    root = Path(nvcc).resolve().parent.parent
    includes += [root / "include"]
    libs += [root / "lib64", root / "lib"]
    include = next((p for p in includes if (p / "cuda_runtime.h").is_file()), None)
    lib = next((p for p in libs if (p / "libcudart_static.a").is_file()), None)
    if include is None or lib is None:
        raise RuntimeError(f"cannot find cuda_runtime.h and libcudart_static.a next to {nvcc}")
    return include.resolve(), lib.resolve()


def _nvcc_host_flags(tf_compile_flags: list[str]) -> list[str]:
    """TensorFlow's -I/-D flags for nvcc; its --std is replaced by NVCC_FLAGS'."""
    flags = []
    for flag in tf_compile_flags:
        if flag.startswith(("-I", "-D")):
            flags.append(flag)
        elif not flag.startswith(("-std", "--std")):
            flags += ["-Xcompiler", flag]
    return flags


def _run(command: list[str], what: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr + result.stdout).splitlines()[-40:])
        raise RuntimeError(f"{what} failed ({result.returncode}): {shlex.join(command)}\n{tail}")
    return result.stdout


def _defined_globals(nm: str, obj: Path) -> set[str]:
    listing = _run([nm, "--defined-only", "--extern-only", str(obj)], "nm")
    return {line.split()[-1] for line in listing.splitlines() if len(line.split()) >= 3}


def _bundle_cudart(nvcc_obj: Path, lib: Path, out: Path, cxx: str) -> None:
    """Links libcudart_static.a into one relocatable object and hides its symbols.

    TensorFlow's libtensorflow_framework.so exports a cudart stub (CUDA 12), and it
    comes first on the op library's link line: a plain -l:libcudart_static.a after
    it would pull nothing in. Pre-linking fixes which cudart the kernels call, and
    localizing cudart's symbols keeps the op library from exporting a second copy.
    """
    nm, objcopy = shutil.which("nm"), shutil.which("objcopy")
    if nm is None or objcopy is None:
        raise RuntimeError("nm and objcopy (binutils) are needed to bundle the CUDA runtime")
    _run([cxx, "-r", "-nostdlib", "-o", str(out), str(nvcc_obj), str(lib / "libcudart_static.a")],
         "partial link with libcudart_static.a")
    cudart_symbols = _defined_globals(nm, out) - _defined_globals(nm, nvcc_obj)
    symbol_file = out.with_suffix(".cudart_symbols")
    symbol_file.write_text("".join(f"{name}\n" for name in sorted(cudart_symbols)))
    _run([objcopy, f"--localize-symbols={symbol_file}", str(out)], "objcopy")


def nvcc_command(
    nvcc: str, source: Path, output: Path, repo_root: Path, tf_compile_flags: list[str],
    archs: list[tuple[int, bool]],
) -> list[str]:
    """The nvcc command line that compiles `source` into the object `output` for `archs`."""
    # --threads 0: one nvcc thread per CPU across the -gencode targets.
    return [nvcc, "-c", "-x", "cu", *NVCC_FLAGS, "--threads", "0", "-Xcompiler", "-fPIC",
            f"-I{repo_root}", *_nvcc_host_flags(tf_compile_flags), *gencode_flags(archs),
            str(source), "-o", str(output)]


def compile_cuda_objects(
    op: str, repo_root: Path, build_dir: Path, tf_compile_flags: list[str],
    archs: list[tuple[int, bool]] | None = None, nvcc: str | None = None,
) -> tuple[list[Path], list[str], list[str]]:
    """Compiles custom_ops/<op>/<op>_kernel.cu.cc with nvcc, CUDA runtime included.

    Args:
        archs: [(arch, with PTX)]; default cuda_archs(nvcc) ($STYLEGAN2_TF_CUDA_ARCHS).
        nvcc: default find_nvcc().

    Returns (object files, extra compile flags for <op>_kernel.cc, extra link flags).
    The object carries the static CUDA runtime, so the link flags name only system
    libraries. Raises RuntimeError with the failing tool's output.
    """
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (set NVCC or CUDA_HOME)")
    archs = cuda_archs(nvcc) if archs is None else archs
    source = Path(repo_root) / "custom_ops" / op / f"{op}_kernel.cu.cc"
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    nvcc_obj = build_dir / f"{op}_kernel.cu.o"
    _run(nvcc_command(nvcc, source, nvcc_obj, repo_root, tf_compile_flags, archs), "nvcc")
    include, lib = cuda_paths(nvcc)
    bundled = build_dir / f"{op}_cuda.o"
    _bundle_cudart(nvcc_obj, lib, bundled, os.environ.get("CXX", "c++"))
    return [bundled], ["-DGOOGLE_CUDA=1", f"-I{include}"], ["-ldl", "-lrt", "-lpthread"]
