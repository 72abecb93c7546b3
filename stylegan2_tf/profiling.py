"""Where the time goes: TensorFlow profiler traces, summed by layer kind.

`trace(fn, calls)` runs fn() `calls` times under the TensorFlow profiler
(tf.profiler.experimental.start / stop), which writes an XSpace protobuf
(`<logdir>/plugins/profile/<run>/<host>.xplane.pb`); it is read with the XSpace
protobuf classes TensorFlow itself ships (tensorflow.tsl.profiler.protobuf.xplane_pb2),
so no profiler plugin (tensorboard_plugin_profile, xprof) is needed. On the host plane,
every TensorFlow op that ran is one event named "<op name>:<op type>" on the line of the
thread that ran it; its time here is its self time (nested op events subtracted).

`classify(op_name, op_type)` sorts an op into a kind (stylegan2_tf.flops.KINDS) from
the name scopes Keras gives the layers' ops (generator/synthesis/b64/conv0/conv/...,
discriminator/b4/mbstd/..., gradient_tape/... for their gradients) and from op types:

  toRGB       anything under a ToRGB layer (`torgb`)
  mbstd       anything under MinibatchStdDev (`mbstd`)
  mapping     anything under a mapping network (`mapping`)
  modulation  the affine layer of the styles (`affine`), and the rest of a ModulatedConv2D
              (`convN/conv`): demodulation coefficients, activations (or weights) scaled
  dense       D's fully connected layers (`b4/fc`, `b4/out`)
  convolution Conv2D ops and their gradients (any type with "Conv2D", oneDNN's included)
  upfirdn2d   the compiled Upfirdn2d op, or the reference's depthwise convolutions
  bias_act    the compiled BiasAct op, or the reference's BiasAdd / LeakyRelu / clip
  optimizer   Adam (`adam/`), the finite check of gradients (IsFinite, All), the G EMA
  layout      copies that compute nothing: Transpose, Tile, Pad, Concat, Cast, Slice, ...
  noise       the rest of a SynthesisLayer (`convN`): noise scaled and added
  loss        the phase's own ops outside any network: losses, penalties, style mixing
  other       variable reads, residual adds, weight gains of D's layers, gradient sums
"""

import collections
import dataclasses
import glob
import itertools
import os
import re
import shutil
import tempfile
import time

from stylegan2_tf.flops import KINDS

_SUFFIX = re.compile(r"_\d+$")  # Keras' "b4_1", "conv_1" name-scope suffixes
_LAYOUT_TYPES = {
    "Transpose", "Tile", "Pad", "PadV2", "MirrorPad", "ConcatV2", "Concat", "Slice", "StridedSlice",
    "StridedSliceGrad", "Reshape", "Cast", "ReverseV2", "Pack", "Unpack", "Identity", "Fill",
    "BroadcastTo", "ZerosLike", "OnesLike", "Squeeze", "ExpandDims", "Snapshot", "_MklToTf",
    "_MklTranspose", "_MklConjugateTranspose", "_MklReshape", "_MklIdentity", "TensorScatterUpdate",
    "GatherV2", "Shape", "Range",
}
_BIAS_ACT_TYPES = {"BiasAdd", "BiasAddGrad", "LeakyRelu", "LeakyReluGrad", "ClipByValue",
                   "_MklLeakyRelu", "_MklLeakyReluGrad", "_MklFusedBatchNorm"}
_OPTIMIZER_TYPES = {"IsFinite", "All"}
_NETWORK_SCOPES = {"generator", "synthesis", "discriminator", "mapping"}


@dataclasses.dataclass(frozen=True)
class OpEvent:
    name: str  # the op's full name ("gradient_tape/discriminator_1/b8_1/conv0_1/Conv2D")
    type: str  # its type after graph rewrites ("_MklNativeConv2DBackpropInput")
    self_ps: int  # its self time in picoseconds


