"""Compiles the op libraries against the installed TensorFlow (used by setup.py).

Compiler flags come from `tf.sysconfig`, so the ABI and C++ standard always match
the TensorFlow the libraries will be loaded into. CUDA kernels are added when
TensorFlow is a CUDA build and nvcc is found (see build_cuda.py).

Environment:
    CXX: the C++ compiler (default c++).
    STYLEGAN2_TF_CUDA: "auto" (default): CUDA kernels when TensorFlow and nvcc allow;
        "0": CPU kernels only; "1": CUDA kernels required (BuildConfigError without).
    STYLEGAN2_TF_CUDA_ARCHS, NVCC: see build_cuda.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from custom_ops import build_cuda

REPO_ROOT = Path(__file__).resolve().parent.parent
OPS = ("upfirdn2d", "bias_act", "bilinear_sample")
CUDA_ENV = "STYLEGAN2_TF_CUDA"

# -O3 vectorizes the inner loops; -fno-trapping-math lets it turn the selects of
# the activations into vector blends (results are unchanged). Every TensorFlow
# wheel for x86-64 needs AVX already, so the kernels may use it too.
CXX_OPT_FLAGS = ["-O3", "-fno-trapping-math", "-fPIC", "-Wno-deprecated-declarations", "-Wno-interference-size"]
# An op's <op>_cpu_avx512.cc, where present, is compiled alone with AVX512_FLAGS, and the op's
# other sources get -DSG2_HAVE_AVX512_KERNELS=1 to call it on CPUs that run AVX-512 (a
# check at run time). Empty off x86-64.
AVX512_FLAGS = []
if platform.machine().lower() in ("x86_64", "amd64"):
    CXX_OPT_FLAGS.append("-mavx")
    AVX512_FLAGS = ["-mavx2", "-mfma", "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq",
                    "-mprefer-vector-width=512"]


class BuildConfigError(ValueError):
    """An environment setting that the build cannot honor (one line naming it).

    setup.py fails the install on it: the user asked for something explicitly,
    unlike a failed compile, which leaves impl="ref" working.
    """


# Read in a child process: importing TensorFlow logs to stderr (oneDNN, "Could not
# find cuda drivers ...") whatever TF_CPP_MIN_LOG_LEVEL says, which is noise in a build.
_TF_QUERY = (
    "import json, tensorflow as tf; print('@@TF@@' + json.dumps([tf.sysconfig.get_compile_flags(), "
    "tf.sysconfig.get_link_flags(), bool(tf.test.is_built_with_cuda())]))"
)


def tensorflow_flags():
    """(compile flags, link flags, built with CUDA) of the TensorFlow of this interpreter."""
    result = subprocess.run([sys.executable, "-c", _TF_QUERY], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("@@TF@@"):
            compile_flags, link_flags, has_cuda = json.loads(line[len("@@TF@@"):])
            return compile_flags, link_flags, has_cuda
    tail = "\n".join(result.stderr.splitlines()[-20:])
    raise RuntimeError(f"cannot read TensorFlow's build flags with {sys.executable} "
                       f"(rc {result.returncode}):\n{tail}")


def format_duration(seconds: float) -> str:
    """'42s', '3m07s'."""
    seconds = round(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"


@dataclass(frozen=True)
class BuildPlan:
    """What build_op_library compiles: TensorFlow's flags, and the CUDA kernels or why not."""

    compile_flags: list[str]
    link_flags: list[str]
    nvcc: str | None  # None: CPU kernels only
    archs: list[tuple[int, bool]]  # [(arch, with PTX)] when nvcc
    without_cuda: str = ""  # why not, when no nvcc

    def describe(self) -> str:
        if not self.nvcc:
            return f"CPU kernels only ({self.without_cuda})"
        return (f"CPU + CUDA kernels for {build_cuda.describe_archs(self.archs)} "
                f"(nvcc {build_cuda.nvcc_version(self.nvcc)}, {self.nvcc})")


def plan_build() -> BuildPlan:
    """Reads STYLEGAN2_TF_CUDA(_ARCHS), TensorFlow and nvcc: what build_op_library will compile.

    Raises BuildConfigError when a variable is malformed or cannot be honored
    (checked before TensorFlow is imported, so a typo fails at once).
    """
    raw = os.environ.get(CUDA_ENV, "")
    setting = raw.strip().lower() or "auto"
    if setting not in ("0", "1", "auto"):
        raise BuildConfigError(f"{CUDA_ENV}={raw!r}: expected 0 (CPU kernels only), 1 (CUDA kernels "
                               "required) or auto (CUDA kernels when TensorFlow and nvcc allow)")
    try:
        build_cuda.requested_archs()  # the syntax, whether or not CUDA is built
    except build_cuda.CudaArchsError as error:
        raise BuildConfigError(str(error)) from None
    compile_flags, link_flags, tf_has_cuda = tensorflow_flags()
    if setting == "0":
        return BuildPlan(compile_flags, link_flags, None, [], f"{CUDA_ENV}=0")
    nvcc = build_cuda.find_nvcc()
    if not tf_has_cuda or nvcc is None:
        reason = ("TensorFlow is not a CUDA build" if not tf_has_cuda
                  else "nvcc not found: set NVCC or CUDA_HOME")
        if setting == "1":
            raise BuildConfigError(f"{CUDA_ENV}=1 but {reason}")
        return BuildPlan(compile_flags, link_flags, None, [], reason)
    try:
        archs = build_cuda.cuda_archs(nvcc)
    except build_cuda.CudaArchsError as error:
        raise BuildConfigError(str(error)) from None
    return BuildPlan(compile_flags, link_flags, nvcc, archs)


