"""Official TF1 StyleGAN2 / stylegan2-ada networks -> our Keras models.

The conversion is two tables: official keyword arguments -> our constructor
arguments, and our variable paths -> official variable names with the layout
change (NCHW-era -> NHWC). It fails on any official keyword or variable it does
not know, and on any of our variables it cannot fill, so a network is either
converted completely or not at all. Our up-sampling convolution follows the
official one (transposed convolution of the flipped kernel), so kernels are
copied as they are.
"""

import re

import numpy as np

from stylegan2_tf.networks.discriminator import Discriminator
from stylegan2_tf.networks.generator import Generator
from stylegan2_tf.networks.presets import from_tf1_names
from stylegan2_tf.official.pickle_reader import OfficialPickleError, read_official_pickle

# Official keyword arguments that do not change the network's weights or outputs here.
_IGNORED_KWARGS = {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure",
                   "randomize_noise", "fused_modconv", "is_template_graph", "components",
                   "dtype", "num_gpus", "func_name", "mbstd_group_size_default"}
# Official variables with no counterpart (progressive-growing level of detail).
_IGNORED_VARIABLES = re.compile(r"(.*/)?lod$")


def _kwargs_reader(static_kwargs, where):
    """kwarg(name, default) reads an official kwarg and records it as known."""
    known = set()

    def kwarg(name, default=None):
        known.add(name)
        value = static_kwargs.get(name, default)
        return default if value is None else value

    def check():
        unknown = sorted(set(static_kwargs) - known - _IGNORED_KWARGS)
        if unknown:
            raise OfficialPickleError(f"{where}: unsupported official keyword arguments {unknown}")

    return kwarg, check


def _open_state(state, kind):
    """(where, kwarg, check, variables, resolution) for converting one network state."""
    where = f"{kind} {state.name!r} ({state.build_func_name})"
    kwarg, check = _kwargs_reader(state.static_kwargs, where)
    return where, kwarg, check, _flat_variables(state), int(kwarg("resolution", 1024))


def _require_defaults(kwarg, where, state, defaults):
    """Refuses official settings we do not implement: {name: the only supported value}."""
    for name, expected in defaults.items():
        if kwarg(name, expected) != expected:
            raise OfficialPickleError(f"{where}: {name}={state.static_kwargs[name]!r} is not supported")


def _flat_variables(state, prefix=""):
    """{"mapping/Dense0/weight": array, ...} over a network and its components."""
    variables = {prefix + name: value for name, value in state.variables.items()}
    for name, component in state.components.items():
        variables.update(_flat_variables(component, f"{prefix}{name}/"))
    return variables


def _rename_lod_layers(variables, prefix, layer, resolution):
    """Progressive-growing pickles name ToRGB / FromRGB per level of detail
    (`{prefix}{layer}_lod{n}/...`): renames them per resolution in place and
    returns True when there were any (then the network is the 'orig' architecture)."""
    found = False
    for name in list(variables):
        match = re.fullmatch(rf"{prefix}{layer}_lod(\d+)/(.*)", name)
        if match:
            r = resolution // 2 ** int(match[1])
            variables[f"{prefix}{r}x{r}/{layer}/{match[2]}"] = variables.pop(name)
            found = True
    return found


def _nchw_to_nhwc(value):
    return np.transpose(value, [0, 2, 3, 1])


def _style_bias(value):
    # Official mod_bias starts at 0 and +1 is added at run time; ours starts at 1.
    return value + 1


def _noise_index(res, conv):
    """Official `noise{i}` of conv0 / conv1 of the block at resolution res."""
    return int(np.log2(res)) * 2 - (5 if conv == "conv0" else 4)


def _generator_table():
    """[(regex over our paths, fn(match) -> (official name, transform or None))]."""
    conv_names = {"conv0": "Conv0_up", "conv1": "Conv1"}

    def layer_name(res, conv):
        return "4x4/Conv" if res == "4" else f"{res}x{res}/{conv_names[conv]}"

    def noise(m):
        res, conv = int(m[1]), m[2]
        return f"synthesis/noise{0 if res == 4 else _noise_index(res, conv)}", _noise_to_nhwc

    return [
        (r"mapping/w_avg", lambda m: ("dlatent_avg", None)),
        (r"mapping/label_weight", lambda m: ("mapping/LabelConcat/weight", None)),
        (r"mapping/embed/(weight|bias)", lambda m: (f"mapping/LabelEmbed/{m[1]}", None)),
        (r"mapping/fc(\d+)/(weight|bias)", lambda m: (f"mapping/Dense{m[1]}/{m[2]}", None)),
        (r"synthesis/b4/const", lambda m: ("synthesis/4x4/Const/const", _nchw_to_nhwc)),
        (r"synthesis/b(\d+)/(conv[01])/conv/weight",
         lambda m: (f"synthesis/{layer_name(m[1], m[2])}/weight", None)),
        (r"synthesis/b(\d+)/(conv[01])/conv/affine/weight",
         lambda m: (f"synthesis/{layer_name(m[1], m[2])}/mod_weight", None)),
        (r"synthesis/b(\d+)/(conv[01])/conv/affine/bias",
         lambda m: (f"synthesis/{layer_name(m[1], m[2])}/mod_bias", _style_bias)),
        (r"synthesis/b(\d+)/(conv[01])/(bias|noise_strength)",
         lambda m: (f"synthesis/{layer_name(m[1], m[2])}/{m[3]}", None)),
        (r"synthesis/b(\d+)/(conv[01])/noise_const", noise),
        (r"synthesis/b(\d+)/torgb/conv/weight", lambda m: (f"synthesis/{m[1]}x{m[1]}/ToRGB/weight", None)),
        (r"synthesis/b(\d+)/torgb/conv/affine/weight",
         lambda m: (f"synthesis/{m[1]}x{m[1]}/ToRGB/mod_weight", None)),
        (r"synthesis/b(\d+)/torgb/conv/affine/bias",
         lambda m: (f"synthesis/{m[1]}x{m[1]}/ToRGB/mod_bias", _style_bias)),
        (r"synthesis/b(\d+)/torgb/bias", lambda m: (f"synthesis/{m[1]}x{m[1]}/ToRGB/bias", None)),
        (r"synthesis/b(\d+)/skip/weight", lambda m: (f"synthesis/{m[1]}x{m[1]}/Skip/weight", None)),
    ]


