"""Compiles the CUDA kernels of the custom ops with nvcc (used by custom_ops/build.py).

Imports nothing from TensorFlow: the caller passes TensorFlow's compile flags in.
The op library carries CUDA's static runtime, so it loads on machines without a GPU
or CUDA installation (the GPU kernels then simply never run); running them needs a
driver new enough for nvcc's CUDA version.

Environment:
    NVCC: the nvcc to use (else nvcc on PATH, $CUDA_HOME/bin, /usr/local/cuda/bin).
    STYLEGAN2_TF_CUDA_ARCHS: GPU architectures, e.g. "75;80;86;90+PTX" or "8.6 9.0";
        "+PTX" also embeds PTX for that architecture. Default: sm_75..sm_90 as far as
        nvcc supports them, plus PTX of the newest.
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


def _parse_archs(spec: str) -> list[tuple[int, bool]]:
    """'75;8.6+PTX sm_90' -> [(75, False), (86, True), (90, False)]."""
    archs = []
    for token in re.split(r"[;,\s]+", spec.strip()):
        if not token:
            continue
        ptx = token.upper().endswith("+PTX")
        number = re.sub(r"^(sm_|compute_)", "", token[: -4] if ptx else token).replace(".", "")
        if not number.isdigit():
            raise RuntimeError(f"STYLEGAN2_TF_CUDA_ARCHS: cannot parse {token!r} in {spec!r}")
        archs.append((int(number), ptx))
    return archs


def cuda_arch_flags(nvcc: str) -> list[str]:
    """-gencode flags: $STYLEGAN2_TF_CUDA_ARCHS, else PREFERRED_ARCHS that nvcc supports + PTX."""
    spec = os.environ.get("STYLEGAN2_TF_CUDA_ARCHS", "").strip()
    if spec:
        archs = _parse_archs(spec)
    else:
        supported = sorted(int(n) for n in re.findall(r"\bsm_(\d+)\b", _query(nvcc, "--list-gpu-code")))
        # An nvcc too old to list its targets (< 11.1) gets sm_75..sm_86.
        chosen = [a for a in PREFERRED_ARCHS if a in supported] if supported else [75, 80, 86]
        chosen = chosen or supported[:1]  # an nvcc newer than all preferred: its oldest target
        archs = [(a, a == chosen[-1]) for a in chosen]
    flags = []
    for arch, ptx in archs:
        flags.append(f"-gencode=arch=compute_{arch},code=sm_{arch}")
        if ptx:
            flags.append(f"-gencode=arch=compute_{arch},code=compute_{arch}")
    return flags


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


def compile_cuda_objects(
    op: str, repo_root: Path, build_dir: Path, tf_compile_flags: list[str]
) -> tuple[list[Path], list[str], list[str]]:
    """Compiles custom_ops/<op>/<op>_kernel.cu.cc with nvcc, CUDA runtime included.

    Returns (object files, extra compile flags for <op>_kernel.cc, extra link flags).
    The object carries the static CUDA runtime, so the link flags name only system
    libraries. Raises RuntimeError with the failing tool's output.
    """
    nvcc = find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (set NVCC or CUDA_HOME)")
    include, lib = cuda_paths(nvcc)
    source = Path(repo_root) / "custom_ops" / op / f"{op}_kernel.cu.cc"
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    nvcc_obj = build_dir / f"{op}_kernel.cu.o"
    # --threads 0: one nvcc thread per CPU across the -gencode targets.
    _run([nvcc, "-c", "-x", "cu", *NVCC_FLAGS, "--threads", "0", "-Xcompiler", "-fPIC",
          f"-I{repo_root}", *_nvcc_host_flags(tf_compile_flags), *cuda_arch_flags(nvcc),
          str(source), "-o", str(nvcc_obj)], "nvcc")
    bundled = build_dir / f"{op}_cuda.o"
    _bundle_cudart(nvcc_obj, lib, bundled, os.environ.get("CXX", "c++"))
    return [bundled], ["-DGOOGLE_CUDA=1", f"-I{include}"], ["-ldl", "-lrt", "-lpthread"]
