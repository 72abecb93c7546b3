#!/usr/bin/env bash
# Builds the CPU custom-op libraries with Bazel and copies them to a directory.
#
#   .ci/bazel_build.sh [OUT_DIR]          (default: build/bazel-ops)
#
# Installs Debian's bazel-bootstrap (Bazel 4.2.3) when `bazel` is missing. The
# build is fully offline (see WORKSPACE). Idempotent: a second run is a Bazel
# cache hit and just re-copies the files.
# Env: PYTHON_BIN_PATH (Python with TensorFlow; default python3 on PATH),
#      BAZEL_ARGS (extra `bazel build` flags, e.g. "--config=cuda"),
#      BAZEL_STARTUP_ARGS (e.g. "--output_user_root=/tmp/bazel").
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-build/bazel-ops}"
cd "$repo_root"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t0="$(now)"
if ! command -v bazel >/dev/null 2>&1; then
  echo "bazel_build: bazel not found; installing bazel-bootstrap" >&2
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bazel-bootstrap >/dev/null
  echo "bazel_build: installed bazel in $(elapsed "$t0")s" >&2
fi

targets=(//:_upfirdn2d.so //:_bias_act.so //:_bilinear_sample.so)
t1="$(now)"
# shellcheck disable=SC2086  # BAZEL_*ARGS are deliberately word-split.
bazel ${BAZEL_STARTUP_ARGS:-} build ${BAZEL_ARGS:-} "${targets[@]}"
build_s="$(elapsed "$t1")"

bin_dir="$(bazel ${BAZEL_STARTUP_ARGS:-} info ${BAZEL_ARGS:-} bazel-bin 2>/dev/null)"
for lib in _upfirdn2d.so _bias_act.so _bilinear_sample.so; do
  # bazel-bin files are read-only; replace rather than overwrite in place.
  rm -f "$out_dir/$lib"
  cp "$bin_dir/$lib" "$out_dir/$lib"
  chmod u+w "$out_dir/$lib"
done

echo "bazel_build: bazel build ${targets[*]}: ${build_s}s"
echo "bazel_build: total $(elapsed "$t0")s; libraries in $out_dir:"
ls -l "$out_dir"/_upfirdn2d.so "$out_dir"/_bias_act.so "$out_dir"/_bilinear_sample.so
