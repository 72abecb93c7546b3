"""Speed benchmarks; each mode prints ONE JSON line.

  python scripts/benchmark.py ops [--batch=2] [--repeats=10]
  python scripts/benchmark.py generate --resolution=64 --batch=4 --fmap_base=2048 --fmap_max=128
      --latent_size=128 --mapping_layers=2 [--impl=auto|ref|custom] [--xla]
  python scripts/benchmark.py train (same size flags)

`generate` times the generator's forward pass (const noise, psi 1) and reports
`g_fwd_img_per_s`, the best of --repeats runs after a warm-up. The size flags
are the official TF1 names (presets.from_tf1_names translates them).

`train` times one full training iteration, `train_iter_s`: G main + G path-length
+ D main + D R1, each once with its optimizer update, plus the G EMA update
(best of --repeats after a warm-up), and each phase on its own.

`ops` times upfirdn2d and bias_act, reference (pure TF) vs compiled, forward and
forward+backward, on the shapes a 256-px StyleGAN2 generator and discriminator
use, inside tf.function, best of --repeats after a warm-up. Ratios compare
timings taken in the same run; machines are shared and noisy.
"""

import json
import os
import time

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import numpy as np
import tensorflow as tf
from absl import app, flags

from stylegan2_tf import cli
from stylegan2_tf.ops import (
    bias_act,
    current_impl,
    downsample2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
    use_impl,
)
from stylegan2_tf.ops.native import impl_under_xla

BATCH = flags.DEFINE_integer("batch", None, "Images per batch (ops: 2, generate: 4).", lower_bound=1)
REPEATS = flags.DEFINE_integer("repeats", 10, "Timed runs per measurement; the best is kept.", lower_bound=1)
RESOLUTION = flags.DEFINE_integer("resolution", 64, "generate: image resolution.", lower_bound=4)
FMAP_BASE = flags.DEFINE_integer("fmap_base", 2048, "generate: official fmap_base.", lower_bound=1)
FMAP_MAX = flags.DEFINE_integer("fmap_max", 128, "generate: most feature maps per layer.", lower_bound=1)
LATENT_SIZE = flags.DEFINE_integer("latent_size", 128, "generate: z and w size.", lower_bound=1)
MAPPING_LAYERS = flags.DEFINE_integer("mapping_layers", 2, "generate: mapping layers.", lower_bound=1)
XLA = flags.DEFINE_boolean("xla", False, "Compile with XLA (uses the reference ops).")
FUSED = flags.DEFINE_boolean("fused_modconv", False, "generate: one grouped conv per layer.")
MODES = ("ops", "generate", "train")


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


def _flag_settings():
    """The NetworkSettings of the size flags (official TF1 names, translated by from_tf1_names)."""
    from stylegan2_tf.networks.presets import NetworkSettings, from_tf1_names

    return NetworkSettings(**from_tf1_names(
        fmap_base=FMAP_BASE.value, fmap_max=FMAP_MAX.value, latent_size=LATENT_SIZE.value,
        dlatent_size=LATENT_SIZE.value, mapping_layers=MAPPING_LAYERS.value))


def _flag_generator(fused_modconv=False):
    """An unconditional RGB Generator of the size the flags give."""
    from stylegan2_tf.networks.presets import build_generator

    return build_generator(_flag_settings(), RESOLUTION.value,
                           synthesis_kwargs={"fused_modconv": fused_modconv})


