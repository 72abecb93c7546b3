"""stylegan2-ada-pytorch / stylegan3 (`networks_stylegan2`) networks -> our Keras models.

`torch_pickle.read_torch_pickle` gives each network as a `TorchModule` tree with
its recorded constructor arguments. The conversion:

1. Names the source: NVlabs/stylegan2-ada-pytorch `training/networks.py` or
   NVlabs/stylegan3 `training/networks_stylegan2.py` (read from the embedded
   source text, never run); their constructors differ in a few defaults
   (`_DEFAULTS`). StyleGAN3 (alias-free) generators are refused.
2. Reads the constructor arguments into ours; any argument we do not
   implement, or one with a value we do not implement, is refused.
3. Checks every submodule's class, and the recorded attributes that decide
   what NVIDIA's forward pass computes (float16 blocks, clamping,
   architecture, w_avg_beta, minibatch-stddev settings), against ours.
4. Fills every variable of our model through a table (torch names and
   layouts: conv [O, I, k, k] -> [k, k, I, O], flipped for the upsampling
   convolutions, which we run as the TF1 transposed convolution; dense
   [out, in] -> [in, out]; const [C, R, R] -> [1, R, R, C]; noise [R, R] ->
   [1, R, R, 1]); refuses a missing tensor, a wrong shape and any tensor of
   the pickle left unused. The FIR filter buffers of the resampling layers
   must equal the configured filter.
"""

import re

import numpy as np

from stylegan2_tf.networks.discriminator import Discriminator
from stylegan2_tf.networks.generator import ARCHITECTURES, Generator
from stylegan2_tf.official.torch_pickle import AdaPickleError, TorchModule, plain_data, read_torch_pickle
from stylegan2_tf.ops.bias_act import activation_funcs

ADA = "stylegan2-ada-pytorch training/networks.py"
SG3 = "stylegan3 training/networks_stylegan2.py"
SNAPSHOT_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")

# Constructor defaults where the two sources differ (both repositories' train.py pass them explicitly).
_DEFAULTS = {
    ADA: {"w_avg_beta": 0.995, "G_num_fp16_res": 0, "G_conv_clamp": None, "D_num_fp16_res": 0,
          "D_conv_clamp": None},
    SG3: {"w_avg_beta": 0.998, "G_num_fp16_res": 4, "G_conv_clamp": 256, "D_num_fp16_res": 4,
          "D_conv_clamp": 256},
}
_DEFAULT_FILTER = [1, 3, 3, 1]
# Positional constructor arguments, in NVIDIA's order.
_G_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_D_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
           "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")


def _source(module, where):
    """ADA or SG3, from the embedded module source (text, never run)."""
    src = module.module_src
    if "class SynthesisInput" in src or "filtered_lrelu" in src:
        raise AdaPickleError(f"{where} is a StyleGAN3 (alias-free, training/networks_stylegan3.py) network: "
                             "not supported; only StyleGAN2 networks (stylegan3 --cfg=stylegan2) convert")
    return SG3 if "fused_modconv_default" in src else ADA


class _Kwargs:
    """Recorded constructor arguments; `finish` refuses any that was not read."""

    def __init__(self, kwargs, where):
        if not isinstance(kwargs, dict):
            raise AdaPickleError(f"{where} is {type(kwargs).__name__}, not a dict")
        self.kwargs, self.where, self.used = dict(kwargs), where, set()

    def get(self, name, default=None):
        self.used.add(name)
        return self.kwargs.get(name, default)

    def required(self, name):
        if name not in self.kwargs:
            raise AdaPickleError(f"{self.where} lacks the constructor argument {name}")
        return self.get(name)

    def only(self, name, supported, default):
        """The argument, which must be one of `supported`."""
        value = self.get(name, default)
        if value not in supported:
            raise AdaPickleError(f"{self.where}: {name}={value!r} is not supported "
                                 f"(supported: {', '.join(map(repr, supported))})")
        return value

    def rest(self):
        """Every argument not read yet (stylegan3 passes the synthesis arguments flat)."""
        rest = {name: value for name, value in self.kwargs.items() if name not in self.used}
        self.used.update(rest)
        return rest

    def finish(self):
        unknown = sorted(set(self.kwargs) - self.used)
        if unknown:
            raise AdaPickleError(f"{self.where}: unsupported constructor arguments {unknown}")


