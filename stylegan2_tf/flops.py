"""Floating-point operations of the StyleGAN2 networks, counted from their layer shapes.

The count walks built networks (a Generator, a Discriminator: their blocks and layers, with
the shapes and options these hold) and adds up the arithmetic their `call`s do. Convention:

- a multiply-add is 2 FLOPs (a matmul [N, K] x [K, M] is 2 N K M; a convolution
  2 k^2 C_in C_out per output pixel; a stride-2 transposed convolution 2 k^2 C_in C_out per
  input pixel, what it computes); every other elementwise add, multiply, activation,
  square, rsqrt, clamp is 1 FLOP per output element; a reduction of n values is n - 1
  adds (a mean adds 1 divide per result);
- FIR resampling (upfirdn2d): 2 FLOPs per non-zero tap reaching an output element:
  2 fh fw / (up_x up_y) per output element for a 2-D filter, one such pass per axis for a
  separable (1-D) filter; the gain is folded into the taps;
- bias_act: per element 1 for the bias, 1 for the activation (none for linear), 1 for the
  gain when it is not 1, 1 for the clamp;
- random draws, casts, reshapes, transposes, tiles, pads and slices count 0;
- weight-side arithmetic (equalized learning-rate gains, demodulation coefficients) is
  counted: it does not grow with the batch.

Counts are kept by *kind*, the kinds stylegan2_tf.profiling gives the ops of a trace, so that
time and work can be set side by side: convolution, modulation (styles, their affine layer,
demodulation, the scaling of activations or weights), upfirdn2d, bias_act, noise, toRGB (the
whole ToRGB layer), mbstd, mapping (mapping networks), dense (D's fc and out), other.

A training iteration (`training_flops`) adds, per phase, forward F and backward passes:
the backward of a network whose weights are trained counts 2 F (input and weight
gradients), of a network only differentiated for its input 1 F; a double backward (R1,
path length) counts the inner input gradient 1 F and the outer backward 2 (F + 1 F), so
6 F in all. Optimizer: 14 FLOPs per trained parameter and phase (Adam 12, the finite check
and select 2); EMA 3 per G parameter. Loss-side reductions (softplus, sums) are left out:
they are far below 0.1%. See TRAINING_CONVENTION.
"""

import collections
import dataclasses

import numpy as np

# The kinds of work; stylegan2_tf.profiling sorts the ops of a trace into the same kinds
# (loss, optimizer and layout hold no FLOPs here but optimizer's Adam and EMA arithmetic).
KINDS = ("convolution", "modulation", "upfirdn2d", "bias_act", "noise", "toRGB", "mbstd",
         "mapping", "dense", "loss", "optimizer", "layout", "other")

TRAINING_CONVENTION = (
    "multiply-add = 2 FLOPs, other elementwise ops 1; backward = 2x forward for the network "
    "whose weights are trained, 1x for a network differentiated for its input only; double "
    "backward (R1, path length) = 6x forward in all; G main = mapping x2 (style mixing) + "
    "synthesis (3F) + D (2F); G reg = mapping x2 (3F) + synthesis 6F at batch/pl_batch_shrink; "
    "D main = mapping x2 + synthesis (1F, no gradient) + D on reals and fakes (3F each); "
    "D reg = D 6F on reals; + Adam 14 FLOPs per trained parameter per phase, EMA 3 per G "
    "parameter; iteration = all phases once (what train_iter_s times); amortized = G reg / "
    "g_reg_interval and D reg / d_reg_interval")


class FlopCount(collections.Counter):
    """FLOPs by kind (KINDS), kinds without any left out; `total` is their sum. Adds and
    scales like numbers."""

    def __setitem__(self, kind, value):
        if value:
            super().__setitem__(kind, value)
        else:
            self.pop(kind, None)

    @property
    def total(self):
        return sum(self.values())

    def scaled(self, factor):
        return FlopCount({kind: value * factor for kind, value in self.items()})

    def __add__(self, other):
        result = FlopCount(self)
        result.update(other)
        return result

    def as_dict(self):
        """{kind: FLOPs} in KINDS order, zeros left out, plus "total"."""
        out = {kind: round(float(self[kind])) for kind in KINDS if self.get(kind)}
        out.update({kind: round(float(v)) for kind, v in self.items() if kind not in KINDS and v})
        out["total"] = round(float(self.total))
        return out


def _count(kind, flops):
    return FlopCount({kind: flops})


# Primitive counts.


def bias_act_flops(elements, has_bias=True, act="linear", gain=None, clamp=None):
    """FLOPs of bias_act on `elements` elements (see the module's convention)."""
    from stylegan2_tf.ops.bias_act import activation_funcs

    spec = activation_funcs[act]
    gain = spec.def_gain if gain is None else gain
    per_element = int(has_bias) + int(act != "linear") + int(gain != 1) + int(clamp is not None)
    return elements * per_element