def _noise_to_nhwc(value):
    return np.reshape(value, [1, value.shape[-2], value.shape[-1], 1])  # [1,1,R,R] -> [1,R,R,1]


def table_entry(table, path):
    """(official name, transform or None) of our variable `path` in a conversion `table`, or None
    when no pattern matches. tf1_export reads the same tables backwards."""
    for pattern, source in table:
        match = re.fullmatch(pattern, path)
        if match:
            return source(match)
    return None


def _fill(model, variables, table, where):
    """Assigns every variable of `model` from `variables` through `table`; checks all are used."""
    used = set()
    for variable in model.weights:
        path = variable.path
        entry = table_entry(table, path)
        if entry is None:
            raise OfficialPickleError(f"{where}: no official variable maps to our {path}")
        name, transform = entry
        if name not in variables:
            raise OfficialPickleError(f"{where}: the pickle lacks {name} (for our {path})")
        value = np.asarray(variables[name], dtype=np.float32)
        value = transform(value) if transform else value
        if tuple(value.shape) != tuple(variable.shape):
            raise OfficialPickleError(f"{where}: {name} has shape {value.shape}, our {path} "
                                      f"expects {tuple(variable.shape)}")
        variable.assign(value)
        used.add(name)
    unused = sorted(n for n in set(variables) - used if not _IGNORED_VARIABLES.fullmatch(n))
    if unused:
        raise OfficialPickleError(f"{where}: official variables with no counterpart: {unused}")


def generator_from_state(state, force_fp32=False):
    """Our Generator with the weights of an official G / Gs NetworkState.

    force_fp32: compute every block in float32 even where the network asks for
    float16 (stylegan2-ada's num_fp16_res), as NVIDIA's force_fp32 does.
    """
    where, kwarg, check, variables, resolution = _open_state(state, "generator")
    architecture = kwarg("architecture", "skip")
    if _rename_lod_layers(variables, "synthesis/", "ToRGB", resolution):
        architecture = "orig"
    # LabelConcat: NVlabs/stylegan2's conditioning; LabelEmbed: stylegan2-ada's.
    conditioning = "official" if "mapping/LabelConcat/weight" in variables else "ada"
    w_avg_beta = kwarg("w_avg_beta", kwarg("dlatent_avg_beta", 0.995))
    kwarg("label_fmaps")  # the embedding width of stylegan2-ada: w_dim unless given
    if state.static_kwargs.get("label_fmaps") not in (None, kwarg("dlatent_size", 512)):
        raise OfficialPickleError(f"{where}: label_fmaps != dlatent_size is not supported")
    size = from_tf1_names(fmap_base=int(kwarg("fmap_base", 16 << 10)), fmap_max=int(kwarg("fmap_max", 512)),
                          latent_size=int(kwarg("latent_size", 512)),
                          dlatent_size=int(kwarg("dlatent_size", 512)),
                          mapping_layers=int(kwarg("mapping_layers", 8)))
    G = Generator(
        z_dim=size["z_dim"],
        c_dim=int(kwarg("label_size", 0)),
        w_dim=size["w_dim"],
        img_resolution=resolution,
        img_channels=int(kwarg("num_channels", 3)),
        mapping_kwargs={
            "num_layers": size["mapping_layers"],
            "layer_features": kwarg("mapping_fmaps", None),
            "activation": kwarg("mapping_nonlinearity", "lrelu"),
            "lr_multiplier": float(kwarg("mapping_lrmul", 0.01)),
            "w_avg_beta": float(w_avg_beta),
            "conditioning": conditioning,
        },
        synthesis_kwargs={
            "architecture": architecture,
            "channel_base": size["channel_base"],
            "channel_max": size["channel_max"],
            "num_fp16_res": int(kwarg("num_fp16_res", 0)) * (not force_fp32),
            "conv_clamp": kwarg("conv_clamp", None),
            "resample_filter": list(kwarg("resample_kernel", [1, 3, 3, 1])),
        },
    )
    _require_defaults(kwarg, where, state, {"fmap_decay": 1.0, "fmap_min": 1, "use_noise": True,
                                            "nonlinearity": "lrelu", "normalize_latents": True})
    check()
    _fill(G, variables, _generator_table(), where)
    return G