def _arguments(module, names, where):
    """init_kwargs with the positional init_args named."""
    if len(module.init_args) > len(names):
        raise AdaPickleError(f"{where}: {len(module.init_args)} positional constructor arguments, "
                             f"at most {len(names)} known")
    kwargs = dict(zip(names, plain_data(module.init_args)))
    for name, value in module.init_kwargs.items():
        if name in kwargs:
            raise AdaPickleError(f"{where}: constructor argument {name} given twice")
        kwargs[name] = value
    return kwargs


def _int(value, name, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AdaPickleError(f"{where}: {name} must be an integer, found {value!r}")
    return int(value)


def _optional_number(value, name, where):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
        raise AdaPickleError(f"{where}: {name} must be a number or None, found {value!r}")
    return None if value is None else float(value)


def _filter(value, where):
    try:
        taps = [float(v) for v in value]
    except (TypeError, ValueError) as error:
        raise AdaPickleError(f"{where}: resample_filter={value!r} is not a list of numbers") from error
    if not taps or sum(taps) == 0:
        raise AdaPickleError(f"{where}: resample_filter={value!r} is not a usable FIR filter")
    return taps


def _expected_filter_buffer(taps):
    """What NVIDIA's upfirdn2d.setup_filter stores for a 1-D filter: normalized, as an outer
    product below 8 taps and separable (1-D) from 8 taps on."""
    f = np.asarray(taps, np.float64)
    if f.size < 8:
        f = np.outer(f, f)
    return f / f.sum()


def _mapping_settings(kw, c_dim, w_dim, w_avg_beta_default=None):
    """Our MappingNetwork arguments from NVIDIA's mapping_kwargs.

    w_avg_beta_default: the generator's default; None for the discriminator's label
    mapping, which NVIDIA builds with w_avg_beta=None (the argument cannot be given).
    """
    num_layers = _int(kw.get("num_layers", 8), "num_layers", kw.where)
    embed = kw.get("embed_features")
    if c_dim > 0 and embed is not None and embed != w_dim:
        raise AdaPickleError(f"{kw.where}: embed_features={embed!r} differs from the mapped width {w_dim}: "
                             "not supported (our label embedding has the mapped width)")
    layer_features = kw.get("layer_features")
    settings = {
        "num_layers": num_layers,
        "layer_features": None if layer_features is None else _int(layer_features, "layer_features", kw.where),
        "activation": kw.only("activation", tuple(activation_funcs), "lrelu"),
        "lr_multiplier": float(kw.get("lr_multiplier", 0.01)),
    }
    if w_avg_beta_default is not None:
        settings["w_avg_beta"] = _optional_number(kw.get("w_avg_beta", w_avg_beta_default), "w_avg_beta",
                                                  kw.where)
    return settings


def _construct(cls, where, *args, **kwargs):
    try:
        return cls(*args, **kwargs)
    except ValueError as error:
        raise AdaPickleError(f"{where}: {error}") from error


# --------------------------------------------------------------------------------------
# Structure checks and variable tables.


def _check_tree(module, rules, where):
    """Every submodule must match a rule (path regex, class name, {attribute: expected or fn(match)})."""
    stack = [("", module)]
    while stack:
        path, node = stack.pop()
        for pattern, class_name, attributes in rules:
            match = re.fullmatch(pattern, path)
            if match:
                break
        else:
            raise AdaPickleError(f"{where}: unexpected submodule {path or '(top)'} ({node.class_name})")
        if node.class_name != class_name:
            raise AdaPickleError(f"{where}: {path or 'the network'} is a {node.class_name}, "
                                 f"expected {class_name}")
        for name, expected in attributes.items():
            expected = expected(match) if callable(expected) else expected
            if name in node.attributes and node.attributes[name] != expected:
                raise AdaPickleError(f"{where}: {path or 'the network'} records {name}="
                                     f"{node.attributes[name]!r}, its constructor arguments give {expected!r}")
        stack.extend((f"{path}.{name}" if path else name, child)
                     for name, child in node.modules.items() if child is not None)


def _dense(value):
    return value.T  # [out, in] -> [in, out]


def _conv(value):
    return value.transpose(2, 3, 1, 0)  # [O, I, k, k] -> [k, k, I, O]


def _conv_up(value):
    # NVIDIA's upsampling conv correlates with the kernel (flip_weight=False); ours is the TF1
    # transposed convolution of the kernel, which equals the flipped kernel.
    return value.transpose(2, 3, 1, 0)[::-1, ::-1]


def _const(value):
    return value.transpose(1, 2, 0)[np.newaxis]  # [C, R, R] -> [1, R, R, C]


def _noise(value):
    return value[np.newaxis, :, :, np.newaxis]  # [R, R] -> [1, R, R, 1]


_GENERATOR_TABLE = [  # (regex over our paths, torch name template, transform)
    (r"mapping/w_avg", r"mapping.w_avg", None),
    (r"mapping/(embed|fc\d+)/weight", r"mapping.\1.weight", _dense),
    (r"mapping/(embed|fc\d+)/bias", r"mapping.\1.bias", None),
    (r"synthesis/b(\d+)/const", r"synthesis.b\1.const", _const),
    (r"synthesis/b(\d+)/conv0/conv/weight", r"synthesis.b\1.conv0.weight", _conv_up),
    (r"synthesis/b(\d+)/(conv1|torgb)/conv/weight", r"synthesis.b\1.\2.weight", _conv),
    (r"synthesis/b(\d+)/(conv[01]|torgb)/conv/affine/weight", r"synthesis.b\1.\2.affine.weight", _dense),
    (r"synthesis/b(\d+)/(conv[01]|torgb)/conv/affine/bias", r"synthesis.b\1.\2.affine.bias", None),
    (r"synthesis/b(\d+)/(conv[01])/noise_const", r"synthesis.b\1.\2.noise_const", _noise),
    (r"synthesis/b(\d+)/(conv[01]|torgb)/(bias|noise_strength)", r"synthesis.b\1.\2.\3", None),
    (r"synthesis/b(\d+)/skip/weight", r"synthesis.b\1.skip.weight", _conv_up),
]
# FIR filter buffers that NVIDIA's forward pass uses (must equal the configured filter);
# the other layers' `resample_filter` buffers hold the default and are never used.
_GENERATOR_FILTERS = r"synthesis\.b\d+\.((conv0|skip)\.)?resample_filter"

_DISCRIMINATOR_TABLE = [
    (r"b(\d+)/(fromrgb|conv0|conv1|skip|conv)/weight", r"b\1.\2.weight", _conv),
    (r"b(\d+)/(fromrgb|conv0|conv1|conv)/bias", r"b\1.\2.bias", None),
    (r"b4/(fc|out)/weight", r"b4.\1.weight", _dense),
    (r"b4/(fc|out)/bias", r"b4.\1.bias", None),
    (r"mapping/(embed|fc\d+)/weight", r"mapping.\1.weight", _dense),
    (r"mapping/(embed|fc\d+)/bias", r"mapping.\1.bias", None),
]
_DISCRIMINATOR_FILTERS = r"b\d+\.((conv1|skip)\.)?resample_filter"


def _fill(model, module, table, used_filters, taps, where):
    """Assigns every variable of `model` from the module's tensors; refuses missing and unused ones."""
    tensors = module.tensors()
    used = set()
    for variable in model.weights:
        for pattern, template, transform in table:
            match = re.fullmatch(pattern, variable.path)
            if match:
                break
        else:
            raise AdaPickleError(f"{where}: no tensor of the pickle maps to our {variable.path}")
        name = match.expand(template)
        if name not in tensors:
            raise AdaPickleError(f"{where}: the pickle lacks {name} (for our {variable.path})")
        value = tensors[name]
        if value.dtype.kind != "f":
            raise AdaPickleError(f"{where}: {name} is {value.dtype}, not floating point")
        value = value.astype(np.float32)
        value = transform(value) if transform else value
        if tuple(value.shape) != tuple(variable.shape):
            raise AdaPickleError(f"{where}: {name} has shape {tensors[name].shape}, our {variable.path} "
                                 f"expects {tuple(variable.shape)} after the layout change")
        variable.assign(np.array(value, order="C"))
        used.add(name)
    expected_filter = _expected_filter_buffer(taps)
    for name, value in tensors.items():
        if not name.endswith("resample_filter"):
            continue
        if re.fullmatch(used_filters, name) and (
                value.shape != expected_filter.shape or not np.allclose(value, expected_filter, atol=1e-6)):
            raise AdaPickleError(f"{where}: {name} is not the resample_filter {taps} of the constructor "
                                 "arguments")
        used.add(name)
    unused = sorted(set(tensors) - used)
    if unused:
        raise AdaPickleError(f"{where}: tensors of the pickle with no counterpart here: {unused}")


# --------------------------------------------------------------------------------------
# Networks.


def _check_class(module, class_name, where):
    if not isinstance(module, TorchModule):
        raise AdaPickleError(f"{where} is a {type(module).__name__}, not a torch_utils.persistence network")
    if module.class_name != class_name:
        raise AdaPickleError(f"{where} is a {module.class_name}, expected {class_name}")


def generator_from_module(module, force_fp32=False, where="G"):
    """Our Generator with the weights of an ada-pytorch / stylegan3 (networks_stylegan2) Generator.

    Args:
        module: the `TorchModule` of the generator (read_torch_pickle(...)["G_ema"]).
        force_fp32: compute every block in float32 even where the network asks for
            float16 (num_fp16_res), as NVIDIA's force_fp32.
        where: name of the network in error messages.
    """
    _check_class(module, "Generator", where)
    source = _source(module, where)
    defaults = _DEFAULTS[source]
    kw = _Kwargs(_arguments(module, _G_ARGS if source == ADA else _G_ARGS[:6], where), where)
    z_dim = _int(kw.required("z_dim"), "z_dim", where)
    c_dim = _int(kw.required("c_dim"), "c_dim", where)
    w_dim = _int(kw.required("w_dim"), "w_dim", where)
    resolution = _int(kw.required("img_resolution"), "img_resolution", where)
    img_channels = _int(kw.required("img_channels"), "img_channels", where)
    mapping_kw = _Kwargs(kw.get("mapping_kwargs", {}), f"{where} mapping_kwargs")
    synthesis_kw = _Kwargs(kw.get("synthesis_kwargs", {}) if source == ADA else kw.rest(),
                           f"{where} synthesis_kwargs")
    kw.finish()
    mapping = _mapping_settings(mapping_kw, c_dim, w_dim, defaults["w_avg_beta"])
    mapping_kw.finish()

    architecture = synthesis_kw.only("architecture", ARCHITECTURES, "skip")
    num_fp16_res = _int(synthesis_kw.get("num_fp16_res", defaults["G_num_fp16_res"]), "num_fp16_res", where)
    conv_clamp = _optional_number(synthesis_kw.get("conv_clamp", defaults["G_conv_clamp"]), "conv_clamp", where)
    taps = _filter(synthesis_kw.get("resample_filter", _DEFAULT_FILTER), where)
    synthesis = {
        "architecture": architecture,
        "channel_base": _int(synthesis_kw.get("channel_base", 32768), "channel_base", where),
        "channel_max": _int(synthesis_kw.get("channel_max", 512), "channel_max", where),
        "num_fp16_res": 0 if force_fp32 else num_fp16_res,
        "conv_clamp": conv_clamp,
        "resample_filter": taps,
    }
    # How NVIDIA's code computes, not what: memory layout and the fused-modconv default.
    synthesis_kw.get("fp16_channels_last")
    synthesis_kw.get("fused_modconv_default")
    synthesis_kw.only("kernel_size", (3,), 3)
    synthesis_kw.only("use_noise", (True,), True)
    synthesis_kw.only("activation", ("lrelu",), "lrelu")
    synthesis_kw.finish()

    G = _construct(Generator, where, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution,
                   img_channels=img_channels, mapping_kwargs={**mapping, "conditioning": "ada"},
                   synthesis_kwargs=synthesis)
    log2 = int(np.log2(resolution))
    fp16_from = 2 ** max(log2 + 1 - num_fp16_res, 3)
    fc_act = {"embed": "linear"}
    _check_tree(module, [
        (r"", "Generator", {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "img_resolution": resolution,
                            "img_channels": img_channels, "num_ws": G.num_ws}),
        (r"mapping", "MappingNetwork", {"num_layers": mapping["num_layers"], "num_ws": G.num_ws,
                                        "w_avg_beta": mapping["w_avg_beta"]}),
        (r"mapping\.(embed|fc\d+)", "FullyConnectedLayer",
         {"activation": lambda m: fc_act.get(m[1], mapping["activation"])}),
        (r"synthesis", "SynthesisNetwork", {"num_ws": G.num_ws}),
        (r"synthesis\.b(\d+)", "SynthesisBlock",
         {"architecture": architecture, "use_fp16": lambda m: num_fp16_res > 0 and int(m[1]) >= fp16_from}),
        (r"synthesis\.b\d+\.conv([01])", "SynthesisLayer",
         {"conv_clamp": conv_clamp, "activation": "lrelu", "use_noise": True,
          "up": lambda m: 2 if m[1] == "0" else 1}),
        (r"synthesis\.b\d+\.torgb", "ToRGBLayer", {"conv_clamp": conv_clamp}),
        (r"synthesis\.b\d+\.(conv[01]|torgb)\.affine", "FullyConnectedLayer", {"activation": "linear"}),
        (r"synthesis\.b\d+\.skip", "Conv2dLayer", {"up": 2, "activation": "linear"}),
    ], where)
    _fill(G, module, _GENERATOR_TABLE, _GENERATOR_FILTERS, taps, where)
    return G


def discriminator_from_module(module, force_fp32=False, where="D"):
    """Our Discriminator with the weights of an ada-pytorch / stylegan3 (networks_stylegan2) Discriminator.

    Conditioning is stylegan2-ada's (label mapping network, projection head:
    our conditioning="ada"). force_fp32 as for the generator.
    """
    _check_class(module, "Discriminator", where)
    source = _source(module, where)
    defaults = _DEFAULTS[source]
    kw = _Kwargs(_arguments(module, _D_ARGS, where), where)
    c_dim = _int(kw.required("c_dim"), "c_dim", where)
    resolution = _int(kw.required("img_resolution"), "img_resolution", where)
    img_channels = _int(kw.required("img_channels"), "img_channels", where)
    architecture = kw.only("architecture", ARCHITECTURES, "resnet")
    num_fp16_res = _int(kw.get("num_fp16_res", defaults["D_num_fp16_res"]), "num_fp16_res", where)
    conv_clamp = _optional_number(kw.get("conv_clamp", defaults["D_conv_clamp"]), "conv_clamp", where)
    cmap_dim = kw.get("cmap_dim")
    cmap_dim = None if cmap_dim is None or c_dim == 0 else _int(cmap_dim, "cmap_dim", where)
    block_kw = _Kwargs(kw.get("block_kwargs", {}), f"{where} block_kwargs")
    mapping_kw = _Kwargs(kw.get("mapping_kwargs", {}), f"{where} mapping_kwargs")
    epilogue_kw = _Kwargs(kw.get("epilogue_kwargs", {}), f"{where} epilogue_kwargs")
    settings = {
        "architecture": architecture,
        "channel_base": _int(kw.get("channel_base", 32768), "channel_base", where),
        "channel_max": _int(kw.get("channel_max", 512), "channel_max", where),
        "num_fp16_res": 0 if force_fp32 else num_fp16_res,
        "conv_clamp": conv_clamp,
        "cmap_dim": cmap_dim,
        "conditioning": "ada",
    }
    kw.finish()

    block_kw.only("activation", ("lrelu",), "lrelu")
    taps = _filter(block_kw.get("resample_filter", _DEFAULT_FILTER), where)
    settings["resample_filter"] = taps
    # Training-only or memory-layout settings: frozen layers (Freeze-D) keep their weights as
    # buffers, which are read the same way; the outputs do not change.
    _int(block_kw.get("freeze_layers", 0), "freeze_layers", where)
    block_kw.get("fp16_channels_last")
    block_kw.finish()

    head_dim = cmap_dim if cmap_dim is not None else min(settings["channel_base"] // 4, settings["channel_max"])
    mapping = _mapping_settings(mapping_kw, c_dim, head_dim)
    mapping_kw.finish()
    if c_dim > 0:
        settings["mapping_kwargs"] = mapping
    group = epilogue_kw.get("mbstd_group_size", 4)
    settings["mbstd_group_size"] = None if group is None else _int(group, "mbstd_group_size", where)
    settings["mbstd_num_channels"] = _int(epilogue_kw.get("mbstd_num_channels", 1), "mbstd_num_channels", where)
    epilogue_kw.only("activation", ("lrelu",), "lrelu")
    epilogue_kw.finish()

    D = _construct(Discriminator, where, c_dim, resolution, img_channels, **settings)
    log2 = int(np.log2(resolution))
    fp16_from = max(2 ** (log2 + 1 - num_fp16_res), 8)
    fc_act = {"embed": "linear"}
    _check_tree(module, [
        (r"", "Discriminator", {"c_dim": c_dim, "img_resolution": resolution, "img_channels": img_channels}),
        (r"b4", "DiscriminatorEpilogue", {"architecture": architecture, "cmap_dim": D.b4.cmap_dim}),
        (r"b4\.conv", "Conv2dLayer", {"conv_clamp": conv_clamp, "activation": "lrelu"}),
        # b4.fromrgb: NVIDIA's epilogue FromRGB is not clamped (ours is, with conv_clamp).
        (r"b4\.fromrgb", "Conv2dLayer", {"activation": "lrelu"}),
        (r"b4\.(fc|out)", "FullyConnectedLayer", {"activation": lambda m: "lrelu" if m[1] == "fc" else "linear"}),
        (r"b4\.mbstd", "MinibatchStdLayer", {"group_size": settings["mbstd_group_size"],
                                             "num_channels": settings["mbstd_num_channels"]}),
        (r"b(\d+)", "DiscriminatorBlock",
         {"architecture": architecture, "use_fp16": lambda m: num_fp16_res > 0 and int(m[1]) >= fp16_from}),
        (r"b\d+\.(fromrgb|conv0|conv1)", "Conv2dLayer", {"conv_clamp": conv_clamp, "activation": "lrelu"}),
        (r"b\d+\.skip", "Conv2dLayer", {"down": 2, "activation": "linear"}),
        (r"mapping", "MappingNetwork", {"num_layers": mapping["num_layers"], "w_avg_beta": None}),
        (r"mapping\.(embed|fc\d+)", "FullyConnectedLayer",
         {"activation": lambda m: fc_act.get(m[1], mapping["activation"])}),
    ], where)
    _fill(D, module, _DISCRIMINATOR_TABLE, _DISCRIMINATOR_FILTERS, taps, where)
    return D


def augment_pipe_from_module(module, where="augment_pipe"):
    """The augmentation pipeline as data: {"class_name", "init_args", "init_kwargs", "p"}; never run."""
    _check_class(module, "AugmentPipe", where)
    p = module.buffers.get("p")
    if p is None or p.size != 1 or p.dtype.kind != "f":
        raise AdaPickleError(f"{where} has no scalar probability buffer p")
    return {"class_name": module.class_name, "init_args": list(plain_data(module.init_args)),
            "init_kwargs": plain_data(module.init_kwargs), "p": float(p.reshape(()))}


def _holds_module(value):
    if isinstance(value, TorchModule):
        return True
    if isinstance(value, dict):
        return any(_holds_module(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_module(v) for v in value)
    return False


def load_ada_pytorch(source, force_fp32=False):
    """Reads a stylegan2-ada-pytorch / stylegan3 (--cfg=stylegan2) network pickle into our models.

    Args:
        source: path or binary file of a training snapshot (`network-snapshot-*.pkl`) or a
            published pickle; no code from it is run, torch is not needed.
        force_fp32: compute in float32 where the networks ask for float16 blocks.

    Returns:
        {"G", "D", "G_ema": our networks (None where the pickle holds none; G_ema is required),
         "augment_pipe": {"class_name", "init_args", "init_kwargs", "p"} or None,
         "training_set_kwargs": dict or None}.

    Raises:
        AdaPickleError (a ValueError): the file is not such a pickle, or holds something we do not
            convert (StyleGAN3 generators, unsupported settings, unused or missing tensors).
        FileNotFoundError: when the path does not exist.
    """
    data = read_torch_pickle(source)
    if not isinstance(data, dict):
        raise AdaPickleError(f"expected a dict of networks (G, D, G_ema, ...), found {type(data).__name__}")
    extra = sorted(str(key) for key, value in data.items() if key not in SNAPSHOT_KEYS and _holds_module(value))
    if extra:
        raise AdaPickleError(f"the pickle holds networks under {extra}, which are not converted")
    if data.get("G_ema") is None:
        raise AdaPickleError("the pickle holds no G_ema network")
    result = {
        "G": None if data.get("G") is None else generator_from_module(data["G"], force_fp32, "G"),
        "D": None if data.get("D") is None else discriminator_from_module(data["D"], force_fp32, "D"),
        "G_ema": generator_from_module(data["G_ema"], force_fp32, "G_ema"),
        "augment_pipe": None,
        "training_set_kwargs": None,
    }
    if data.get("augment_pipe") is not None:
        result["augment_pipe"] = augment_pipe_from_module(data["augment_pipe"])
    kwargs = data.get("training_set_kwargs")
    if kwargs is not None:
        if not isinstance(kwargs, dict) or _holds_module(kwargs):
            raise AdaPickleError(f"training_set_kwargs is a {type(kwargs).__name__}, not plain keyword arguments")
        result["training_set_kwargs"] = plain_data(kwargs)
    return result
