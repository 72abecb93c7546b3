"""Export to the official TF1 pickle format: our reader gives back the same networks.

Tiny random-weight networks of each kind (architectures, both conditionings, float16
blocks) are written with save_tf1_pickle and read with load_official: identical
variables, settings, images and D logits. The official fixtures, exported again, give
back their own variables. That stylegan2-ada-pytorch's legacy.load_network_pkl reads the
files and draws the same images is checked outside the suite (it needs torch and NVIDIA's
code); see the module docstring of stylegan2_tf/official/tf1_export.py.
"""

import pickle
from pathlib import Path

import numpy as np
import pytest

from stylegan2_tf.network_io import load_network
from stylegan2_tf.networks.discriminator import Discriminator
from stylegan2_tf.networks.generator import Generator
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.official.pickle_reader import read_official_pickle
from stylegan2_tf.official.tf1_export import TF1ExportError, save_tf1_pickle, tf1_states

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
RESOLUTION, C_DIM = 16, 3
SIZES = {"channel_base": 64, "channel_max": 16}  # 16, 8, 4 channels at 4, 8, 16 px

# (G mapping_kwargs, G synthesis_kwargs, D kwargs, c_dim) per network kind.
CASES = {
    "skip-resnet": ({}, {}, {}, 0),
    "resnet-skip-no-mbstd": ({}, {"architecture": "resnet"},
                             {"architecture": "skip", "mbstd_num_channels": 0}, 0),
    "orig-orig": ({}, {"architecture": "orig"}, {"architecture": "orig", "mbstd_group_size": None}, 0),
    "ada-conditioning": ({"lr_multiplier": 0.1}, {},
                         {"mapping_kwargs": {"num_layers": 2, "lr_multiplier": 0.1},
                          "mbstd_group_size": 2, "mbstd_num_channels": 2}, C_DIM),
    "official-conditioning": ({"conditioning": "official"}, {}, {"conditioning": "official"}, C_DIM),
    "fp16": ({}, {"num_fp16_res": 2, "conv_clamp": 256, "resample_filter": [1, 2, 1]},
             {"num_fp16_res": 2, "conv_clamp": 256, "resample_filter": [1, 2, 1]}, C_DIM),
}

# The keyword arguments stylegan2-ada-pytorch's legacy.py accepts (it refuses any other).
LEGACY_G_KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels",
                   "mapping_layers", "label_fmaps", "mapping_fmaps", "mapping_nonlinearity",
                   "mapping_lrmul", "w_avg_beta", "fmap_base", "fmap_max", "num_fp16_res", "conv_clamp",
                   "architecture", "resample_kernel", "use_noise", "nonlinearity", "truncation_psi",
                   "truncation_cutoff", "style_mixing_prob", "structure"}
LEGACY_D_KWARGS = {"label_size", "resolution", "num_channels", "architecture", "fmap_base", "fmap_max",
                   "num_fp16_res", "conv_clamp", "mapping_fmaps", "nonlinearity", "resample_kernel",
                   "freeze_layers", "mapping_layers", "mapping_lrmul", "mbstd_group_size",
                   "mbstd_num_features", "structure"}