@dataclasses.dataclass
class Trace:
    """The op events of `calls` calls of a function, and their wall time."""

    events: list
    calls: int
    wall_s: float


def _xplane_pb2():
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # later TensorFlow versions ship it as a top-level `tsl`
        from tsl.profiler.protobuf import xplane_pb2
    return xplane_pb2


def _split_op_event(name):
    """(op name, op type) of an op event's name "<op name>:<op type>", else None (the
    runtime's own events: "ExecutorState::Process", "EagerLocalExecute: ...")."""
    op_name, colon, op_type = name.rpartition(":")
    if (not colon or not op_name or not op_type or "::" in name or op_name.endswith(":")
            or " " in name):
        return None
    return op_name, op_type


def read_xspace(path):
    """The op events (OpEvent) of an .xplane.pb file: self times, on every host thread."""
    xplane_pb2 = _xplane_pb2()
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    events = []
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        for line in plane.lines:
            ops = []
            for event in line.events:
                split = _split_op_event(plane.event_metadata[event.metadata_id].name)
                if split is not None:
                    ops.append((event.offset_ps, event.duration_ps, *split))
            ops.sort(key=lambda op: (op[0], -op[1]))
            # Self time: an op event inside another (a function call op run inline) is
            # subtracted from its parent.
            self_ps = [duration for _, duration, _, _ in ops]
            stack = []
            for index, (start, duration, _, _) in enumerate(ops):
                while stack and ops[stack[-1]][0] + ops[stack[-1]][1] <= start:
                    stack.pop()
                if stack:
                    self_ps[stack[-1]] -= duration
                stack.append(index)
            events.extend(OpEvent(name, op_type, max(ps, 0))
                          for (_, _, name, op_type), ps in zip(ops, self_ps))
    return events


def trace(fn, calls=1, logdir=None):
    """Trace of `calls` calls of fn() under the TensorFlow profiler (warm fn up first: tracing
    and graph optimization would be timed too). The trace files go to `logdir`, or to a
    temporary folder that is removed."""
    import tensorflow as tf

    folder = logdir or tempfile.mkdtemp(prefix="stylegan2_tf_profile_")
    try:
        tf.profiler.experimental.start(folder)
        try:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            wall = time.perf_counter() - start
        finally:
            tf.profiler.experimental.stop()
        paths = sorted(glob.glob(os.path.join(folder, "plugins", "profile", "*", "*.xplane.pb")),
                       key=os.path.getmtime)
        if not paths:
            raise RuntimeError(f"the TensorFlow profiler wrote no .xplane.pb under {folder}")
        return Trace(read_xspace(paths[-1]), calls, wall)
    finally:
        if logdir is None:
            shutil.rmtree(folder, ignore_errors=True)


def _scopes(op_name):
    """(name-scope components without Keras' _N suffixes and gradient_tape, is backward)."""
    parts = op_name.split("/")
    backward = False
    while parts and _SUFFIX.sub("", parts[0]) == "gradient_tape":
        parts, backward = parts[1:], True
    return [_SUFFIX.sub("", part) for part in parts[:-1]], backward


def classify(op_name, op_type, top_level="loss"):
    """The kind (stylegan2_tf.flops.KINDS) of an op; `top_level`: the kind of ops outside any
    network and optimizer ("loss" in a training phase, "optimizer" in the EMA update)."""
    scopes, _ = _scopes(op_name)
    kind = _scope_kind(scopes)
    if kind:
        return kind
    if "Conv2D" in op_type and "Depthwise" not in op_type:
        return "convolution"
    if "Upfirdn2d" in op_type or "DepthwiseConv2dNative" in op_type:
        return "upfirdn2d"
    if "BiasAct" in op_type or op_type in _BIAS_ACT_TYPES:
        return "bias_act"
    if not _NETWORK_SCOPES.intersection(scopes):
        if "adam" in scopes or op_type in _OPTIMIZER_TYPES or "ApplyAdam" in op_type:
            return "optimizer"
        if op_type in ("AddN", "ReadVariableOp", "AssignVariableOp") and top_level != "optimizer":
            return "other"
        if op_type not in _LAYOUT_TYPES:
            return top_level
    if op_type in _LAYOUT_TYPES:
        return "layout"
    for index, scope in enumerate(scopes):
        if re.fullmatch(r"conv\d", scope) and "synthesis" in scopes:
            if index + 1 < len(scopes) and scopes[index + 1] == "conv":
                return "modulation"
            if op_type not in ("ReadVariableOp",):
                return "noise"
    return "other"


