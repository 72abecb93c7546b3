"""Speed benchmarks; each mode prints ONE JSON line.

  python scripts/benchmark.py ops [--batch=2] [--repeats=10]
  python scripts/benchmark.py generate --resolution=64 --batch=4 --fmap_base=2048 --fmap_max=128
      --latent_size=128 --mapping_layers=2 [--impl=auto|ref|custom] [--xla] [--profile]
  python scripts/benchmark.py train (same size flags) [--profile] [--aug=ada [--p=0.5]]
  every mode: [--threads=N] [--nolimits] [--matmul_size=2048] [--copy_mb=64]

`generate` times the generator's forward pass (const noise, psi 1) and reports
`g_fwd_img_per_s`, the best of --repeats runs after a warm-up. The size flags
are the official TF1 names (presets.from_tf1_names translates them).

`train` times one full training iteration, `train_iter_s`: G main + G path-length
+ D main + D R1, each once with its optimizer update, plus the G EMA update
(best of --repeats after a warm-up), and each phase on its own; without augmentation, whose
work the FLOP count leaves out. --aug=ada times the same iteration again with D's inputs
augmented (--augpipe, at the fixed probability --p), alternating with iterations without, and
reports both (`train_iter_s_plain`, `train_iter_s_augmented`) and `augment_overhead` (their
ratio - 1).

`ops` times upfirdn2d and bias_act, reference (pure TF) vs compiled, forward and
forward+backward, on the shapes a 256-px StyleGAN2 generator and discriminator
use, inside tf.function, best of --repeats after a warm-up. Ratios compare
timings taken in the same run; machines are shared and noisy.

Against the machine's limits, measured in the same run with the same thread settings
(`limits`; --nolimits skips them): `matmul_gflops`, a float32 tf.linalg.matmul of two
--matmul_size squares (2 n^3 FLOPs / best time), and `copy_gbps`, a copy of a float32
tensor of --copy_mb MiB into a new buffer (tf.raw_ops.DeepCopy, output allocated as every
op's is): bytes read + bytes written / (best time - an empty tf.function call). Smaller
working sets copy faster (caches): `ops` also gives the copy rate at each case's size.

`generate` and `train` report the FLOPs of what they time, counted from the network's
layer shapes (stylegan2_tf.flops; its convention in `flops_convention`), the achieved
GFLOP/s and its fraction of matmul_gflops; `train` for every phase too, and for an
iteration with the regularization phases at their lazy intervals (`*_amortized_*`). `ops`
reports the bytes each case must move (inputs read + outputs written; the backward reads dy,
and y for bias_act, and writes the input gradients) and the fraction of copy_gbps achieved
(`*_copy_fraction`: the time those bytes take at copy_gbps / the time taken, both net of an
empty tf.function call), and the copy rate at the case's own size (`copy_gbps_at_size`); for
the upfirdn2d cases also the forward FLOPs (`fwd_gflop`, as stylegan2_tf.flops counts them) and the
compiled op's rate (`custom_fwd_gflops_per_s`, net of the empty call): a 4x4 filter does 16
multiply-adds per output element, so arithmetic, not memory, can bound it.

--profile (generate, train) traces --profile_calls more calls with the TensorFlow profiler
and reports where the time went by layer kind (stylegan2_tf.profiling): under `profile` in
the JSON line, and as tables on stderr. --threads sets TensorFlow's intra- and inter-op
thread pools (0: TensorFlow's default, one thread per core). Memory (MiB, Linux): resident
once the networks are built (`rss_built_mb`) and after the warm-up call (`rss_warm_mb`), the
peak during the timed calls (`run_peak_rss_mb`, the peak reset through /proc/self/clear_refs
after the warm-up) and the peak of the whole process (`peak_rss_mb`, tracing included).
"""

import json
import os
import sys
import time

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import numpy as np
import tensorflow as tf
from absl import app, flags

from stylegan2_tf import cli, flops, profiling
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
PROFILE = flags.DEFINE_boolean("profile", False, "generate, train: report where the time goes by layer "
                                "kind, from a TensorFlow profiler trace.")
