"""Our networks -> NVIDIA's TF1 network pickle, which the PyTorch StyleGAN code opens.

The TF1 format (NVlabs/stylegan2 and the TF1 NVlabs/stylegan2-ada) is the tuple
(G, D, Gs) of `dnnlib.tflib.network.Network` objects, each pickled as the state that
TF1's `Network.__getstate__` returns (version 4): name, build function name, keyword
arguments, sub-networks (G's "synthesis" and "mapping") and variables by their official
names, in the official layouts. `legacy.load_network_pkl` of stylegan2-ada-pytorch and
of stylegan3 converts that state into their PyTorch networks, and this library's
`load_official` reads it back.

Writing one:

1. Keyword arguments: our settings in the TF1 vocabulary (`presets.to_tf1_names` for
   the sizes: fmap_base = channel_base / 2, latent_size = z_dim, ...), all written out,
   and only names that both `legacy.load_network_pkl` and `load_official` accept. A
   setting the format cannot express is refused with a `TF1ExportError` that names it.
2. Variables: convert.py's table (our variable -> official name and layout change),
   read backwards: each layout change is replaced by its inverse. Every variable must
   get an official name, and no two the same one.
3. The pickle holds no code: `build_module_src` is empty, so TF1's own loader, which
   executes that source to rebuild the graph, cannot open the file. It names two
   classes only, `dnnlib.tflib.network.Network` and `numpy.ndarray` (an array is
   `numpy.ndarray(shape, dtype, bytes)`), so numpy 1 and numpy 2 read it alike.

Conditioning (c_dim > 0): "ada" writes stylegan2-ada's `LabelEmbed` (G:
`mapping/LabelEmbed`; D: `LabelEmbed`, `Mapping{i}`), which legacy.load_network_pkl
reads; "official" writes NVlabs/stylegan2's `LabelConcat` (G) and per-class `Output`
(D), which this library reads back but legacy.load_network_pkl does not (it knows only
LabelEmbed).

The TF1 format stores a style bias minus 1 (`mod_bias`; ours starts at 1): a bias b
>= 0.5 reads back exactly, a smaller one within one float32 step of max(|b|, 1).
"""

import pickle
from pathlib import Path

import numpy as np

from stylegan2_tf.files import atomic_write
from stylegan2_tf.networks.presets import from_tf1_names, to_tf1_names
from stylegan2_tf.official import convert
from stylegan2_tf.official.pickle_reader import NetworkState

STATE_VERSION = 4  # what TF1's Network.__getstate__ writes; legacy.py needs >= 4
PICKLE_PROTOCOL = 4

# Build functions by conditioning, named as TF1 names them in a state (without the module):
# NVlabs/stylegan2-ada training/networks.py, NVlabs/stylegan2 training/networks_stylegan2.py.
_G_FUNCS = {"ada": ("G_main", "G_mapping", "G_synthesis"),
            "official": ("G_main", "G_mapping", "G_synthesis_stylegan2")}
_D_FUNCS = {"ada": "D_main", "official": "D_stylegan2"}

# The layout changes of convert.py's tables (official -> ours), each with its inverse.
_INVERSE_TRANSFORMS = {
    None: lambda value: value,
    convert._nchw_to_nhwc: lambda value: np.transpose(value, [0, 3, 1, 2]),  # [1, R, R, C] -> [1, C, R, R]
    # [1, R, R, 1] -> [1, 1, R, R]
    convert._noise_to_nhwc: lambda value: np.reshape(value, [1, 1, value.shape[1], value.shape[2]]),
    convert._style_bias: lambda value: value - np.float32(1),  # TF1 adds the 1 at run time
}

# Constructor settings this module writes (or, for fused_modconv, knows to change no output).
# A network with any other setting is refused rather than written without it.
_KERAS_KEYS = {"name", "trainable", "dtype"}
_G_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
           "synthesis_kwargs"}
_G_MAPPING_KEYS = {"num_layers", "layer_features", "activation", "lr_multiplier", "w_avg_beta",
                   "conditioning"}
_G_SYNTHESIS_KEYS = {"architecture", "channel_base", "channel_max", "num_fp16_res", "conv_clamp",
                     "fused_modconv", "resample_filter"}
_D_KEYS = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
           "num_fp16_res", "conv_clamp", "cmap_dim", "mbstd_group_size", "mbstd_num_channels",
           "conditioning", "mapping_kwargs", "resample_filter"}
_D_MAPPING_KEYS = {"num_layers", "lr_multiplier", "layer_features", "activation"}


class TF1ExportError(ValueError):
    """A network the TF1 pickle format cannot express (the message names the setting)."""


