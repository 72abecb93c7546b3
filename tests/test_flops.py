"""FLOP counts of stylegan2_tf.flops: a modulated convolution against a count by hand, the
convolutions of whole networks against the Conv2D ops of their traced graphs, the phases of
a training iteration against their convention."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan2_tf import flops
from stylegan2_tf.networks.generator import ModulatedConv2D, SynthesisLayer
from stylegan2_tf.training.trainer import TrainingConfig

N, I, O, K, R, W_DIM = 2, 3, 4, 3, 8, 5  # batch, in / out channels, kernel, resolution, w size


def _modulated_conv(**kwargs):
    layer = ModulatedConv2D(I, O, K, W_DIM, **kwargs)
    layer.build()
    return layer


def test_modulated_conv_matches_a_count_by_hand():
    affine = W_DIM * I + 2 * N * W_DIM * I + I + N * I  # weight gain, matmul, bias gain, bias add
    weight_gain = K * K * I * O
    demod = (K * K * I * O + (K * K - 1) * I * O  # square, sum over the kernel taps
             + N * I + 2 * N * I * O + N * O + N * O)  # square styles, matmul, + eps, rsqrt
    scale_x = N * R * R * I + N * R * R * O  # x * styles, x * dcoefs
    conv = 2 * K * K * I * O * R * R * N
    assert affine + weight_gain + demod + scale_x == 1362 and conv == 27648  # the numbers themselves

    count, out = flops.modulated_conv2d_flops(_modulated_conv(), N, R)
    assert out == R
    assert dict(count) == {"modulation": 1362, "convolution": 27648}

    fused, _ = flops.modulated_conv2d_flops(_modulated_conv(), N, R, fused=True)
    # The grouped form scales the weights per sample (w * styles * dcoefs) instead of x.
    assert dict(fused) == {"modulation": affine + weight_gain + demod + 2 * N * K * K * I * O,
                           "convolution": 27648}


def test_upsampling_layer_convolves_at_the_input_resolution_and_filters_the_output():
    layer = SynthesisLayer(I, O, W_DIM, R, up=2)
    layer.build()
    count = flops.synthesis_layer_flops(layer, N, noise_mode="const")
    assert count["convolution"] == 2 * K * K * I * O * (R // 2) ** 2 * N
    # [1, 3, 3, 1] as a 4 x 4 filter on the (R + 1) x (R + 1) transposed-conv output -> R x R.
    assert count["upfirdn2d"] == 2 * 16 * R * R * O * N
    assert count["noise"] == R * R + N * R * R * O  # const noise * strength, x + noise
    assert count["bias_act"] == 3 * N * R * R * O  # bias, lrelu, gain


def _graph_conv_flops(fn, spec):
    """FLOPs of the Conv2D and transposed-conv ops of fn's graph, from the ops' own shapes, and
    those under a toRGB layer apart."""
    graph = tf.function(fn).get_concrete_function(spec).graph
    total, torgb = 0, 0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            x, w = op.inputs
            value = 2 * np.prod(op.outputs[0].shape) * np.prod(w.shape[:3])
        elif op.type == "Conv2DBackpropInput":  # conv2d_transpose: each input pixel x every tap
            _, w, x = op.inputs
            value = 2 * np.prod(x.shape) * np.prod(w.shape[:3])
        else:
            continue
        if "torgb" in op.name:
            torgb += value
        else:
            total += value
    return total, torgb


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_network_convolutions_match_their_graphs(tiny_generator, tiny_discriminator, architecture):
    G = tiny_generator(resolution=16, synthesis={"architecture": architecture})
    D = tiny_discriminator(resolution=16, architecture=architecture, mbstd_group_size=2)
    g_conv, _ = _graph_conv_flops(lambda z: G(z, noise_mode="const"), tf.TensorSpec([N, G.z_dim]))
    d_conv, _ = _graph_conv_flops(D, tf.TensorSpec([N, 16, 16, 3]))
    assert flops.generator_flops(G, N, noise_mode="const")["convolution"] == g_conv
    assert flops.discriminator_flops(D, N)["convolution"] == d_conv


def test_generator_flops_grow_with_the_batch(tiny_generator):
    G = tiny_generator()
    one, four = flops.generator_flops(G, 1), flops.generator_flops(G, 4)
    assert four["convolution"] == 4 * one["convolution"]
    assert 3.5 * one.total < four.total < 4 * one.total  # weight-side work does not grow
    assert set(one) <= set(flops.KINDS)
    assert one.as_dict()["total"] == round(one.total)


def test_training_phases_follow_the_convention(tiny_networks):
    G, D, _ = tiny_networks()
    config = TrainingConfig(batch=4)
    counts = flops.training_flops(G, D, config)
    d_params = flops.parameter_count(D.trainable_variables)
    d_fwd = flops.discriminator_flops(D, 4)
    assert counts.phases["d_reg"].total == pytest.approx(6 * d_fwd.total + 14 * d_params)
    synthesis = flops.synthesis_flops(G.synthesis, 2)  # path length at batch / pl_batch_shrink
    assert counts.phases["g_reg"]["convolution"] == pytest.approx(6 * synthesis["convolution"])
    assert counts.iteration.total == pytest.approx(sum(c.total for c in counts.phases.values()))
    assert counts.amortized.total == pytest.approx(
        counts.iteration.total - counts.phases["g_reg"].total * 3 / 4
        - counts.phases["d_reg"].total * 15 / 16)
