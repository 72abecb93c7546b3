"""Installs stylegan2_tf and compiles its custom ops against the installed TensorFlow.

A failed op build does not fail the install: the library then runs on its
pure-TensorFlow reference ops (impl="ref"), and impl="auto" says why once. A
STYLEGAN2_TF_CUDA or STYLEGAN2_TF_CUDA_ARCHS that is malformed or cannot be
honored does fail it, with one line naming the variable.

pip shows what is being compiled only with `pip install -v .` (or in the file of
`pip install --log FILE .`); see BuildCustomOps.
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_ops.build import (
    CUDA_ENV,
    OPS,
    BuildConfigError,
    Progress,
    build_op_library,
    format_duration,
    plan_build,
)
from custom_ops.build_cuda import ARCHS_ENV, requested_archs


class BuildCustomOps(build_ext):
    """Builds each op library with the TensorFlow flags, all ops in parallel.

    Prints "stylegan2_tf: ..." lines (what is compiled, each step's duration, and
    every 30 s what is still running); pip shows them with `pip install -v .`.
    """

    def get_ext_filename(self, fullname):
        # Plain `_upfirdn2d.so`: a TF op library, not a Python extension module.
        return str(Path(*fullname.split("."))) + ".so"

    def build_extensions(self):
        self.progress = Progress(sys.stdout)
        start = time.monotonic()
        try:
            self.plan = plan_build()
        except BuildConfigError as error:
            # An explicit setting that cannot be honored fails the install.
            raise SystemExit(f"stylegan2_tf: error: {error}") from None
        except Exception as error:  # noqa: BLE001 - e.g. no TensorFlow: impl="ref" still works
            for ext in self.extensions:
                self._warn(ext, error)
            return
        names = ", ".join(self._op(ext) for ext in self.extensions)
        self.progress.line(f"compiling the custom ops {names} in parallel: {self.plan.describe()}")
        if self.plan.nvcc and requested_archs() is None:
            self.progress.line(f"nvcc compiles once per GPU architecture: {ARCHS_ENV}=8.6 (say) builds for "
                               f"that GPU only, {CUDA_ENV}=0 skips the CUDA kernels")
        with self.progress.heartbeat(), ThreadPoolExecutor(max_workers=len(self.extensions)) as pool:
            list(pool.map(self.build_extension, self.extensions))
        self.progress.line(f"custom ops finished in {format_duration(time.monotonic() - start)}")

    def build_extension(self, ext):
        op = self._op(ext)
        output = Path(self.get_ext_fullpath(ext.name))
        start = time.monotonic()
        try:
            built = build_op_library(op, output, self.plan, self.progress)
        except Exception as error:  # noqa: BLE001 - any failure leaves impl="ref" usable
            self._warn(ext, error)
        else:
            self.progress.line(f"built {built}, in {format_duration(time.monotonic() - start)}")

    @staticmethod
    def _op(ext):
        return ext.name.rsplit(".", 1)[-1].lstrip("_")

    def _warn(self, ext, error):
        print(
            f"stylegan2_tf: WARNING: could not build the {self._op(ext)} custom op; "
            f"impl='ref' still works.\n{error}",
            file=sys.stderr,
            flush=True,
        )


setup(
    ext_modules=[Extension(f"stylegan2_tf.ops._{op}", sources=[]) for op in OPS],
    cmdclass={"build_ext": BuildCustomOps},
)
