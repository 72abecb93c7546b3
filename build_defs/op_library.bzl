"""`custom_op_library`: a TensorFlow custom-op shared library (CPU, optional CUDA).

    custom_op_library(
        name = "_upfirdn2d.so",
        srcs = ["custom_ops/upfirdn2d/upfirdn2d_op.cc", ...],
        hdrs = ["custom_ops/upfirdn2d/upfirdn2d_kernel.h", ...],
        cuda_srcs = ["custom_ops/upfirdn2d/upfirdn2d_kernel.cu.cc"],
        cuda_hdrs = ["custom_ops/upfirdn2d/upfirdn2d_kernel.cuh"],
        avx512_srcs = ["custom_ops/upfirdn2d/upfirdn2d_cpu_avx512.cc"],
    )

Default build: `cc_binary(linkshared = 1)` from `srcs` with g++, against the
TensorFlow found by @local_tf (see tf_configure.bzl). No CUDA tool is needed.

With `--define=cuda=true` (`--config=cuda` in .bazelrc): every `cuda_srcs` file
is compiled by nvcc (`-x cu -DGOOGLE_CUDA=1`, genrule `<base>_<file>_nvcc`),
the objects and the toolkit's static CUDA runtime (symbols kept local) are
linked into the same .so, and the host sources get `-DGOOGLE_CUDA=1` plus the
CUDA headers bundled with TF. Output dir bazel-out/k8-opt-cuda (--platform_suffix).
The nvcc genrules are tagged "manual", so `bazel build //...` without
--config=cuda never runs nvcc.

`avx512_srcs` are compiled alone with the pip build's AVX512_FLAGS (custom_ops/build.py;
none off x86-64, where they are left out) and the other sources get
-DSG2_HAVE_AVX512_KERNELS=1, which lets them call that code on CPUs that run AVX-512.

Includes are workspace-root relative ("custom_ops/..."); Bazel compiles from the
execroot, which is the workspace root, so no extra -I is needed.
"""

load(
    "@local_tf//:tf_config.bzl",
    "CUDA_ARCH_FLAGS",
    "CXX_AVX512_FLAGS",
    "CXX_OPT_FLAGS",
    "NVCC",
    "NVCC_FLAGS",
    "TF_CXXOPTS",
    "TF_DEFINES",
    "TF_INCLUDE_DIR",
)

_CUDA = "//build_defs:cuda"

# Flags of the g++ compile of every op source: TF's (its -D flags come with
# @local_tf//:tf_header_lib; TF_CXXOPTS carries e.g. --std=c++17) and the pip
# build's CXX_OPT_FLAGS (custom_ops/build.py), read by tf_configure.bzl.
OP_COPTS = TF_CXXOPTS + CXX_OPT_FLAGS

# Flags of every nvcc compile: the pip build's NVCC_FLAGS and arch flags
# (custom_ops/build_cuda.py, STYLEGAN2_TF_CUDA_ARCHS). TF's -D flags keep the
# ABI (and Eigen's alignment) equal to the g++ side; TF's include dir provides
# Eigen (read in place: nvcc runs in a genrule).
NVCC_COMMAND_FLAGS = [
    "-x cu",
    "-Xcompiler -fPIC",
    "-Wno-deprecated-gpu-targets",
    "--threads 0",
] + NVCC_FLAGS + ["-D" + d for d in TF_DEFINES] + ["-isystem " + TF_INCLUDE_DIR] + CUDA_ARCH_FLAGS

def _basename(path):
    return path.split("/")[-1].split(":")[-1]