def upfirdn2d_flops(batch, in_h, in_w, channels, f, up=1, down=1, padding=(0, 0, 0, 0)):
    """FLOPs of upfirdn2d of [batch, in_h, in_w, channels] with filter f (1-D separable or 2-D);
    padding (x0, x1, y0, y1). Returns (flops, out_h, out_w)."""
    f = np.asarray(f)
    px0, px1, py0, py1 = padding
    fh, fw = (f.shape[0], f.shape[-1]) if f.ndim == 2 else (f.shape[0], f.shape[0])
    out_w = (in_w * up + px0 + px1 - fw) // down + 1
    out_h = (in_h * up + py0 + py1 - fh) // down + 1
    if f.ndim == 2:
        flops = 2 * fh * fw / (up * up) * batch * out_h * out_w * channels
    else:  # horizontal pass at the input height, then the vertical pass
        flops = (2 * fw / up * batch * in_h * out_w * channels
                 + 2 * fh / up * batch * out_h * out_w * channels)
    return flops, out_h, out_w


def conv2d_resample_flops(batch, res, in_channels, out_channels, k, f, up=1, down=1):
    """(convolution FLOPs, upfirdn2d FLOPs, output resolution) of layers.conv2d_resample on
    [batch, res, res, in_channels] with a k x k kernel (square images)."""
    ftaps = np.asarray(f).shape[-1]
    if up == 2:
        conv = 2 * k * k * in_channels * out_channels * res * res * batch  # per input pixel
        size = (res - 1) * 2 + k
        p = (ftaps - 2) - (k - 1)
        pad0, pad1 = (p + 1) // 2 + 1, p // 2 + 1
        fir, out, _ = upfirdn2d_flops(batch, size, size, out_channels, f,
                                      padding=(pad0, pad1, pad0, pad1))
        return conv, fir, out
    if down == 2:
        p = (ftaps - 2) + (k - 1)
        pad0, pad1 = (p + 1) // 2, p // 2
        fir, size, _ = upfirdn2d_flops(batch, res, res, in_channels, f,
                                       padding=(pad0, pad1, pad0, pad1))
        out = (size - k) // 2 + 1
        return 2 * k * k * in_channels * out_channels * out * out * batch, fir, out
    return 2 * k * k * in_channels * out_channels * res * res * batch, 0, res


def normalize_2nd_moment_flops(batch, features):
    """square, mean, + eps, rsqrt, multiply."""
    return 3 * batch * features + 2 * batch


# Layers.


def dense_flops(layer, batch, kind):
    """An EqualizedDense on [batch, fan_in] (fan_in from its built weight)."""
    fan_in, units = (int(d) for d in layer.weight.shape)
    flops = fan_in * units + 2 * batch * fan_in * units  # weight gain, matmul
    if layer.use_bias:
        flops += units  # bias * lr_multiplier
    flops += bias_act_flops(batch * units, layer.use_bias, layer.activation)
    return _count(kind, flops)


def equalized_conv_flops(layer, batch, res):
    """An EqualizedConv2D on [batch, res, res, C_in]; returns (FlopCount, output resolution)."""
    k, _, in_channels, out_channels = (int(d) for d in layer.weight.shape)
    count = FlopCount()
    count["other"] += k * k * in_channels * out_channels + (out_channels if layer.use_bias else 0)
    conv, fir, out = conv2d_resample_flops(batch, res, in_channels, out_channels, k,
                                           layer._filter, layer.up, layer.down)
    count["convolution"] += conv
    count["upfirdn2d"] += fir
    count["bias_act"] += bias_act_flops(batch * out * out * out_channels, layer.use_bias,
                                        layer.activation, clamp=layer.conv_clamp)
    return count, out


def modulated_conv2d_flops(layer, batch, res, fp16=False, fused=None):
    """A ModulatedConv2D on [batch, res, res, in_channels], float16 activations when `fp16`,
    the grouped (fused) form when `fused` (default: the layer's). Returns (FlopCount, output
    resolution). All of it is "modulation" but the convolution and its FIR filter."""
    fused = layer.fused_modconv if fused is None else fused
    k, i, o = layer.kernel_size, layer.in_channels, layer.filters
    n = batch
    count = FlopCount()
    count += dense_flops(layer.affine, n, "modulation")  # styles [N, I]
    mod = k * k * i * o  # weight * weight_gain
    if layer.demodulate and fp16:
        mod += 3 * k * k * i * o + (k * k * i - 1) * o  # * const, abs, / max; max over k, k, I
        mod += 2 * n * i + n * (i - 1)  # styles: abs, divide; max over I
    if layer.demodulate:
        mod += k * k * i * o + (k * k - 1) * i * o  # square, sum over k, k
        mod += n * i + 2 * n * i * o + 2 * n * o  # square styles, matmul, + eps, rsqrt
    conv, fir, out = conv2d_resample_flops(n, res, i, o, k, layer._filter, up=layer.up)
    if fused:
        mod += n * k * k * i * o * (2 if layer.demodulate else 1)  # w * styles (* dcoefs)
    else:
        mod += n * res * res * i  # x * styles
        if layer.demodulate:
            mod += n * out * out * o  # x * dcoefs
    count["modulation"] += mod
    count["convolution"] += conv
    count["upfirdn2d"] += fir
    return count, out


