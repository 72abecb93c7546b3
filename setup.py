"""Installs stylegan2_tf and compiles its custom ops against the installed TensorFlow.

A failed op build does not fail the install: the library then runs on its
pure-TensorFlow reference ops (impl="ref"), and impl="auto" says why once.
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent))
from custom_ops.build import OPS, build_op_library


class BuildCustomOps(build_ext):
    """Builds each op library with the TensorFlow flags, all ops in parallel."""

    def get_ext_filename(self, fullname):
        # Plain `_upfirdn2d.so`: a TF op library, not a Python extension module.
        return str(Path(*fullname.split("."))) + ".so"

    def build_extensions(self):
        with ThreadPoolExecutor(max_workers=len(self.extensions)) as pool:
            list(pool.map(self.build_extension, self.extensions))

    def build_extension(self, ext):
        op = ext.name.rsplit(".", 1)[-1].lstrip("_")
        output = Path(self.get_ext_fullpath(ext.name))
        try:
            print(f"stylegan2_tf: built {build_op_library(op, output)}", flush=True)
        except Exception as error:  # noqa: BLE001 - any failure leaves impl="ref" usable
            print(
                f"stylegan2_tf: WARNING: could not build the {op} custom op; "
                f"impl='ref' still works.\n{error}",
                file=sys.stderr,
                flush=True,
            )


setup(
    ext_modules=[Extension(f"stylegan2_tf.ops._{op}", sources=[]) for op in OPS],
    cmdclass={"build_ext": BuildCustomOps},
)