def save_tf1_pickle(networks, path):
    """Writes {"G", "D", "G_ema"} as an official TF1 network pickle.

    The file is the tuple (G, D, Gs), Gs being our G_ema; with G and D both None it is
    Gs alone (this library reads that, but legacy.load_network_pkl needs all three).
    Written aside and renamed into place (files.atomic_write).

    Args:
        networks: {"G": Generator or None, "D": Discriminator or None, "G_ema": Generator}.
        path: the .pkl to write (replaced if it exists).

    Returns:
        Path(path).

    Raises:
        TF1ExportError: a network the format cannot express, naming the setting; or
            only one of G and D given.
    """
    states = tf1_states(networks)
    if states[0] is None:
        content = _Network(states[2])
    else:
        content = tuple(_Network(state) for state in states)

    def write(partial):
        with open(partial, "wb") as f:
            _TF1Pickler(f, protocol=PICKLE_PROTOCOL).dump(content)

    path = Path(path)
    atomic_write(path, write)
    return path


def tf1_states(networks):
    """(G, D, Gs) NetworkStates of {"G", "D", "G_ema"} (G and D None when both are absent)."""
    unknown = sorted(set(networks) - {"G", "D", "G_ema"})
    if unknown:
        raise TF1ExportError(f"unknown networks {unknown}; expected G, D and G_ema")
    if networks.get("G_ema") is None:
        raise TF1ExportError("G_ema is required: it is the Gs of a TF1 pickle")
    G, D = networks.get("G"), networks.get("D")
    if (G is None) != (D is None):
        raise TF1ExportError(f"got {'G' if D is None else 'D'} without {'D' if D is None else 'G'}: "
                             "a TF1 pickle holds G, D and Gs, or Gs alone")
    Gs = generator_state(networks["G_ema"], "Gs")
    if G is None:
        return None, None, Gs
    return generator_state(G, "G"), discriminator_state(D), Gs


def generator_state(G, name="Gs"):
    """The TF1 `G_main` state of our Generator, with components synthesis and mapping.

    The inverse of convert.generator_from_state: that function gives back G's settings
    and variables.
    """
    where = f"generator {name}"
    mapping, synthesis = G.mapping, G.synthesis
    config = G.get_config()
    _check_known(config, _G_KEYS, where)
    _check_known(config.get("mapping_kwargs") or {}, _G_MAPPING_KEYS, f"{where} mapping_kwargs")
    _check_known(config.get("synthesis_kwargs") or {}, _G_SYNTHESIS_KEYS, f"{where} synthesis_kwargs")
    conditioning = _generator_conditioning(mapping)
    if mapping.w_avg_beta is None:
        raise TF1ExportError(f"{where}: w_avg_beta=None (no tracked average w): a TF1 generator "
                             "always holds one (dlatent_avg)")
    kwargs = {
        "num_channels": int(G.img_channels),
        "resolution": int(G.img_resolution),
        "label_size": int(G.c_dim),
        **_sizes(where, channel_base=synthesis.channel_base, channel_max=synthesis.channel_max,
                 z_dim=G.z_dim, w_dim=G.w_dim, mapping_layers=mapping.num_layers),
        "mapping_fmaps": int(mapping.layer_features),
        "mapping_lrmul": float(mapping.lr_multiplier),
        "mapping_nonlinearity": str(mapping.activation),
        "w_avg_beta": float(mapping.w_avg_beta),
        "architecture": str(synthesis.architecture),
        "num_fp16_res": int(synthesis.num_fp16_res),
        "conv_clamp": _optional_float(synthesis.conv_clamp),
        "resample_kernel": _kernel(synthesis.resample_filter),
    }
    if conditioning == "ada":
        kwargs["label_fmaps"] = int(mapping.embed.units)  # TF1's default would be latent_size
    variables = _official_variables(G, convert._generator_table(), where)
    own, parts = _split(variables, ("synthesis", "mapping"))
    main_func, mapping_func, synthesis_func = _G_FUNCS[conditioning or "ada"]
    # As TF1's G_main makes them: both get G's kwargs, the mapping also dlatent_broadcast.
    components = {
        "synthesis": NetworkState("G_synthesis", synthesis_func, dict(kwargs), {}, parts["synthesis"]),
        "mapping": NetworkState("G_mapping", mapping_func, {"dlatent_broadcast": int(G.num_ws), **kwargs},
                                {}, parts["mapping"]),
    }
    return NetworkState(name, main_func, kwargs, components, own)


