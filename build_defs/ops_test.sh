#!/usr/bin/env bash
# Runner of //:ops_test: pytest on the runfiles copy of the tests, with the
# package loading the Bazel-built _upfirdn2d.so / _bias_act.so / _bilinear_sample.so.
# Usage (from Bazel): ops_test.sh <python> <pytest args...>
set -euo pipefail

python_bin="$1"
shift

root="${TEST_SRCDIR:-$0.runfiles}/${TEST_WORKSPACE:-stylegan2_tf}"
cd "$root"

for lib in _upfirdn2d.so _bias_act.so _bilinear_sample.so; do
  if [[ ! -f "$lib" ]]; then
    echo "ops_test: $lib missing from runfiles ($root)" >&2
    exit 1
  fi
  echo "ops_test: $lib -> $(readlink -f "$lib")"
done

export STYLEGAN2_TF_OPS_DIR="$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

extra=()
if [[ -n "${XML_OUTPUT_FILE:-}" ]]; then
  extra+=("--junitxml=$XML_OUTPUT_FILE")
fi
exec "$python_bin" -m pytest -p no:cacheprovider -q "${extra[@]}" "$@"
