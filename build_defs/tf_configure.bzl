"""Repository rule `tf_configure`: exposes the installed TensorFlow to Bazel.

Pattern of tensorflow/custom-op's tf_configure: run the Python interpreter that
has TensorFlow installed, read `tf.sysconfig`, and generate an external repo
(conventionally `@local_tf`) containing

  //:tf_header_lib               cc_library over TF's include dir (symlinked)
  //:libtensorflow_framework     cc_library over libtensorflow_framework.so.2
  //:cuda_headers                cc_library over the CUDA headers bundled in TF's
                                 include dir (host side of GOOGLE_CUDA builds)
  //:cudart_static               the toolkit's libcudart_static.a (nvcc's default)
  //:tf_config.bzl               constants: TF_CXXOPTS, PYTHON_BIN, NVCC, ...

Compiler flags, nvcc and the GPU architectures come from the pip build's own
code (custom_ops/build.py, custom_ops/build_cuda.py), so both builds always
compile the same way. Environment (re-read when it changes; `bazel sync
--configure` forces it):
  PYTHON_BIN_PATH                interpreter to query (default: `python3` on PATH)
  NVCC                           nvcc (default: nvcc on PATH, then $CUDA_HOME/bin,
                                 $CUDA_PATH/bin, /usr/local/cuda/bin)
  STYLEGAN2_TF_CUDA_ARCHS        GPU architectures for --config=cuda, as in the pip
                                 build: e.g. "8.6" or "7.5;8.0;8.6;9.0+PTX" (default:
                                 sm_75..sm_90 as far as nvcc supports them + PTX
                                 of the newest); a malformed value fails here

Nothing here touches the network.
"""

_PYTHON_BIN_PATH = "PYTHON_BIN_PATH"
_CUDA_ENV = ["CUDA_HOME", "CUDA_PATH", "NVCC", "STYLEGAN2_TF_CUDA_ARCHS"]

_QUERY = """
import json, sys
sys.path.insert(0, sys.argv[1])
from custom_ops import build, build_cuda
nvcc = build_cuda.find_nvcc() or ""
try:
    build_cuda.requested_archs()  # a malformed value fails with or without nvcc
    arch_flags = build_cuda.cuda_arch_flags(nvcc) if nvcc else []
except build_cuda.CudaArchsError as error:
    print("@@TF_CONFIG_ERROR@@" + str(error))
    sys.exit(1)
import tensorflow as tf
try:
    cuda_lib = str(build_cuda.cuda_paths(nvcc)[1]) if nvcc else ""
except RuntimeError:
    cuda_lib = ""
print("@@TF_CONFIG@@" + json.dumps({
    "include": tf.sysconfig.get_include(),
    "lib": tf.sysconfig.get_lib(),
    "compile_flags": tf.sysconfig.get_compile_flags(),
    "link_flags": tf.sysconfig.get_link_flags(),
    "version": tf.__version__,
    "python": sys.executable,
    "cxx_opt_flags": build.CXX_OPT_FLAGS,
    "cxx_avx512_flags": build.AVX512_FLAGS,
    "nvcc": nvcc,
    "nvcc_flags": build_cuda.NVCC_FLAGS,
    "cuda_arch_flags": arch_flags,
    "cuda_lib": cuda_lib,
}))
"""

def _fail(msg):
    fail("\n[tf_configure] %s\n" % msg)

def _find_python(ctx):
    python = ctx.os.environ.get(_PYTHON_BIN_PATH, "python3").strip()
    if "/" not in python:
        found = ctx.which(python)
        if not found:
            _fail("cannot find '%s' on PATH; set %s to a Python with TensorFlow" %
                  (python, _PYTHON_BIN_PATH))
        python = str(found)
    return python

def _query_tf(ctx, python):
    # Labels of files make Bazel re-run this rule when they change.
    root = ctx.path(Label("//:WORKSPACE")).dirname
    ctx.path(Label("//:custom_ops/build.py"))
    ctx.path(Label("//:custom_ops/build_cuda.py"))
    result = ctx.execute(
        [python, "-c", _QUERY, str(root)],
        environment = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        timeout = 300,
    )
    for line in result.stdout.splitlines():
        if line.startswith("@@TF_CONFIG_ERROR@@"):
            _fail(line[len("@@TF_CONFIG_ERROR@@"):])
        if line.startswith("@@TF_CONFIG@@"):
            return json.decode(line[len("@@TF_CONFIG@@"):])
    _fail("'%s' could not import tensorflow (rc %d):\n%s" %
          (python, result.return_code, result.stderr[-4000:]))