def synthesis_layer_flops(layer, batch, noise_mode="random", fp16=False, fused=None):
    """A SynthesisLayer (its input at resolution // up)."""
    res_in = layer.resolution // layer.up
    count, out = modulated_conv2d_flops(layer.conv, batch, res_in, fp16, fused)
    o = layer.filters
    if layer.use_noise and noise_mode != "none":
        strength = out * out if noise_mode == "const" else batch * out * out  # noise * strength
        count["noise"] += strength + batch * out * out * o  # x + noise
    count["bias_act"] += bias_act_flops(batch * out * out * o, True, layer.activation,
                                        clamp=layer.conv_clamp)
    return count


def torgb_flops(layer, batch, res, fp16=False, fused=None):
    """A ToRGB at resolution res: all of it "toRGB"."""
    conv, _ = modulated_conv2d_flops(layer.conv, batch, res, fp16, fused)
    flops = conv.total + bias_act_flops(batch * res * res * layer.img_channels, True, "linear",
                                        clamp=layer.conv_clamp)
    return _count("toRGB", flops)


def mapping_flops(mapping, batch, update_w_avg=False):
    """A MappingNetwork (truncation psi 1: no truncation arithmetic)."""
    flops = 0.0
    if mapping.z_dim > 0:
        features = mapping.z_dim
        if mapping.conditioning == "official" and mapping.c_dim > 0:
            flops += 2 * batch * mapping.c_dim * mapping.z_dim  # c @ label_weight
            features = 2 * mapping.z_dim
        flops += normalize_2nd_moment_flops(batch, features)
    if mapping.c_dim > 0 and mapping.conditioning == "ada":
        flops += dense_flops(mapping.embed, batch, "mapping").total
        flops += normalize_2nd_moment_flops(batch, mapping.w_dim)
    for fc in mapping.fcs:
        flops += dense_flops(fc, batch, "mapping").total
    if update_w_avg and mapping.w_avg_beta is not None:
        flops += batch * mapping.w_dim + 3 * mapping.w_dim  # batch mean, lerp
    return _count("mapping", flops)


