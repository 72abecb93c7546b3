"""stylegan2_tf.profiling: op kinds from names and types, self times from an XSpace, and a
real trace of a tiny generator summed by kind."""

import pytest
import tensorflow as tf

from stylegan2_tf import flops, profiling

G_LAYER = "generator_1/synthesis_1/b8_1/conv0_1"


@pytest.mark.parametrize("name,op_type,kind", [
    (f"{G_LAYER}/conv_1/conv2d_transpose", "_MklNativeConv2DBackpropInput", "convolution"),
    ("gradient_tape/discriminator_1/b16_1/conv0_1/Conv2DBackpropFilter",
     "_MklNativeConv2DBackpropFilter", "convolution"),
    (f"{G_LAYER}/conv_1/mul_1", "Mul", "modulation"),
    (f"{G_LAYER}/conv_1/affine_1/StyleGAN2>BiasAct", "StyleGAN2>BiasAct", "modulation"),
    (f"gradient_tape/{G_LAYER}/conv_1/RsqrtGrad", "RsqrtGrad", "modulation"),
    (f"{G_LAYER}/StyleGAN2>BiasAct", "StyleGAN2>BiasAct", "bias_act"),
    (f"{G_LAYER}/add", "AddV2", "noise"),
    (f"{G_LAYER}/stateless_random_normal/StatelessRandomNormalV2", "StatelessRandomNormalV2", "noise"),
    (f"{G_LAYER}/conv_1/StyleGAN2>Upfirdn2d", "StyleGAN2>Upfirdn2d", "upfirdn2d"),
    ("discriminator_1/b16_1/conv1_1/depthwise", "DepthwiseConv2dNative", "upfirdn2d"),
    ("generator_1/synthesis_1/b8_1/torgb_1/conv_1/Conv2D", "_MklNativeConv2D", "toRGB"),
    ("discriminator_1/b4_1/mbstd_1/Square", "Square", "mbstd"),
    ("mapping_1/fc0_1/MatMul", "_MklMatMul", "mapping"),
    ("discriminator_1/b4_1/fc_1/MatMul", "_MklMatMul", "dense"),
    (f"{G_LAYER}/conv_1/transpose", "_MklTranspose", "layout"),
    ("adam/Sqrt", "Sqrt", "optimizer"),
    ("ArithmeticOptimizer/ReorderCastLikeAndValuePreserving_float_IsFinite", "IsFinite", "optimizer"),
    ("Softplus", "Softplus", "loss"),
    ("gradient_tape/Sigmoid", "Sigmoid", "loss"),
    ("discriminator_1/b8_1/add", "AddV2", "other"),
])
def test_classify(name, op_type, kind):
    assert profiling.classify(name, op_type) == kind


def test_top_level_ops_of_the_ema_update_are_optimizer_work():
    assert profiling.classify("sub_3", "Sub", top_level="optimizer") == "optimizer"
    assert profiling.classify("sub_3", "Sub") == "loss"


def test_self_times_subtract_nested_op_events(tmp_path):
    xplane_pb2 = profiling._xplane_pb2()
    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    names = {1: "outer:PartitionedCall", 2: "outer/inner:Conv2D", 3: "ExecutorState::Process",
             4: "later:AddV2"}
    for key, name in names.items():
        plane.event_metadata[key].id = key
        plane.event_metadata[key].name = name
    line = plane.lines.add(name="tf_Compute")
    for key, offset, duration in ((3, 0, 500), (1, 0, 100), (2, 10, 40), (4, 200, 30)):
        line.events.add(metadata_id=key, offset_ps=offset, duration_ps=duration)
    path = tmp_path / "host.xplane.pb"
    path.write_bytes(space.SerializeToString())
    events = {event.name: (event.type, event.self_ps) for event in profiling.read_xspace(path)}
    assert events == {"outer": ("PartitionedCall", 60), "outer/inner": ("Conv2D", 40),
                      "later": ("AddV2", 30)}


def test_a_generator_trace_by_kind(tiny_generator):
    G = tiny_generator(resolution=16)
    forward = tf.function(lambda z: G(z, noise_mode="const"))
    z = tf.zeros([2, G.z_dim])
    forward(z)
    result = profiling.trace(lambda: forward(z), calls=2)
    assert result.calls == 2 and result.wall_s > 0
    summary = profiling.breakdown(result, flops=flops.generator_flops(G, 2, noise_mode="const"))
    kinds = summary["kinds"]
    assert {"convolution", "modulation", "upfirdn2d", "bias_act", "noise", "toRGB", "mapping"} <= set(kinds)
    assert set(kinds) <= set(flops.KINDS)
    assert sum(entry["share"] for entry in kinds.values()) == pytest.approx(1, abs=0.01)
    assert kinds["convolution"]["gflop"] > 0 and kinds["convolution"]["gflop_per_s"] > 0
    assert all(entry["backward_ms"] == 0 for entry in kinds.values())
    assert summary["op_ms"] > 0 and summary["top_op_types"]
    table = profiling.format_breakdown("G forward", summary)
    assert table.startswith("G forward: ") and "convolution" in table