def _measured_impl():
    """The op implementation to measure: --impl, or the reference ops under --xla (ours cannot compile)."""
    try:
        return impl_under_xla(current_impl()) if XLA.value else current_impl()
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def benchmark_generate(batch, repeats):
    """{"g_fwd_img_per_s": ..., ...} for the generator forward pass."""
    impl = _measured_impl()
    G = _flag_generator(fused_modconv=FUSED.value)
    forward = tf.function(lambda z: G(z, noise_mode="const"), jit_compile=XLA.value)
    z = tf.constant(np.random.RandomState(0).randn(batch, LATENT_SIZE.value).astype(np.float32))
    with use_impl(impl):
        seconds = _best_ms(forward, [z], repeats) / 1e3
    return {"mode": "generate", "tensorflow": tf.__version__, "cpu_threads": os.cpu_count(),
            "impl": impl, "xla": XLA.value, "fused_modconv": FUSED.value, "batch": batch,
            "resolution": RESOLUTION.value, "fmap_base": FMAP_BASE.value,
            "fmap_max": FMAP_MAX.value, "latent_size": LATENT_SIZE.value,
            "mapping_layers": MAPPING_LAYERS.value, "g_fwd_ms": round(seconds * 1e3, 3),
            "g_fwd_img_per_s": round(batch / seconds, 2)}


def benchmark_train(batch, repeats):
    """{"train_iter_s": ..., per-phase seconds} for one iteration of all four phases."""
    from stylegan2_tf.networks.presets import build_discriminator
    from stylegan2_tf.training.trainer import Trainer, TrainingConfig

    impl = _measured_impl()
    G, G_ema = _flag_generator(), _flag_generator()
    D = build_discriminator(_flag_settings(), RESOLUTION.value, mbstd_group_size=min(4, batch))
    trainer = Trainer(G, D, G_ema, TrainingConfig(batch=batch, lrate=0.0025, xla=XLA.value))
    rng = np.random.RandomState(0)
    args = (tf.constant(rng.uniform(-1, 1, (batch, RESOLUTION.value, RESOLUTION.value, 3)),
                        tf.float32),
            tf.zeros([batch, 0]), tf.constant(rng.randn(batch, LATENT_SIZE.value), tf.float32))
    phases = {name: (lambda name=name: trainer.run_phase(name, *args))
              for name in ("g_main", "g_reg", "d_main", "d_reg")}
    phases["ema"] = lambda: trainer.update_ema(1e6)
    with use_impl(impl):
        for run in phases.values():  # warm-up: tracing
            run()
    best = {name: float("inf") for name in phases}
    best_iteration = float("inf")
    for _ in range(repeats):
        total = 0.0
        for name, run in phases.items():
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            best[name] = min(best[name], seconds)
            total += seconds
        best_iteration = min(best_iteration, total)
    return {"mode": "train", "tensorflow": tf.__version__, "cpu_threads": os.cpu_count(),
            "impl": impl, "xla": XLA.value, "batch": batch, "resolution": RESOLUTION.value,
            "fmap_base": FMAP_BASE.value, "fmap_max": FMAP_MAX.value,
            "latent_size": LATENT_SIZE.value, "mapping_layers": MAPPING_LAYERS.value,
            "train_iter_s": round(best_iteration, 4),
            "phase_s": {name: round(value, 4) for name, value in best.items()}}


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise app.UsageError(f"expected one MODE (benchmark.py MODE [flags]), one of "
                             f"{', '.join(MODES)}; got {' '.join(argv[1:]) or 'none'}")
    if argv[1] in ("generate", "train"):
        measure = benchmark_generate if argv[1] == "generate" else benchmark_train
        print(json.dumps(measure(BATCH.value or 4, REPEATS.value)), flush=True)
        return
    cases, overhead = benchmark_ops(BATCH.value or 2, REPEATS.value)
    print(json.dumps({
        "mode": "ops",
        "tensorflow": tf.__version__,
        "cpu_threads": os.cpu_count(),
        "batch": BATCH.value or 2,
        "call_overhead_ms": round(overhead, 3),
        "cases": cases,
        "min_speedup_fwd_bwd": min(c["speedup_fwd_bwd"] for c in cases.values()),
        "min_speedup_fwd_bwd_net": min(c["speedup_fwd_bwd_net"] for c in cases.values()),
    }), flush=True)


if __name__ == "__main__":
    cli.run(main)