def synthesis_flops(synthesis, batch, noise_mode="random", fused_modconv=None):
    """A SynthesisNetwork forward pass on ws [batch, num_ws, w_dim]."""
    count = FlopCount()
    for block in synthesis.blocks:
        res, fp16 = block.resolution, block.use_fp16
        if block.conv0 is not None:
            if block.skip is not None:
                skip, _ = equalized_conv_flops(block.skip, batch, res // 2)
                count += skip
            count += synthesis_layer_flops(block.conv0, batch, noise_mode, fp16, fused_modconv)
        count += synthesis_layer_flops(block.conv1, batch, noise_mode, fp16, fused_modconv)
        if block.skip is not None:
            count["other"] += 2 * batch * res * res * block.out_channels  # (x + y) * sqrt(0.5)
        if block.conv0 is not None and (block.architecture == "skip"):
            fir, _, _ = upfirdn2d_flops(batch, res // 2, res // 2, block.img_channels,
                                        block._filter, up=2,
                                        padding=upsample_padding(block._filter))
            count["upfirdn2d"] += fir
        if block.torgb is not None:
            count += torgb_flops(block.torgb, batch, res, fp16, fused_modconv)
            if block.conv0 is not None and block.architecture == "skip":
                count["other"] += batch * res * res * block.img_channels  # img + y
    return count


def upsample_padding(f):
    """The padding upsample2d uses for up=2."""
    fw = np.asarray(f).shape[-1]
    return ((fw + 1) // 2, (fw - 2) // 2, (fw + 1) // 2, (fw - 2) // 2)


def downsample_padding(f):
    """The padding downsample2d uses for down=2."""
    fw = np.asarray(f).shape[-1]
    return ((fw - 1) // 2, (fw - 2) // 2, (fw - 1) // 2, (fw - 2) // 2)


def generator_flops(G, batch, noise_mode="random", fused_modconv=None):
    """A Generator forward pass (mapping + synthesis, truncation psi 1) on batch latents."""
    return (mapping_flops(G.mapping, batch)
            + synthesis_flops(G.synthesis, batch, noise_mode, fused_modconv))


def mbstd_flops(layer, batch, res, channels):
    """MinibatchStdDev on [batch, res, res, channels]: 4 N HWC + 3 M HWC, M = N / group."""
    group = batch if layer.group_size is None else min(layer.group_size, batch)
    groups = batch // max(group, 1)
    elements = res * res * channels
    return _count("mbstd", 4 * batch * elements + 3 * groups * elements)


def discriminator_flops(D, batch):
    """A Discriminator forward pass on batch images."""
    count = FlopCount()
    img_channels = D.img_channels
    for block in D.blocks:
        res = block.resolution
        if block.fromrgb is not None:
            fromrgb, _ = equalized_conv_flops(block.fromrgb, batch, res)
            count += fromrgb
            if block.in_channels > 0:
                count["other"] += batch * res * res * block.tmp_channels  # x + y
            if block.architecture == "skip":
                fir, _, _ = upfirdn2d_flops(batch, res, res, img_channels, block._filter, down=2,
                                            padding=downsample_padding(block._filter))
                count["upfirdn2d"] += fir
        conv0, _ = equalized_conv_flops(block.conv0, batch, res)
        conv1, out = equalized_conv_flops(block.conv1, batch, res)
        count += conv0 + conv1
        if block.skip is not None:
            skip, _ = equalized_conv_flops(block.skip, batch, res)
            count += skip
            count["other"] += 2 * batch * out * out * block.out_channels  # (x + y) * sqrt(0.5)
    epilogue = D.b4
    res, channels = epilogue.resolution, epilogue.in_channels
    if epilogue.fromrgb is not None:
        fromrgb, _ = equalized_conv_flops(epilogue.fromrgb, batch, res)
        count += fromrgb
        count["other"] += batch * res * res * channels
    if epilogue.mbstd is not None:
        count += mbstd_flops(epilogue.mbstd, batch, res, channels)
    conv, _ = equalized_conv_flops(epilogue.conv, batch, res)
    count += conv
    count += dense_flops(epilogue.fc, batch, "dense") + dense_flops(epilogue.out, batch, "dense")
    if epilogue.cmap_dim > 0:
        if D.mapping is not None:
            count += mapping_flops(D.mapping, batch)
        count["dense"] += 2 * batch * epilogue.cmap_dim + (batch if D.conditioning == "ada" else 0)
    return count


def parameter_count(variables):
    return int(sum(int(np.prod(v.shape)) for v in variables))


@dataclasses.dataclass
class TrainingFlops:
    """FLOPs of each training phase (FlopCount by kind) and of an iteration."""

    phases: dict
    g_reg_interval: int
    d_reg_interval: int

    @property
    def iteration(self):
        """All phases once and the EMA update: what benchmark.py's train_iter_s times."""
        return sum(self.phases.values(), FlopCount())

    @property
    def amortized(self):
        """An iteration with the regularization phases at their intervals (lazy regularization)."""
        weights = {"g_reg": 1 / max(self.g_reg_interval, 1), "d_reg": 1 / max(self.d_reg_interval, 1)}
        return sum((count.scaled(weights.get(name, 1)) for name, count in self.phases.items()),
                   FlopCount())


def training_flops(G, D, config, batch=None):
    """TrainingFlops of one iteration of stylegan2_tf.training.trainer.Trainer on one replica
    (TrainingConfig `config`; `batch` defaults to config.batch). See TRAINING_CONVENTION."""
    n = config.batch if batch is None else batch
    mixing = 2 if config.style_mixing_prob > 0 else 1
    g_params = parameter_count(G.trainable_variables)
    d_params = parameter_count(D.trainable_variables)

    def mapping(count):
        return (mapping_flops(G.mapping, count, update_w_avg=True)
                + mapping_flops(G.mapping, count).scaled(mixing - 1))

    def synthesis(count):
        return synthesis_flops(G.synthesis, count, noise_mode="random")

    d_fwd = discriminator_flops(D, n)
    optimizer_g = FlopCount({"optimizer": 14 * g_params})
    optimizer_d = FlopCount({"optimizer": 14 * d_params})
    n_pl = max(n // config.pl_batch_shrink, 1)
    phases = {
        "g_main": mapping(n).scaled(3) + synthesis(n).scaled(3) + d_fwd.scaled(2) + optimizer_g,
        "g_reg": mapping(n_pl).scaled(3) + synthesis(n_pl).scaled(6) + optimizer_g,
        "d_main": mapping(n) + synthesis(n) + d_fwd.scaled(6) + optimizer_d,
        "d_reg": d_fwd.scaled(6) + optimizer_d,
        "ema": FlopCount({"optimizer": 3 * g_params}),
    }
    return TrainingFlops(phases, config.g_reg_interval, config.d_reg_interval)