def _discriminator_table():
    """[(regex over our paths, fn(match) -> (official name, transform or None))]."""
    return [
        (r"b(\d+)/fromrgb/(weight|bias)", lambda m: (f"{m[1]}x{m[1]}/FromRGB/{m[2]}", None)),
        (r"b(\d+)/conv0/(weight|bias)", lambda m: (f"{m[1]}x{m[1]}/Conv0/{m[2]}", None)),
        (r"b(\d+)/conv1/(weight|bias)", lambda m: (f"{m[1]}x{m[1]}/Conv1_down/{m[2]}", None)),
        (r"b(\d+)/skip/weight", lambda m: (f"{m[1]}x{m[1]}/Skip/weight", None)),
        (r"b4/conv/(weight|bias)", lambda m: (f"4x4/Conv/{m[1]}", None)),
        (r"b4/fc/(weight|bias)", lambda m: (f"4x4/Dense0/{m[1]}", None)),
        (r"b4/out/(weight|bias)", lambda m: (f"Output/{m[1]}", None)),
        (r"mapping/embed/(weight|bias)", lambda m: (f"LabelEmbed/{m[1]}", None)),
        (r"mapping/fc(\d+)/(weight|bias)", lambda m: (f"Mapping{m[1]}/{m[2]}", None)),
    ]


def discriminator_from_state(state, force_fp32=False):
    """Our Discriminator with the weights of an official D NetworkState.

    The official StyleGAN2 D (D_stylegan2) groups minibatch-stddev over
    min(4, N) images by default; stylegan2-ada's TF1 D (D_main) over the whole
    batch unless mbstd_group_size is given. Conditioning: stylegan2-ada's
    label embedding and projection when the pickle has `LabelEmbed`, else the
    official per-class output dot the label.
    """
    where, kwarg, check, variables, resolution = _open_state(state, "discriminator")
    architecture = kwarg("architecture", "resnet")
    if _rename_lod_layers(variables, "", "FromRGB", resolution):
        architecture = "orig"
    ada = "LabelEmbed/weight" in variables
    official_default_group = None if state.build_func_name.endswith("D_main") else 4
    group = state.static_kwargs.get("mbstd_group_size", official_default_group)
    kwarg("mbstd_group_size")
    num_features = int(kwarg("mbstd_num_features", 1))
    c_dim = int(kwarg("label_size", 0))
    settings = {
        "architecture": architecture,
        **from_tf1_names(fmap_base=int(kwarg("fmap_base", 16 << 10)), fmap_max=int(kwarg("fmap_max", 512))),
        "num_fp16_res": int(kwarg("num_fp16_res", 0)) * (not force_fp32),
        "conv_clamp": kwarg("conv_clamp", None),
        "mbstd_group_size": group,
        "mbstd_num_channels": num_features if group is None or group > 1 else 0,
        "resample_filter": list(kwarg("resample_kernel", [1, 3, 3, 1])),
        "conditioning": "ada" if ada else "official",
    }
    mapping_layers, mapping_fmaps = kwarg("mapping_layers", 0), kwarg("mapping_fmaps", None)
    mapping_lrmul = kwarg("mapping_lrmul", 0.1)
    if ada and c_dim > 0:
        settings["cmap_dim"] = mapping_fmaps
        settings["mapping_kwargs"] = {"num_layers": int(mapping_layers),
                                      "lr_multiplier": float(mapping_lrmul)}
    _require_defaults(kwarg, where, state, {"fmap_decay": 1.0, "fmap_min": 1,
                                            "nonlinearity": "lrelu"})
    img_channels = int(kwarg("num_channels", 3))
    check()
    D = Discriminator(c_dim, resolution, img_channels, **settings)
    _fill(D, variables, _discriminator_table(), where)
    return D


def load_official(source, force_fp32=False):
    """Reads an official TF1 StyleGAN2 / stylegan2-ada pickle into our models.

    Args:
        source: path or binary file of the pickle (NVlabs/stylegan2 or the TF1
            NVlabs/stylegan2-ada); no code from it is run.
        force_fp32: compute in float32 where the networks ask for float16 blocks.

    Returns:
        dict with "G" (trained generator), "D" (discriminator) and "G_ema"
        (the averaged generator, official "Gs", the one to draw images with);
        "G" and "D" are None when the pickle holds only Gs.
    """
    nets = read_official_pickle(source)
    convert = {"G": generator_from_state, "D": discriminator_from_state, "G_ema": generator_from_state}
    states = {"G": nets["G"], "D": nets["D"], "G_ema": nets["Gs"]}
    return {key: None if states[key] is None else convert[key](states[key], force_fp32)
            for key in convert}