def _nvcc_objects(base, cuda_srcs, hdrs, tags):
    """One nvcc genrule per CUDA source; returns the object labels."""
    if not NVCC:
        nvcc_cmd = "echo 'custom_op_library: no nvcc found (put it on PATH or set NVCC " + \
                   "or CUDA_HOME)' >&2; exit 1"
    else:
        nvcc_cmd = NVCC
    objs = []
    for src in cuda_srcs:
        stem = _basename(src).replace(".cu.cc", "").replace(".cu", "")
        rule = "%s_%s_nvcc" % (base, stem)
        out = "%s_objs/%s.cu.pic.o" % (base, stem)
        native.genrule(
            name = rule,
            srcs = [src] + hdrs,
            outs = [out],
            cmd = "%s %s -I. -c $(location %s) -o $@" % (
                nvcc_cmd,
                " ".join(NVCC_COMMAND_FLAGS),
                src,
            ),
            message = "nvcc %s" % _basename(src),
            tags = ["manual", "local"] + tags,
        )
        objs.append(":" + out)
    return objs

def custom_op_library(
        name,
        srcs,
        hdrs = [],
        cuda_srcs = [],
        cuda_hdrs = [],
        avx512_srcs = [],
        copts = [],
        deps = [],
        linkopts = [],
        tags = [],
        visibility = None,
        **kwargs):
    """Defines `name` (e.g. "_upfirdn2d.so"), a loadable TF op library.

    Args:
      name: output file name, ending in ".so".
      srcs: C++ sources compiled by g++ (op registration + kernels).
      hdrs: headers those sources (and the CUDA sources) include.
      cuda_srcs: sources compiled by nvcc, only under --define=cuda=true.
      cuda_hdrs: headers only the CUDA sources include (e.g. *.cuh).
      avx512_srcs: C++ sources compiled with CXX_AVX512_FLAGS (see above).
      copts: extra g++ flags.
      deps: extra cc deps.
      linkopts: extra link flags.
      tags: tags of every generated target.
      visibility: of the .so target.
      **kwargs: passed to the cc_binary.
    """
    if not name.endswith(".so"):
        fail("custom_op_library name must end in .so, got " + name)
    base = name[:-len(".so")].lstrip("_")

    cuda_deps = []
    cuda_copts = []
    cuda_linkopts = []
    if cuda_srcs:
        objs = _nvcc_objects(base, cuda_srcs, hdrs + cuda_hdrs, tags)
        native.cc_library(
            name = base + "_cuda_objs",
            srcs = objs,
            deps = ["@local_tf//:cuda_headers", "@local_tf//:cudart_static"],
            tags = ["manual"] + tags,
        )
        cuda_deps = [":" + base + "_cuda_objs"]
        cuda_copts = ["-DGOOGLE_CUDA=1"]

        # libtensorflow_framework exports the CUDA runtime API too (TF's stub for
        # its own CUDA version). Link the toolkit's static runtime instead, as
        # nvcc would, and keep its symbols local so that at run time our kernels'
        # registration and launches go to the runtime that matches the nvcc that
        # compiled them, never interposed by TF's. (cuda deps come first in the
        # link line, before -ltensorflow_framework.)
        cuda_linkopts = ["-Wl,--exclude-libs,libcudart_static.a"]

    avx512_deps = []
    avx512_copts = []
    if avx512_srcs and CXX_AVX512_FLAGS:
        native.cc_library(
            name = base + "_avx512",
            srcs = avx512_srcs,
            hdrs = hdrs,
            copts = OP_COPTS + CXX_AVX512_FLAGS,
            alwayslink = 1,
            linkstatic = 1,
            tags = tags,
        )
        avx512_deps = [":" + base + "_avx512"]
        avx512_copts = ["-DSG2_HAVE_AVX512_KERNELS=1"]

    native.cc_binary(
        name = name,
        srcs = srcs + hdrs,
        copts = OP_COPTS + avx512_copts + copts + select({
            _CUDA: cuda_copts,
            "//conditions:default": [],
        }),
        linkopts = linkopts + select({
            _CUDA: cuda_linkopts,
            "//conditions:default": [],
        }),
        linkshared = 1,
        linkstatic = 1,
        deps = deps + avx512_deps + select({
            _CUDA: cuda_deps,
            "//conditions:default": [],
        }) + [
            "@local_tf//:tf_header_lib",
            "@local_tf//:libtensorflow_framework",
        ],
        tags = tags,
        visibility = visibility,
        **kwargs
    )