def _randomize(model, seed):
    """Random values in every variable; style biases in [0.5, 1.5] (they start at 1)."""
    rng = np.random.RandomState(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("affine/bias"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * 0.5
        variable.assign(value.astype(np.float32))
    return model


def _generator(mapping_kwargs, synthesis_kwargs, c_dim, seed, z_dim=8, w_dim=12):
    G = Generator(z_dim, c_dim, w_dim, RESOLUTION, 3, mapping_kwargs={"num_layers": 2, **mapping_kwargs},
                  synthesis_kwargs={**SIZES, **synthesis_kwargs})
    return _randomize(G, seed)


def _networks(case):
    mapping_kwargs, synthesis_kwargs, d_kwargs, c_dim = CASES[case]
    return {"G": _generator(mapping_kwargs, synthesis_kwargs, c_dim, 1),
            "D": _randomize(Discriminator(c_dim, RESOLUTION, 3, **SIZES, **d_kwargs), 2),
            "G_ema": _generator(mapping_kwargs, synthesis_kwargs, c_dim, 3)}


def _weights(model):
    return {variable.path: variable.numpy() for variable in model.weights}


def _settings(model):
    """What a network is: the configs of its parts, less Keras' names (and the conditioning of
    an unconditional network, which changes nothing)."""
    if isinstance(model, Generator):
        parts = [model.mapping, model.synthesis]
    else:
        parts = [*model.blocks, model.b4] + ([model.mapping] if model.mapping is not None else [])
    ignored = {"name"} | ({"conditioning"} if model.c_dim == 0 else set())
    configs = [{k: v for k, v in part.get_config().items() if k not in ignored} for part in parts]
    return configs, model.c_dim


def _inputs(c_dim, count):
    z = np.concatenate([np.random.RandomState(seed).randn(1, 8) for seed in range(count)]).astype(np.float32)
    c = np.eye(c_dim, dtype=np.float32)[np.arange(count) % c_dim] if c_dim else None
    return z, c


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_gives_identical_networks(case, tmp_path):
    networks = _networks(case)
    path = save_tf1_pickle(networks, tmp_path / "network.pkl")
    assert path == tmp_path / "network.pkl" and [p.name for p in tmp_path.iterdir()] == ["network.pkl"]
    back = load_official(path)
    for name, model in networks.items():
        ours, theirs = _weights(model), _weights(back[name])
        assert ours.keys() == theirs.keys(), name
        for key in ours:
            np.testing.assert_array_equal(theirs[key], ours[key], err_msg=f"{name} {key}")
        assert _settings(back[name]) == _settings(model), name
    c_dim = CASES[case][3]
    z, c = _inputs(c_dim, 4)
    for name in ("G", "G_ema"):
        for psi in (1.0, 0.7):
            np.testing.assert_array_equal(
                back[name](z, c, truncation_psi=psi, noise_mode="const").numpy(),
                networks[name](z, c, truncation_psi=psi, noise_mode="const").numpy())
    images = networks["G_ema"](z, c, noise_mode="const")
    np.testing.assert_array_equal(back["D"](images, c).numpy(), networks["D"](images, c).numpy())


def test_states_use_the_official_names_layouts_and_kwargs():
    networks = _networks("ada-conditioning")
    G, D, Gs = tf1_states(networks)
    assert (G.name, D.name, Gs.name) == ("G", "D", "Gs")
    assert (Gs.build_func_name, D.build_func_name) == ("G_main", "D_main")
    synthesis, mapping = Gs.components["synthesis"], Gs.components["mapping"]
    assert (synthesis.build_func_name, mapping.build_func_name) == ("G_synthesis", "G_mapping")
    assert set(Gs.static_kwargs) <= LEGACY_G_KWARGS and set(D.static_kwargs) <= LEGACY_D_KWARGS
    assert Gs.static_kwargs["fmap_base"] == 32 and Gs.static_kwargs["label_fmaps"] == 12
    assert mapping.static_kwargs["dlatent_broadcast"] == networks["G_ema"].num_ws
    assert D.static_kwargs["mapping_fmaps"] == 16 and D.static_kwargs["mapping_layers"] == 2
    ours = _weights(networks["G_ema"])
    np.testing.assert_array_equal(synthesis.variables["4x4/Const/const"],  # [1, C, 4, 4]
                                  ours["synthesis/b4/const"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(synthesis.variables["noise2"][0, 0],  # [1, 1, R, R]: b8 conv1
                                  ours["synthesis/b8/conv1/noise_const"][0, :, :, 0])
    np.testing.assert_array_equal(synthesis.variables["8x8/Conv0_up/mod_bias"],
                                  ours["synthesis/b8/conv0/conv/affine/bias"] - np.float32(1))
    assert synthesis.variables["16x16/ToRGB/weight"].shape == (1, 1, 4, 3)
    assert synthesis.variables["16x16/Conv1/noise_strength"].shape == ()
    assert mapping.variables["LabelEmbed/weight"].shape == (C_DIM, 12)
    np.testing.assert_array_equal(Gs.variables["dlatent_avg"], ours["mapping/w_avg"])
    assert set(Gs.variables) == {"dlatent_avg"}
    assert {"LabelEmbed/weight", "Mapping1/bias", "Output/weight", "4x4/Dense0/weight"} <= set(D.variables)


def test_official_conditioning_uses_label_concat():
    _, D, Gs = tf1_states(_networks("official-conditioning"))
    assert Gs.components["synthesis"].build_func_name == "G_synthesis_stylegan2"
    assert D.build_func_name == "D_stylegan2" and "label_fmaps" not in Gs.static_kwargs
    assert Gs.components["mapping"].variables["LabelConcat/weight"].shape == (C_DIM, 8)
    assert D.variables["Output/weight"].shape == (16, C_DIM) and "LabelEmbed/weight" not in D.variables


def test_pickle_names_only_the_network_class_and_numpy_arrays(tmp_path):
    path = save_tf1_pickle(_networks("skip-resnet"), tmp_path / "network.pkl")
    named = set()

    class Stub:
        def __setstate__(self, state):
            self.state = state

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            named.add((module, name))
            return np.ndarray if (module, name) == ("numpy", "ndarray") else Stub

    with open(path, "rb") as f:
        _, _, Gs = Recorder(f).load()
    assert named == {("dnnlib.tflib.network", "Network"), ("numpy", "ndarray")}
    # The state TF1's Network.__getstate__ writes, with no code in it.
    assert set(Gs.state) == {"version", "name", "static_kwargs", "components", "build_module_src",
                             "build_func_name", "variables"}
    assert Gs.state["version"] == 4 and Gs.state["build_module_src"] == ""
    assert isinstance(Gs.state["components"]["synthesis"], Stub)
    name, value = Gs.state["components"]["synthesis"].state["variables"][0]
    assert isinstance(name, str) and value.dtype == np.float32


def test_exported_official_fixtures_give_back_their_variables():
    for name in ("stylegan2_config_f_tiny", "stylegan2_config_e_cond_tiny", "stylegan2_ada_tf_tiny"):
        official = read_official_pickle(FIXTURES / f"{name}.pkl")
        exported = dict(zip(("G", "D", "Gs"), tf1_states(load_official(FIXTURES / f"{name}.pkl"))))
        for key in ("G", "D", "Gs"):
            ours, theirs = _flat(exported[key]), _flat(official[key])
            theirs.pop("lod", None)  # progressive growing's level of detail: always 0, not kept
            assert ours.keys() == theirs.keys(), (name, key)
            for var, value in theirs.items():
                # Style biases go through +1 and back in float32: within half a step of 1.
                atol = 2 ** -24 if var.endswith("mod_bias") else 0
                np.testing.assert_allclose(ours[var], value, rtol=0, atol=atol, err_msg=f"{name} {key} {var}")
            for kwarg, value in official[key].static_kwargs.items():
                if kwarg in exported[key].static_kwargs:
                    assert exported[key].static_kwargs[kwarg] == value, (name, key, kwarg)


def _flat(state, prefix=""):
    variables = {prefix + name: value for name, value in state.variables.items()}
    for name, component in state.components.items():
        variables.update(_flat(component, f"{prefix}{name}/"))
    return variables


def test_style_biases_below_one_half_read_back_within_a_float32_step(tmp_path):
    G = _generator({}, {}, 0, 4)
    bias = G.synthesis.b8.conv0.conv.affine.bias
    values = np.array([0.1, -0.3, -2.7, 3.7, 0.5, 1.0, 1e-3, -1e-3], np.float32)
    bias.assign(np.resize(values, bias.shape))
    back = load_official(save_tf1_pickle({"G_ema": G}, tmp_path / "g.pkl"))["G_ema"]
    ours, theirs = bias.numpy(), back.synthesis.b8.conv0.conv.affine.bias.numpy()
    assert np.all(np.abs(theirs - ours) <= np.spacing(np.maximum(np.abs(ours), np.float32(1))))
    exact = ours >= 0.5
    np.testing.assert_array_equal(theirs[exact], ours[exact])


def test_gs_alone(tmp_path):
    G = _generator({}, {}, 0, 5)
    path = save_tf1_pickle({"G": None, "D": None, "G_ema": G}, tmp_path / "gs.pkl")
    assert read_official_pickle(path)["G"] is None
    back = load_network(path)  # what every script's --network takes
    assert back["G"] is None and back["D"] is None
    z, _ = _inputs(0, 2)
    np.testing.assert_array_equal(back["G_ema"](z, noise_mode="const").numpy(), G(z, noise_mode="const").numpy())


@pytest.mark.parametrize("networks, message", [
    (lambda: {"G_ema": _generator({}, {"channel_base": 63}, 0, 0)},
     r"generator Gs: channel_base=63 has no TF1 equivalent .*even"),
    (lambda: {"G_ema": _generator({"w_avg_beta": None}, {}, 0, 0)}, r"w_avg_beta=None"),
    (lambda: {"G": _generator({}, {}, 0, 0), "D": None, "G_ema": _generator({}, {}, 0, 0)},
     r"got G without D"),
    (lambda: {"G": None, "D": None, "G_ema": None}, r"G_ema is required"),
    (lambda: {"G_ema": _generator({}, {}, 0, 0), "Gs": None}, r"unknown networks \['Gs'\]"),
    (lambda: {"G": _generator({}, {}, 0, 0), "G_ema": _generator({}, {}, 0, 0),
              "D": Discriminator(0, RESOLUTION, 3, **SIZES, mbstd_group_size=1)},
     r"discriminator D: mbstd_group_size=1 with mbstd_num_channels=1 has no TF1 equivalent"),
    (lambda: {"G": _generator({}, {}, C_DIM, 0), "G_ema": _generator({}, {}, C_DIM, 0),
              "D": Discriminator(C_DIM, RESOLUTION, 3, **SIZES, mapping_kwargs={"layer_features": 5})},
     r"discriminator D: the label mapping has layer_features=5"),
])
def test_networks_the_format_cannot_express_are_refused(networks, message, tmp_path):
    with pytest.raises(TF1ExportError, match=message):
        save_tf1_pickle(networks(), tmp_path / "network.pkl")
    assert not list(tmp_path.iterdir())


def test_a_setting_it_does_not_know_is_refused(monkeypatch, tmp_path):
    G = _generator({}, {}, 0, 0)
    config = G.get_config()
    synthesis = {**config["synthesis_kwargs"], "use_noise": False}  # a setting this module cannot write
    monkeypatch.setattr(G, "get_config", lambda: {**config, "synthesis_kwargs": synthesis})
    with pytest.raises(TF1ExportError, match=r"generator Gs synthesis_kwargs: settings without a TF1 "
                                             r"counterpart here: use_noise=False"):
        save_tf1_pickle({"G_ema": G}, tmp_path / "g.pkl")
