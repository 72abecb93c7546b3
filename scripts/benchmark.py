"""Speed benchmarks; each mode prints ONE JSON line.

  python scripts/benchmark.py ops [--batch=2] [--repeats=10]

`ops` times upfirdn2d and bias_act, reference (pure TF) vs compiled, forward and
forward+backward, on the shapes a 256-px StyleGAN2 generator and discriminator
use, inside tf.function, best of --repeats after a warm-up. Ratios compare
timings taken in the same run; machines are shared and noisy.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

from stylegan2_tf.ops import bias_act, downsample2d, setup_filter, upfirdn2d, upsample2d

BATCH = flags.DEFINE_integer("batch", 2, "Images per batch in every case.", lower_bound=1)
REPEATS = flags.DEFINE_integer("repeats", 10, "Timed runs per measurement; the best is kept.", lower_bound=1)
MODES = ("ops",)


def _best_ms(fn, args, repeats):
    """Best wall time of fn(*args) in milliseconds, after one warm-up (tracing) call.

    A tf.function call on CPU returns when its outputs are computed, so no host
    copy of the results is timed.
    """
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _forward_and_backward(op):
    """tf.functions computing op(*inputs) and (op(*inputs), gradients of the inputs for dy).

    dy is an argument, not a constant, so that graph optimization cannot fold
    the backward pass away.
    """
    forward = tf.function(op)

    @tf.function
    def forward_backward(dy, *inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = op(*inputs)
        return y, tape.gradient(y, inputs, output_gradients=dy)

    return forward, forward_backward


def _op_cases(batch):
    """(name, op builder taking impl, inputs) for the resampling and bias_act of a 256-px G and D."""
    rng = np.random.default_rng(0)
    f = setup_filter([1, 3, 3, 1])

    def images(h, c):
        return rng.standard_normal([batch, h, h, c]).astype(np.float32)

    return [
        # G: skip-architecture RGB upsampling and upsampling of features.
        ("upsample2d_rgb_128to256", lambda impl: lambda x: upsample2d(x, f, impl=impl), [images(128, 3)]),
        ("upsample2d_c128_64to128", lambda impl: lambda x: upsample2d(x, f, impl=impl), [images(64, 128)]),
        # G: the blur after the transposed 3x3 conv of an up-block (pad 1 each side).
        ("filter2d_c64_blur_after_convT_256", lambda impl: lambda x: upfirdn2d(x, f, padding=1, gain=4, impl=impl),
         [images(257, 64)]),
        # D: downsampling in residual blocks.
        ("downsample2d_c64_256to128", lambda impl: lambda x: downsample2d(x, f, impl=impl), [images(256, 64)]),
        ("downsample2d_c256_64to32", lambda impl: lambda x: downsample2d(x, f, impl=impl), [images(64, 256)]),
        # G and D: bias + lrelu after convolutions.
        ("bias_act_lrelu_c64_256", lambda impl: lambda x, b: bias_act(x, b, act="lrelu", impl=impl),
         [images(256, 64), rng.standard_normal([64]).astype(np.float32)]),
        ("bias_act_lrelu_c512_32", lambda impl: lambda x, b: bias_act(x, b, act="lrelu", impl=impl),
         [images(32, 512), rng.standard_normal([512]).astype(np.float32)]),
    ]


def _call_overhead_ms(repeats):
    """Time of calling a tf.function that does no work: the floor of every measurement."""
    x = tf.zeros([1])
    return _best_ms(tf.function(tf.identity), [x], max(repeats, 50))


def benchmark_ops(batch, repeats):
    """{case: {ref/custom fwd and fwd+bwd ms, speedups}} for every op case, and the call overhead.

    `speedup_*` divide the raw times; `speedup_*_net` first subtract the cost of an
    empty tf.function call, which a training step pays once, not once per op.
    """
    overhead = _call_overhead_ms(repeats)
    results = {}
    for name, build, inputs in _op_cases(batch):
        inputs = [tf.constant(v) for v in inputs]
        dy = tf.random.stateless_normal(build("ref")(*inputs).shape, seed=[1, 2])
        entry = {"shape": list(inputs[0].shape)}
        for impl in ("ref", "custom"):
            forward, forward_backward = _forward_and_backward(build(impl))
            entry[f"{impl}_fwd_ms"] = round(_best_ms(forward, inputs, repeats), 3)
            entry[f"{impl}_fwd_bwd_ms"] = round(_best_ms(forward_backward, [dy, *inputs], repeats), 3)
        for key in ("fwd", "fwd_bwd"):
            ref, custom = entry[f"ref_{key}_ms"], entry[f"custom_{key}_ms"]
            entry[f"speedup_{key}"] = round(ref / custom, 2)
            entry[f"speedup_{key}_net"] = round((ref - overhead) / max(custom - overhead, 1e-3), 2)
        results[name] = entry
    return results, overhead


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise app.UsageError(f"usage: benchmark.py MODE [flags]; MODE is one of {', '.join(MODES)}")
    cases, overhead = benchmark_ops(BATCH.value, REPEATS.value)
    print(json.dumps({
        "mode": "ops",
        "tensorflow": tf.__version__,
        "cpu_threads": os.cpu_count(),
        "batch": BATCH.value,
        "call_overhead_ms": round(overhead, 3),
        "cases": cases,
        "min_speedup_fwd_bwd": min(c["speedup_fwd_bwd"] for c in cases.values()),
        "min_speedup_fwd_bwd_net": min(c["speedup_fwd_bwd_net"] for c in cases.values()),
    }), flush=True)


if __name__ == "__main__":
    sys.exit(app.run(main))