class Progress:
    """Progress lines "stylegan2_tf: ..." for a build that runs steps in parallel threads.

    step() prints when a step starts and how long it took; heartbeat() prints the
    steps still running every `heartbeat_s`. pip shows a build's output only with
    -v (and in --log), but each line it receives turns its spinner, and when not
    on a terminal lets it print "still running..." (at most once a minute).
    With stream=None nothing is printed.
    """

    def __init__(self, stream=None, heartbeat_s: float = 30.0):
        self._stream = stream
        self._heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # step -> start (time.monotonic)

    def line(self, text: str) -> None:
        if self._stream is not None:
            with self._lock:
                print(f"stylegan2_tf: {text}", file=self._stream, flush=True)

    @contextlib.contextmanager
    def step(self, what: str, how: str = ""):
        """Reports `what` (e.g. "upfirdn2d CUDA kernels") as started, `how` added, then as done."""
        start = time.monotonic()
        self.line(f"{what} ({how}) ..." if how else f"{what} ...")
        with self._lock:
            self._running[what] = start
        try:
            yield
        except BaseException:
            self.line(f"{what}: failed after {format_duration(time.monotonic() - start)}")
            raise
        finally:
            with self._lock:
                del self._running[what]
        self.line(f"{what}: done in {format_duration(time.monotonic() - start)}")

    @contextlib.contextmanager
    def heartbeat(self):
        start, stop = time.monotonic(), threading.Event()

        def beat():
            while not stop.wait(self._heartbeat_s):
                now = time.monotonic()
                with self._lock:
                    running = ", ".join(f"{what} ({format_duration(now - since)})"
                                        for what, since in self._running.items())
                if running:
                    self.line(f"still compiling after {format_duration(now - start)}: {running}")

        thread = threading.Thread(target=beat, name="stylegan2_tf-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
        raise RuntimeError(f"command failed ({result.returncode}): {shlex.join(command)}\n{tail}")


def build_op_library(op, output, plan=None, progress=None):
    """Compiles custom_ops/<op>/ into the shared library `output`.

    Args:
        op: "upfirdn2d" or "bias_act".
        output: path of the .so to write; written aside and renamed when complete.
        plan: a BuildPlan; default plan_build() (from TensorFlow, nvcc and the
            STYLEGAN2_TF_CUDA* variables).
        progress: a Progress that reports each compile step; default: silent.

    Returns:
        A one-line description of what was built.
    """
    plan = plan_build() if plan is None else plan
    progress = Progress() if progress is None else progress
    source_dir = REPO_ROOT / "custom_ops" / op
    sources = [str(source_dir / f"{op}_op.cc"), str(source_dir / f"{op}_kernel.cc")]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cxx = os.environ.get("CXX", "c++")
    with tempfile.TemporaryDirectory(prefix=f"sg2_{op}_") as build_dir:
        objects, extra_compile, extra_link = [], [], []
        if plan.nvcc:
            archs = len(plan.archs)
            with progress.step(f"{op} CUDA kernels", f"nvcc, {archs} GPU architecture{'s' * (archs > 1)}"):
                objects, extra_compile, extra_link = build_cuda.compile_cuda_objects(
                    op, REPO_ROOT, Path(build_dir), plan.compile_flags, plan.archs, plan.nvcc
                )
        avx512_source = source_dir / f"{op}_cpu_avx512.cc"
        if AVX512_FLAGS and avx512_source.exists():
            avx512_object = Path(build_dir) / f"{op}_cpu_avx512.o"
            with progress.step(f"{op} AVX-512 CPU loops", Path(cxx).name):
                _run([cxx, "-c", *CXX_OPT_FLAGS, *AVX512_FLAGS, f"-I{REPO_ROOT}", *plan.compile_flags,
                      str(avx512_source), "-o", str(avx512_object)])
            objects.append(avx512_object)
            extra_compile.append("-DSG2_HAVE_AVX512_KERNELS=1")
        partial = output.with_name(output.name + ".partial")
        try:
            with progress.step(f"{op} CPU kernels and link", Path(cxx).name):
                _run([cxx, "-shared", *CXX_OPT_FLAGS, f"-I{REPO_ROOT}", *plan.compile_flags,
                      *extra_compile, *sources, *map(str, objects), "-o", str(partial),
                      *plan.link_flags, *extra_link])
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    kernels = "CPU + CUDA kernels" if plan.nvcc else f"CPU kernels only ({plan.without_cuda})"
    return f"{output.name}: {kernels}"