PROFILE_CALLS = flags.DEFINE_integer("profile_calls", 2, "Calls traced by --profile.", lower_bound=1)
THREADS = flags.DEFINE_integer("threads", 0, "TensorFlow's intra- and inter-op threads (0: its default).",
                               lower_bound=0)
LIMITS = flags.DEFINE_boolean("limits", True, "Measure the machine's matmul GFLOP/s and copy GB/s.")
MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices of the matmul limit.",
                                   lower_bound=1)
AUG = flags.DEFINE_enum("aug", "noaug", ["noaug", "ada"], "train: ada also times an iteration with D's "
                        "inputs augmented at probability --p, in the same run (augment_overhead).")
P = flags.DEFINE_float("p", 0.5, "train --aug=ada: the augmentation probability timed.", lower_bound=0,
                       upper_bound=1)
AUGPIPE = flags.DEFINE_string("augpipe", "bgc", "train --aug=ada: the augmentation pipeline timed.")
COPY_MB = flags.DEFINE_integer("copy_mb", 64, "MiB of the tensor of the copy limit.", lower_bound=1)
MODES = ("ops", "generate", "train")
MB = 1 << 20


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


def _set_threads(threads):
    """TensorFlow's intra- and inter-op thread pools of `threads` threads (0: its default)."""
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as error:  # TensorFlow's runtime already started
            raise app.UsageError(f"--threads: {error}") from error


