"""Compiles the op libraries against the installed TensorFlow (used by setup.py).

Compiler flags come from `tf.sysconfig`, so the ABI and C++ standard always match
the TensorFlow the libraries will be loaded into. CUDA kernels are added when
TensorFlow is a CUDA build and nvcc is found (see build_cuda.py); set
STYLEGAN2_TF_CUDA=0 to skip them, =1 to require them.
"""

import os
import platform
import shlex
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OPS = ("upfirdn2d", "bias_act")

# -O3 vectorizes the inner loops; -fno-trapping-math lets it turn the selects of
# the activations into vector blends (results are unchanged). Every TensorFlow
# wheel for x86-64 needs AVX already, so the kernels may use it too.
CXX_OPT_FLAGS = ["-O3", "-fno-trapping-math", "-fPIC", "-Wno-deprecated-declarations", "-Wno-interference-size"]
if platform.machine().lower() in ("x86_64", "amd64"):
    CXX_OPT_FLAGS.append("-mavx")


def tensorflow_flags():
    """(compile flags, link flags, built with CUDA) of the installed TensorFlow."""
    import tensorflow as tf

    return (
        tf.sysconfig.get_compile_flags(),
        tf.sysconfig.get_link_flags(),
        bool(tf.test.is_built_with_cuda()),
    )


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
        raise RuntimeError(f"command failed ({result.returncode}): {shlex.join(command)}\n{tail}")


def _want_cuda(tf_has_cuda):
    setting = os.environ.get("STYLEGAN2_TF_CUDA", "auto")
    if setting == "0":
        return False, "STYLEGAN2_TF_CUDA=0"
    from custom_ops import build_cuda

    nvcc = build_cuda.find_nvcc()
    if not tf_has_cuda or nvcc is None:
        reason = "TensorFlow is not a CUDA build" if not tf_has_cuda else "nvcc not found"
        if setting == "1":
            raise RuntimeError(f"STYLEGAN2_TF_CUDA=1 but {reason}")
        return False, reason
    return True, nvcc


def build_op_library(op, output, cuda=None):
    """Compiles custom_ops/<op>/ into the shared library `output`.

    Args:
        op: "upfirdn2d" or "bias_act".
        output: path of the .so to write; written aside and renamed when complete.
        cuda: True/False to force the CUDA kernels in or out; None decides from
            TensorFlow, nvcc and STYLEGAN2_TF_CUDA.

    Returns:
        A one-line description of what was built.
    """
    compile_flags, link_flags, tf_has_cuda = tensorflow_flags()
    if cuda is None:
        cuda, why = _want_cuda(tf_has_cuda)
    else:
        why = "requested"
    source_dir = REPO_ROOT / "custom_ops" / op
    sources = [str(source_dir / f"{op}_op.cc"), str(source_dir / f"{op}_kernel.cc")]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cxx = os.environ.get("CXX", "c++")
    with tempfile.TemporaryDirectory(prefix=f"sg2_{op}_") as build_dir:
        objects, extra_compile, extra_link = [], [], []
        if cuda:
            from custom_ops import build_cuda

            objects, extra_compile, extra_link = build_cuda.compile_cuda_objects(
                op, REPO_ROOT, Path(build_dir), compile_flags
            )
        partial = output.with_name(output.name + ".partial")
        try:
            _run([cxx, "-shared", *CXX_OPT_FLAGS, f"-I{REPO_ROOT}", *compile_flags,
                  *extra_compile, *sources, *map(str, objects), "-o", str(partial),
                  *link_flags, *extra_link])
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    kernels = "CPU + CUDA kernels" if cuda else f"CPU kernels only ({why})"
    return f"{output.name}: {kernels}"