def discriminator_state(D, name="D"):
    """The TF1 `D_main` (conditioning "ada" or none) or `D_stylegan2` ("official") state of
    our Discriminator; the inverse of convert.discriminator_from_state."""
    where = f"discriminator {name}"
    config = D.get_config()
    _check_known(config, _D_KEYS, where)
    _check_known(config.get("mapping_kwargs") or {}, _D_MAPPING_KEYS, f"{where} mapping_kwargs")
    conditioning = None
    if D.c_dim > 0:
        conditioning = "official" if D.mapping is None else "ada"
    group, channels = D.mbstd_group_size, int(D.mbstd_num_channels)
    if channels > 0 and group is not None and group <= 1:
        # Readers disagree: NVlabs/stylegan2 and this library drop the layer for a group of 1.
        raise TF1ExportError(f"{where}: mbstd_group_size={group} with mbstd_num_channels={channels} "
                             "has no TF1 equivalent; use mbstd_num_channels=0 to drop the layer")
    kwargs = {
        "num_channels": int(D.img_channels),
        "resolution": int(D.img_resolution),
        "label_size": int(D.c_dim),
        **_sizes(where, channel_base=D.channel_base, channel_max=D.channel_max),
        "architecture": str(D.architecture),
        "num_fp16_res": int(D.num_fp16_res),
        "conv_clamp": _optional_float(D.conv_clamp),
        "resample_kernel": _kernel(D.resample_filter),
        "mbstd_group_size": None if group is None else int(group),
        "mbstd_num_features": channels,
    }
    if conditioning == "ada":
        mapping = D.mapping
        if mapping.layer_features != mapping.w_dim or mapping.activation != "lrelu":
            raise TF1ExportError(
                f"{where}: the label mapping has layer_features={mapping.layer_features}, activation="
                f"{mapping.activation!r}; TF1 has cmap_dim ({mapping.w_dim}) features and lrelu")
        kwargs.update(mapping_layers=int(mapping.num_layers), mapping_fmaps=int(mapping.w_dim),
                      mapping_lrmul=float(mapping.lr_multiplier))
    variables = _official_variables(D, convert._discriminator_table(), where)
    return NetworkState(name, _D_FUNCS[conditioning or "ada"], kwargs, {}, variables)


def _generator_conditioning(mapping):
    """None (unconditional), "ada" (an `embed` layer) or "official" (a `label_weight`)."""
    if mapping.c_dim == 0:
        return None
    return "official" if hasattr(mapping, "label_weight") else "ada"


def _check_known(config, known, where):
    unknown = {key: value for key, value in config.items() if key not in known | _KERAS_KEYS}
    if unknown:
        raise TF1ExportError(f"{where}: settings without a TF1 counterpart here: "
                             + ", ".join(f"{key}={value!r}" for key, value in sorted(unknown.items())))


def _sizes(where, **ours):
    """to_tf1_names(**ours), checked to translate back (channel_base must be even)."""
    ours = {key: int(value) for key, value in ours.items()}
    tf1 = to_tf1_names(**ours)
    if from_tf1_names(**tf1) != ours:
        lost = {key: value for key, value in ours.items() if from_tf1_names(**tf1).get(key) != value}
        raise TF1ExportError(f"{where}: {', '.join(f'{k}={v}' for k, v in lost.items())} has no TF1 "
                             f"equivalent (TF1 stores fmap_base = channel_base / 2: it must be even)")
    return tf1


def _optional_float(value):
    return None if value is None else float(value)


def _kernel(resample_filter):
    return [int(v) if float(v).is_integer() else float(v) for v in resample_filter]


def _official_variables(model, table, where):
    """{official name: float32 array in the official layout} for every variable of `model`."""
    variables, sources = {}, {}
    for variable in model.weights:
        path = variable.path
        entry = convert.table_entry(table, path)
        if entry is None:
            raise TF1ExportError(f"{where}: our variable {path} has no TF1 counterpart")
        name, transform = entry
        if name in variables:
            raise TF1ExportError(f"{where}: our {sources[name]} and {path} would both be TF1's {name}")
        if transform not in _INVERSE_TRANSFORMS:  # convert.py's table grew a layout change
            raise TF1ExportError(f"{where}: no inverse of {transform.__name__} (for our {path})")
        value = _INVERSE_TRANSFORMS[transform](np.asarray(variable.numpy(), dtype=np.float32))
        variables[name] = np.array(value, dtype=np.float32, order="C")  # 0-d stays 0-d
        sources[name] = path
    return variables


def _split(variables, components):
    """({own name: value}, {component: {name within it: value}}) of flat official names."""
    own, parts = {}, {component: {} for component in components}
    for name, value in variables.items():
        head, _, rest = name.partition("/")
        if head in parts and rest:
            parts[head][rest] = value
        else:
            own[name] = value
    return own, parts


class _Network:
    """Pickled as TF1's dnnlib.tflib.network.Network, with the state its __getstate__ returns."""

    def __init__(self, state):
        self._state = {
            "version": STATE_VERSION,
            "name": state.name,
            "static_kwargs": dict(state.static_kwargs),
            "components": {key: _Network(value) for key, value in state.components.items()},
            "build_module_src": "",  # no code: readers must not need any
            "build_func_name": state.build_func_name,
            "variables": list(state.variables.items()),
        }

    def __getstate__(self):
        return self._state


class _TF1Pickler(pickle._Pickler):  # the Python pickler: it lets save_global name a class freely
    """Names _Network `dnnlib.tflib.network.Network` (no such module needs to exist here) and
    writes arrays as numpy.ndarray(shape, dtype, bytes)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            return np.ndarray, (obj.shape, obj.dtype.str, obj.tobytes())
        return NotImplemented

    def save_global(self, obj, name=None):
        if obj is not _Network:
            return super().save_global(obj, name)
        self.save("dnnlib.tflib.network")
        self.save("Network")
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)
        return None