def _tf_configure_impl(ctx):
    python = _find_python(ctx)
    tf = _query_tf(ctx, python)

    # TF's include dir is symlinked (not copied) into the repo: ~18k headers.
    ctx.symlink(tf["include"], "include")

    # Flags: -I is replaced by the symlinked include dir; -D goes to `defines`
    # (propagated to every dependent); the rest (e.g. --std=c++17) to TF_CXXOPTS.
    defines = []
    cxxopts = []
    for flag in tf["compile_flags"]:
        if flag.startswith("-I"):
            continue
        elif flag.startswith("-D"):
            defines.append(flag[2:])
        else:
            cxxopts.append(flag)

    # Link flags: -L<dir> -l:<lib>; symlink the library itself into the repo.
    lib_dir = tf["lib"]
    lib_names = []
    for flag in tf["link_flags"]:
        if flag.startswith("-L"):
            lib_dir = flag[2:]
        elif flag.startswith("-l:"):
            lib_names.append(flag[3:])
        elif flag.startswith("-l"):
            lib_names.append("lib%s.so" % flag[2:])
    if not lib_names:
        _fail("no library in tf.sysconfig.get_link_flags(): %s" % tf["link_flags"])
    for name in lib_names:
        src = "%s/%s" % (lib_dir, name)
        if not ctx.path(src).exists:
            _fail("%s does not exist" % src)
        ctx.symlink(src, name)

    if tf["cuda_lib"]:
        ctx.symlink(tf["cuda_lib"] + "/libcudart_static.a", "cuda/libcudart_static.a")
        cudart = """cc_import(
    name = "cudart_static_archive",
    static_library = "cuda/libcudart_static.a",
)

cc_library(
    name = "cudart_static",
    linkopts = ["-ldl", "-lrt", "-lpthread"],
    deps = [":cudart_static_archive"],
)"""
    else:
        cudart = """cc_library(
    name = "cudart_static",
    linkopts = ["-lcudart_static", "-ldl", "-lrt", "-lpthread"],
)"""
    ctx.file("BUILD", """# Generated by //build_defs:tf_configure.bzl for TensorFlow {version}
# ({python}). Do not edit.
package(default_visibility = ["//visibility:public"])

exports_files(["tf_config.bzl"])

cc_library(
    name = "tf_header_lib",
    hdrs = glob(["include/**"], exclude = ["include/third_party/gpus/**"]),
    defines = {defines},
    includes = ["include"],
)

cc_library(
    name = "libtensorflow_framework",
    srcs = {libs},
)

# CUDA headers shipped inside TF's include dir (the CUDA version TF was built
# with); enough for the host-side (g++) compile of GOOGLE_CUDA=1 kernels.
cc_library(
    name = "cuda_headers",
    hdrs = glob(["include/third_party/gpus/**"]),
    includes = ["include/third_party/gpus/cuda/include"],
    deps = [":tf_header_lib"],
)

# The static CUDA runtime of the toolkit of NVCC (when found).
{cudart}
""".format(
        version = tf["version"],
        python = python,
        defines = repr(defines),
        libs = repr(lib_names),
        cudart = cudart,
    ))

    ctx.file("tf_config.bzl", """# Generated by //build_defs:tf_configure.bzl. Do not edit.
# Empty NVCC / CUDA_LIB_DIR: not found (only --config=cuda builds need them).
TF_VERSION = {version}
TF_INCLUDE_DIR = {include}
TF_LIB_DIR = {lib}
TF_DEFINES = {defines}
TF_CXXOPTS = {cxxopts}
CXX_OPT_FLAGS = {cxx_opt_flags}
CXX_AVX512_FLAGS = {cxx_avx512_flags}
PYTHON_BIN = {python}
NVCC = {nvcc}
NVCC_FLAGS = {nvcc_flags}
CUDA_LIB_DIR = {cuda_lib}
CUDA_ARCH_FLAGS = {arch_flags}
""".format(
        version = repr(tf["version"]),
        include = repr(tf["include"]),
        lib = repr(lib_dir),
        defines = repr(defines),
        cxxopts = repr(cxxopts),
        python = repr(tf["python"]),
        cxx_opt_flags = repr(tf["cxx_opt_flags"]),
        cxx_avx512_flags = repr(tf["cxx_avx512_flags"]),
        nvcc = repr(tf["nvcc"]),
        nvcc_flags = repr(tf["nvcc_flags"]),
        cuda_lib = repr(tf["cuda_lib"]),
        arch_flags = repr(tf["cuda_arch_flags"]),
    ))

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = [_PYTHON_BIN_PATH] + _CUDA_ENV,
    configure = True,
    local = True,
)