def _scope_kind(scopes):
    if "torgb" in scopes:
        return "toRGB"
    if "mbstd" in scopes:
        return "mbstd"
    if "mapping" in scopes:
        return "mapping"
    if "affine" in scopes:
        return "modulation"
    for before, scope in itertools.pairwise(scopes):
        if before == "b4" and scope in ("fc", "out"):
            return "dense"
    return None


def breakdown(result, top_level="loss", flops=None, top=8):
    """A dict of where the time of one call went (per-call averages of a Trace):

    wall_ms: wall time; op_ms: summed self time of all ops (above wall_ms where ops overlap
    on several threads, below it by the gaps between ops); kinds: {kind: {ms, share (of
    op_ms), backward_ms}} in KINDS order, plus gflop and gflop_per_s where `flops` (a
    stylegan2_tf.flops.FlopCount of one call) holds FLOPs of that kind; top_op_types: the
    `top` op types taking most time, [type, ms, share].
    """
    per_call = 1e-9 / max(result.calls, 1)  # ps -> ms per call
    kinds = collections.defaultdict(lambda: [0, 0])
    types = collections.Counter()
    for event in result.events:
        kind = classify(event.name, event.type, top_level)
        kinds[kind][0] += event.self_ps
        if _scopes(event.name)[1]:
            kinds[kind][1] += event.self_ps
        types[event.type] += event.self_ps
    op_ps = sum(total for total, _ in kinds.values())
    out = {"wall_ms": round(result.wall_s * 1e3 / max(result.calls, 1), 3),
           "op_ms": round(op_ps * per_call, 3), "kinds": {}}
    for kind in sorted(kinds, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        total, backward = kinds[kind]
        entry = {"ms": round(total * per_call, 3), "share": round(total / max(op_ps, 1), 4),
                 "backward_ms": round(backward * per_call, 3)}
        if flops is not None and flops.get(kind):
            entry["gflop"] = round(flops[kind] / 1e9, 4)
            seconds = total * per_call / 1e3
            entry["gflop_per_s"] = round(flops[kind] / 1e9 / seconds, 2) if seconds > 0 else None
        out["kinds"][kind] = entry
    out["top_op_types"] = [[name, round(ps * per_call, 3), round(ps / max(op_ps, 1), 4)]
                           for name, ps in types.most_common(top)]
    return out


def format_breakdown(title, summary):
    """A text table of a `breakdown` dict."""
    lines = [f"{title}: {summary['wall_ms']:.1f} ms wall per call, {summary['op_ms']:.1f} ms in ops",
             f"  {'kind':<12} {'ms':>9} {'share':>7} {'bwd ms':>9} {'GFLOP':>9} {'GFLOP/s':>9}"]
    for kind, entry in summary["kinds"].items():
        gflop = f"{entry['gflop']:.3f}" if "gflop" in entry else ""
        rate = entry.get("gflop_per_s")
        lines.append(f"  {kind:<12} {entry['ms']:>9.2f} {entry['share']:>6.1%} "
                     f"{entry['backward_ms']:>9.2f} {gflop:>9} {'' if rate is None else f'{rate:.1f}':>9}")
    lines.append("  top op types: " + ", ".join(f"{name} {share:.1%}"
                                                for name, _, share in summary["top_op_types"]))
    return "\n".join(lines)
