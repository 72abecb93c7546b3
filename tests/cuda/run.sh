#!/usr/bin/env bash
# Builds and runs the standalone kernel harness (no TensorFlow needed).
#
#   bash tests/cuda/run.sh             nvcc build: CPU-loop checks, then CUDA checks and
#                                      timings (skipped, exit 0, when no GPU is visible)
#   bash tests/cuda/run.sh --cpu-only  g++ build of the CPU-loop checks only
#
# Env: NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc), CXX (default g++),
# CUDA_ARCH (e.g. 90; default: the visible GPU's, else 75), BUILD_DIR (default: a temp dir),
# CPU_FLAGS (more g++ flags of --cpu-only, e.g. custom_ops/build.py's AVX512_FLAGS).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$(mktemp -d)}"
[[ -n "${BUILD_DIR:-}" ]] || trap 'rm -rf "$build"' EXIT
mkdir -p "$build"
src="$repo/tests/cuda/harness.cu"

if [[ "${1:-}" == "--cpu-only" ]]; then
  # shellcheck disable=SC2086  # CPU_FLAGS is deliberately word-split.
  "${CXX:-g++}" -std=c++17 -O2 -Wall -Wextra ${CPU_FLAGS:-} -I"$repo" -x c++ "$src" -o "$build/harness_cpu"
  exec "$build/harness_cpu"
fi

nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [[ ! -x "$nvcc" ]]; then
  echo "nvcc not found (set NVCC, or run with --cpu-only)" >&2
  exit 2
fi
arch="${CUDA_ARCH:-}"
if [[ -z "$arch" ]] && command -v nvidia-smi >/dev/null 2>&1; then
  arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')" || arch=""
fi
arch="${arch:-75}"
"$nvcc" -std=c++17 -O2 --expt-relaxed-constexpr -gencode "arch=compute_${arch},code=sm_${arch}" \
  -I"$repo" -x cu "$src" -o "$build/harness"
exec "$build/harness"