def _thread_settings():
    return {"cpu_threads": os.cpu_count(),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def measure_limits(repeats, matmul_size=2048, copy_mb=64):
    """The machine's float32 matmul GFLOP/s and copy GB/s under the current thread settings.

    matmul: tf.linalg.matmul of two [n, n] matrices, 2 n^3 FLOPs per best time. copy:
    tf.raw_ops.DeepCopy of a float32 x of copy_mb MiB into a new buffer (as every op's output
    is), bytes read + bytes written (2 |x|) per best time less the time of an empty
    tf.function call. (TensorFlow's x + s moves the same bytes about 20% slower.)
    """
    n = matmul_size
    a = tf.random.stateless_normal([n, n], seed=[0, 1])
    b = tf.random.stateless_normal([n, n], seed=[0, 2])
    matmul_ms = _best_ms(tf.function(tf.linalg.matmul), [a, b], max(repeats, 3))
    overhead = _call_overhead_ms(repeats)
    copy_gbps = _copy_gbps(2 * copy_mb * MB, max(repeats, 5), overhead)
    return {"matmul_gflops": round(2 * n**3 / matmul_ms / 1e6, 1), "matmul_size": n,
            "copy_gbps": round(copy_gbps, 2), "copy_mb": copy_mb,
            "copy_measure": "tf.raw_ops.DeepCopy of a float32 tensor of copy_mb MiB: (bytes read + "
                            "written) / (best time - empty call)"}


def _copy_gbps(moved_bytes, repeats, overhead_ms):
    """GB/s of a copy moving `moved_bytes` (a float32 x of half of them into a new buffer:
    tf.raw_ops.DeepCopy, a stateful op that graph optimization keeps), net of an empty call."""
    x = tf.random.stateless_uniform([max(moved_bytes // 8, 1)], seed=[0, 3])
    copy = tf.function(lambda x: tf.raw_ops.DeepCopy(x=x))
    copy_ms = _best_ms(copy, [x], repeats)
    return moved_bytes / max(copy_ms - overhead_ms, 1e-3) / 1e6


def _limits(repeats):
    return measure_limits(repeats, MATMUL_SIZE.value, COPY_MB.value) if LIMITS.value else None


def _rss_mb():
    """Resident memory of this process in MiB (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as file:
            return round(int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB, 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _reset_peak_rss():
    """Resets this process's peak resident set (Linux /proc/self/clear_refs, "5"); whether it could."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset_mb(was_reset):
    """The peak resident set since _reset_peak_rss (VmHWM) in MiB, or None."""
    if not was_reset:
        return None
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_mb():
    """Peak resident memory of this process in MiB, or None where `resource` is missing."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (MB if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KiB on Linux


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
    """(name, op builder taking impl, inputs, whether the backward reads y, forward FLOPs or
    None) for the resampling and bias_act of a 256-px G and D; FLOPs as stylegan2_tf.flops
    counts them (a 2-D filter: 2 fh fw / up^2 per output element)."""
    rng = np.random.default_rng(0)
    f = setup_filter([1, 3, 3, 1])

    def images(h, c):
        return rng.standard_normal([batch, h, h, c]).astype(np.float32)

    def fir(h, c, up=1, down=1, padding=(0, 0, 0, 0)):
        return flops.upfirdn2d_flops(batch, h, h, c, f, up=up, down=down, padding=padding)[0]

    up_padding, down_padding = flops.upsample_padding(f), flops.downsample_padding(f)
    return [
        # G: skip-architecture RGB upsampling and upsampling of features.
        ("upsample2d_rgb_128to256", lambda impl: lambda x: upsample2d(x, f, impl=impl), [images(128, 3)],
         False, fir(128, 3, up=2, padding=up_padding)),
        ("upsample2d_c128_64to128", lambda impl: lambda x: upsample2d(x, f, impl=impl), [images(64, 128)],
         False, fir(64, 128, up=2, padding=up_padding)),
        # G: the blur after the transposed 3x3 conv of an up-block (pad 1 each side).
        ("filter2d_c64_blur_after_convT_256", lambda impl: lambda x: upfirdn2d(x, f, padding=1, gain=4, impl=impl),
         [images(257, 64)], False, fir(257, 64, padding=(1, 1, 1, 1))),
        # D: downsampling in residual blocks.
        ("downsample2d_c64_256to128", lambda impl: lambda x: downsample2d(x, f, impl=impl), [images(256, 64)],
         False, fir(256, 64, down=2, padding=down_padding)),
        ("downsample2d_c256_64to32", lambda impl: lambda x: downsample2d(x, f, impl=impl), [images(64, 256)],
         False, fir(64, 256, down=2, padding=down_padding)),
        # G and D: bias + lrelu after convolutions (the gradient reads y for the sign).
        ("bias_act_lrelu_c64_256", lambda impl: lambda x, b: bias_act(x, b, act="lrelu", impl=impl),
         [images(256, 64), rng.standard_normal([64]).astype(np.float32)], True, None),
        ("bias_act_lrelu_c512_32", lambda impl: lambda x, b: bias_act(x, b, act="lrelu", impl=impl),
         [images(32, 512), rng.standard_normal([512]).astype(np.float32)], True, None),
    ]


def op_bytes(inputs, output_shape, backward_reads_output, itemsize=4):
    """(forward, forward + backward) bytes an op must move: the forward reads its inputs and
    writes its output; the backward reads dy (and y when `backward_reads_output`) and writes
    a gradient of every input."""
    inputs_bytes = sum(int(np.prod(shape)) for shape in inputs) * itemsize
    output_bytes = int(np.prod(output_shape)) * itemsize
    forward = inputs_bytes + output_bytes
    backward = output_bytes * (2 if backward_reads_output else 1) + inputs_bytes
    return forward, forward + backward


def _call_overhead_ms(repeats):
    """Time of calling a tf.function that does no work: the floor of every measurement."""
    x = tf.zeros([1])
    return _best_ms(tf.function(tf.identity), [x], max(repeats, 50))


def benchmark_ops(batch, repeats, copy_gbps=None):
    """{case: {ref/custom fwd and fwd+bwd ms, speedups, bytes, copy fractions}} for every op
    case, and the call overhead.

    `speedup_*` divide the raw times; `speedup_*_net` first subtract the cost of an
    empty tf.function call, which a training step pays once, not once per op.
    `*_copy_fraction` (with copy_gbps, the machine's copy GB/s): the time moving the case's
    bytes at copy_gbps takes / the time taken less the empty call's. `copy_gbps_at_size`:
    the same copy measure moving the case's forward bytes, for the cache effects of its size.
    """
    overhead = _call_overhead_ms(repeats)
    results = {}
    for name, build, inputs, reads_output, forward_flop in _op_cases(batch):
        inputs = [tf.constant(v) for v in inputs]
        dy = tf.random.stateless_normal(build("ref")(*inputs).shape, seed=[1, 2])
        forward_bytes, total_bytes = op_bytes([x.shape for x in inputs], dy.shape, reads_output)
        entry = {"shape": list(inputs[0].shape), "fwd_mb": round(forward_bytes / 1e6, 3),
                 "fwd_bwd_mb": round(total_bytes / 1e6, 3)}
        for impl in ("ref", "custom"):
            forward, forward_backward = _forward_and_backward(build(impl))
            entry[f"{impl}_fwd_ms"] = round(_best_ms(forward, inputs, repeats), 3)
            entry[f"{impl}_fwd_bwd_ms"] = round(_best_ms(forward_backward, [dy, *inputs], repeats), 3)
        for key in ("fwd", "fwd_bwd"):
            ref, custom = entry[f"ref_{key}_ms"], entry[f"custom_{key}_ms"]
            entry[f"speedup_{key}"] = round(ref / custom, 2)
            entry[f"speedup_{key}_net"] = round((ref - overhead) / max(custom - overhead, 1e-3), 2)
        entry["copy_gbps_at_size"] = round(_copy_gbps(forward_bytes, repeats, overhead), 2)
        if forward_flop is not None:  # the arithmetic rate: what bounds filters with many taps
            entry["fwd_gflop"] = _sig(forward_flop / 1e9)
            entry["custom_fwd_gflops_per_s"] = _sig(
                forward_flop / 1e9 / (max(entry["custom_fwd_ms"] - overhead, 1e-3) / 1e3))
        if copy_gbps:
            for impl in ("ref", "custom"):
                for key, moved in (("fwd", forward_bytes), ("fwd_bwd", total_bytes)):
                    copy_ms = moved / copy_gbps / 1e6
                    taken = max(entry[f"{impl}_{key}_ms"] - overhead, 1e-3)
                    entry[f"{impl}_{key}_copy_fraction"] = round(copy_ms / taken, 3)
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


def _size_entries():
    return {"resolution": RESOLUTION.value, "fmap_base": FMAP_BASE.value, "fmap_max": FMAP_MAX.value,
            "latent_size": LATENT_SIZE.value, "mapping_layers": MAPPING_LAYERS.value}


def _rates(gflop, seconds, limits):
    """{gflops_per_s, fraction_of_matmul} of gflop done in seconds."""
    rate = gflop / seconds
    out = {"gflops_per_s": _sig(rate)}
    if limits:
        out["fraction_of_matmul"] = round(rate / limits["matmul_gflops"], 3)
    return out


def _profile(title, fn, calls, top_level="loss", flop_count=None):
    """profiling.breakdown of `calls` calls of fn (already warm), its table printed on stderr."""
    summary = profiling.breakdown(profiling.trace(fn, calls), top_level=top_level, flops=flop_count)
    print(profiling.format_breakdown(title, summary), file=sys.stderr, flush=True)
    return summary


def benchmark_generate(batch, repeats):
    """{"g_fwd_img_per_s": ..., FLOPs, rates, limits, ...} for the generator forward pass."""
    impl = _measured_impl()
    limits = _limits(repeats)
    G = _flag_generator(fused_modconv=FUSED.value)
    forward = tf.function(lambda z: G(z, noise_mode="const"), jit_compile=XLA.value)
    z = tf.constant(np.random.RandomState(0).randn(batch, LATENT_SIZE.value).astype(np.float32))
    rss_built = _rss_mb()
    with use_impl(impl):
        forward(z)  # tracing: its memory is not the run's
        rss_warm, was_reset = _rss_mb(), _reset_peak_rss()
        seconds = _best_ms(forward, [z], repeats) / 1e3
        run_peak = _peak_rss_since_reset_mb(was_reset)
        count = flops.generator_flops(G, batch, noise_mode="const")
        profile = _profile("G forward", lambda: forward(z), PROFILE_CALLS.value,
                           flop_count=count) if PROFILE.value else None
    gflop = count.total / 1e9
    rates = _rates(gflop, seconds, limits)
    result = {"mode": "generate", "tensorflow": tf.__version__, **_thread_settings(),
              "impl": impl, "xla": XLA.value, "fused_modconv": FUSED.value, "batch": batch,
              **_size_entries(), "g_fwd_ms": round(seconds * 1e3, 3),
              "g_fwd_img_per_s": round(batch / seconds, 2),
              "g_fwd_gflop": _sig(gflop), "g_fwd_gflop_by_kind": _gflop_by_kind(count),
              "g_fwd_gflops_per_s": rates["gflops_per_s"],
              "flops_convention": "multiply-add = 2 FLOPs, other elementwise ops 1 (stylegan2_tf/flops.py)",
              "limits": limits, **_memory(rss_built, rss_warm, run_peak)}
    if "fraction_of_matmul" in rates:
        result["g_fwd_fraction_of_matmul"] = rates["fraction_of_matmul"]
    if profile is not None:
        result["profile"] = {"g_fwd": profile}
    return result


def _memory(rss_built, rss_warm, run_peak):
    """The memory entries of the JSON line (MiB): resident once the networks are built, after
    the warm-up (tracing) call, the peak during the timed calls, and the process's peak."""
    peak = _peak_rss_mb()  # getrusage's maximum can lag the high-water mark it reads
    peak = max(value for value in (peak, run_peak) if value is not None) if (peak or run_peak) else None
    return {"rss_built_mb": rss_built, "rss_warm_mb": rss_warm, "run_peak_rss_mb": run_peak,
            "peak_rss_mb": peak}


def _sig(value, digits=4):
    """value rounded to `digits` significant digits."""
    return float(f"{value:.{digits}g}")


def _gflop_by_kind(count):
    return {kind: _sig(value / 1e9) for kind, value in count.as_dict().items() if kind != "total"}


def _training_config(batch, augment="noaug"):
    """The benchmark's TrainingConfig: without augmentation (whose work flops.py does not count),
    or with --aug at the fixed probability --p."""
    from stylegan2_tf.training.trainer import TrainingConfig

    return TrainingConfig(batch=batch, lrate=0.0025, xla=XLA.value, augment=augment,
                          augment_p=P.value if augment != "noaug" else 0.0, augpipe=AUGPIPE.value)


def _augmented_iteration_s(G, D, G_ema, args, batch, repeats, plain_phases):
    """(best time of an iteration without augmentation, best with --aug at --p): each iteration
    runs the four phases and the EMA; the two kinds alternate, and take turns going first, so
    drifts of a shared machine and warm caches touch both alike. plain_phases: the calls of the iteration without augmentation."""
    from stylegan2_tf.training.trainer import Trainer

    trainer = Trainer(G, D, G_ema, _training_config(batch, "fixed"))
    augmented = [lambda name=name: trainer.run_phase(name, *args) for name in ("g_main", "g_reg", "d_main", "d_reg")]
    augmented.append(lambda: trainer.update_ema(1e6))
    best = {"plain": float("inf"), "augmented": float("inf")}
    kinds = [("plain", plain_phases), ("augmented", augmented)]
    for attempt in range(repeats + 1):  # the first traces; each kind goes first every other time
        for kind, calls in kinds[::1 if attempt % 2 else -1]:
            start = time.perf_counter()
            for run in calls:
                run()
            if attempt:
                best[kind] = min(best[kind], time.perf_counter() - start)
    return best["plain"], best["augmented"]


def benchmark_train(batch, repeats):
    """{"train_iter_s": ..., per-phase seconds, FLOPs and rates} for one iteration of all four phases."""
    from stylegan2_tf.networks.presets import build_discriminator
    from stylegan2_tf.training.trainer import Trainer

    impl = _measured_impl()
    limits = _limits(repeats)
    G, G_ema = _flag_generator(), _flag_generator()
    D = build_discriminator(_flag_settings(), RESOLUTION.value, mbstd_group_size=min(4, batch))
    config = _training_config(batch)
    trainer = Trainer(G, D, G_ema, config)
    rng = np.random.RandomState(0)
    args = (tf.constant(rng.uniform(-1, 1, (batch, RESOLUTION.value, RESOLUTION.value, 3)),
                        tf.float32),
            tf.zeros([batch, 0]), tf.constant(rng.randn(batch, LATENT_SIZE.value), tf.float32))
    phases = {name: (lambda name=name: trainer.run_phase(name, *args))
              for name in ("g_main", "g_reg", "d_main", "d_reg")}
    phases["ema"] = lambda: trainer.update_ema(1e6)
    rss_built = _rss_mb()
    with use_impl(impl):
        for run in phases.values():  # warm-up: tracing
            run()
        rss_warm, was_reset = _rss_mb(), _reset_peak_rss()
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
        run_peak = _peak_rss_since_reset_mb(was_reset)
        counts = flops.training_flops(G, D, config, batch)
        profile = None
        if PROFILE.value:
            profile = {name: _profile(f"train phase {name}", run, PROFILE_CALLS.value,
                                      top_level="optimizer" if name == "ema" else "loss",
                                      flop_count=counts.phases[name])
                       for name, run in phases.items()}
    weights = {"g_reg": 1 / config.g_reg_interval, "d_reg": 1 / config.d_reg_interval}
    amortized_s = sum(best[name] * weights.get(name, 1) for name in phases)
    iteration_gflop, amortized_gflop = counts.iteration.total / 1e9, counts.amortized.total / 1e9
    phase_gflop = {name: count.total / 1e9 for name, count in counts.phases.items()}
    result = {"mode": "train", "tensorflow": tf.__version__, **_thread_settings(),
              "impl": impl, "xla": XLA.value, "batch": batch, **_size_entries(),
              "train_iter_s": round(best_iteration, 4),
              "phase_s": {name: round(value, 4) for name, value in best.items()},
              "train_iter_gflop": _sig(iteration_gflop),
              "train_iter_gflops_per_s": _rates(iteration_gflop, best_iteration, limits)["gflops_per_s"],
              "phase_gflop": {name: _sig(value) for name, value in phase_gflop.items()},
              "phase_gflops_per_s": {name: _rates(phase_gflop[name], best[name], limits)["gflops_per_s"]
                                     for name in phases},
              "train_iter_amortized_s": round(amortized_s, 4),
              "train_iter_amortized_gflop": _sig(amortized_gflop),
              "train_iter_amortized_gflops_per_s": _sig(amortized_gflop / amortized_s),
              "reg_intervals": {"g_reg": config.g_reg_interval, "d_reg": config.d_reg_interval},
              "flops_convention": flops.TRAINING_CONVENTION,
              "limits": limits, **_memory(rss_built, rss_warm, run_peak)}
    if limits:
        result["train_iter_fraction_of_matmul"] = _rates(iteration_gflop, best_iteration,
                                                         limits)["fraction_of_matmul"]
        result["train_iter_amortized_fraction_of_matmul"] = round(
            amortized_gflop / amortized_s / limits["matmul_gflops"], 3)
    if AUG.value != "noaug":
        with use_impl(impl):
            plain, augmented = _augmented_iteration_s(G, D, G_ema, args, batch, repeats,
                                                      list(phases.values()))
        result.update({"aug": AUG.value, "augpipe": AUGPIPE.value, "p": P.value,
                       "train_iter_s_plain": round(plain, 4), "train_iter_s_augmented": round(augmented, 4),
                       "augment_overhead": round(augmented / plain - 1, 3)})
    if profile is not None:
        result["profile"] = profile
    return result


def main(argv):
    if len(argv) != 2 or argv[1] not in MODES:
        raise app.UsageError(f"expected one MODE (benchmark.py MODE [flags]), one of "
                             f"{', '.join(MODES)}; got {' '.join(argv[1:]) or 'none'}")
    _set_threads(THREADS.value)
    if argv[1] in ("generate", "train"):
        measure = benchmark_generate if argv[1] == "generate" else benchmark_train
        print(json.dumps(measure(BATCH.value or 4, REPEATS.value)), flush=True)
        return
    limits = _limits(REPEATS.value)
    cases, overhead = benchmark_ops(BATCH.value or 2, REPEATS.value,
                                    limits["copy_gbps"] if limits else None)
    result = {
        "mode": "ops",
        "tensorflow": tf.__version__,
        **_thread_settings(),
        "batch": BATCH.value or 2,
        "call_overhead_ms": round(overhead, 3),
        "limits": limits,
        "cases": cases,
        "min_speedup_fwd_bwd": min(c["speedup_fwd_bwd"] for c in cases.values()),
        "min_speedup_fwd_bwd_net": min(c["speedup_fwd_bwd_net"] for c in cases.values()),
    }
    if limits:
        result["min_custom_fwd_bwd_copy_fraction"] = min(c["custom_fwd_bwd_copy_fraction"]
                                                         for c in cases.values())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    cli.run(main)
