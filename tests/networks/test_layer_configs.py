"""Every Keras class registered under package "stylegan2_tf" survives its config, as keras-hub
checks for each of its layers: build and run it, rebuild it from get_config() (from_config, and
keras.saving's serialize / deserialize through JSON), copy the weights, and get the same weights
(count, names, shapes) and the same outputs. A registered class without a case here fails
test_every_registered_class_has_a_case."""

import ast
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import stylegan2_tf
from stylegan2_tf.networks.discriminator import (
    Discriminator,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MinibatchStdDev,
)
from stylegan2_tf.networks.generator import (
    Generator,
    ModulatedConv2D,
    SynthesisBlock,
    SynthesisLayer,
    SynthesisNetwork,
    ToRGB,
)
from stylegan2_tf.networks.layers import PACKAGE, EqualizedConv2D, EqualizedDense, MappingNetwork

PACKAGE_DIR = Path(stylegan2_tf.__file__).resolve().parent


def _normal(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


def _labels(n, c_dim, seed=1):
    return np.eye(c_dim, dtype=np.float32)[np.random.RandomState(seed).randint(0, c_dim, n)]


# id -> (class, constructor arguments, call arguments, call keyword arguments). Small sizes;
# noise from the stored buffers (noise_mode="const") so that outputs are reproducible.
CASES = {
    "EqualizedDense": (EqualizedDense, {"units": 5, "activation": "lrelu", "lr_multiplier": 0.5,
                                        "bias_init": 0.25}, (_normal(2, 4),), {}),
    "EqualizedDense-flatten": (EqualizedDense, {"units": 3, "use_bias": False, "flatten": True},
                               (_normal(2, 3, 3, 2),), {}),
    "EqualizedConv2D-up": (EqualizedConv2D, {"filters": 4, "kernel_size": 3, "up": 2,
                                             "activation": "lrelu", "conv_clamp": 8,
                                             "resample_filter": [1, 2, 1]},
                           (_normal(2, 4, 4, 3),), {}),
    "EqualizedConv2D-down-float16": (EqualizedConv2D, {"filters": 4, "kernel_size": 1, "down": 2,
                                                       "use_bias": False, "dtype": "mixed_float16"},
                                     (_normal(2, 4, 4, 3),), {}),
    "MappingNetwork-ada": (MappingNetwork, {"z_dim": 4, "c_dim": 3, "w_dim": 5, "num_ws": 3,
                                            "num_layers": 2, "layer_features": 6},
                           (_normal(2, 4), _labels(2, 3)), {"truncation_psi": 0.7,
                                                            "truncation_cutoff": 2}),
    "MappingNetwork-official": (MappingNetwork, {"z_dim": 4, "c_dim": 3, "w_dim": 5, "num_ws": None,
                                                 "num_layers": 1, "conditioning": "official"},
                                (_normal(2, 4), _labels(2, 3)), {}),
    "MappingNetwork-labels-only": (MappingNetwork, {"z_dim": 0, "c_dim": 3, "w_dim": 5,
                                                    "num_ws": None, "num_layers": 0,
                                                    "w_avg_beta": None},
                                   (None, _labels(2, 3)), {}),
    "ModulatedConv2D": (ModulatedConv2D, {"in_channels": 3, "filters": 4, "kernel_size": 3,
                                          "w_dim": 5, "up": 2, "fused_modconv": True},
                        (_normal(2, 4, 4, 3), _normal(2, 5)), {}),
    "SynthesisLayer": (SynthesisLayer, {"in_channels": 3, "filters": 4, "w_dim": 5,
                                        "resolution": 8, "up": 2, "conv_clamp": 4},
                       (_normal(2, 4, 4, 3), _normal(2, 5)), {"noise_mode": "const"}),
    "ToRGB": (ToRGB, {"in_channels": 4, "img_channels": 3, "w_dim": 5, "conv_clamp": 1},
              (_normal(2, 4, 4, 4), _normal(2, 5)), {}),
    "SynthesisBlock-first": (SynthesisBlock, {"in_channels": 0, "out_channels": 4, "w_dim": 5,
                                              "resolution": 4, "img_channels": 3, "is_last": False},
                             (None, None, _normal(2, 2, 5)), {"noise_mode": "const"}),
    "SynthesisBlock-resnet-float16": (SynthesisBlock, {"in_channels": 4, "out_channels": 2,
                                                       "w_dim": 5, "resolution": 8,
                                                       "img_channels": 3, "is_last": True,
                                                       "architecture": "resnet", "conv_clamp": 256,
                                                       "use_fp16": True},
                                      (_normal(2, 4, 4, 4), None, _normal(2, 3, 5)),
                                      {"noise_mode": "const"}),
    "SynthesisNetwork": (SynthesisNetwork, {"w_dim": 5, "img_resolution": 8, "img_channels": 3,
                                            "channel_base": 32, "channel_max": 8},
                         (_normal(2, 4, 5),), {"noise_mode": "const"}),
    "Generator": (Generator, {"z_dim": 4, "c_dim": 3, "w_dim": 5, "img_resolution": 8,
                              "img_channels": 3, "mapping_kwargs": {"num_layers": 1},
                              "synthesis_kwargs": {"channel_base": 32, "channel_max": 8,
                                                   "architecture": "resnet", "num_fp16_res": 1,
                                                   "conv_clamp": 256}},
                  (_normal(2, 4), _labels(2, 3)), {"noise_mode": "const", "truncation_psi": 0.7}),
    "MinibatchStdDev": (MinibatchStdDev, {"group_size": 2, "num_channels": 2},
                        (_normal(4, 4, 4, 4),), {}),
    "DiscriminatorBlock-first-skip": (DiscriminatorBlock, {"in_channels": 0, "tmp_channels": 4,
                                                           "out_channels": 8, "resolution": 8,
                                                           "img_channels": 3,
                                                           "architecture": "skip"},
                                      (None, _normal(2, 8, 8, 3)), {}),
    "DiscriminatorBlock-resnet-float16": (DiscriminatorBlock, {"in_channels": 4, "tmp_channels": 4,
                                                               "out_channels": 8, "resolution": 8,
                                                               "img_channels": 3,
                                                               "conv_clamp": 256, "use_fp16": True},
                                          (_normal(2, 8, 8, 4), None), {}),
    "DiscriminatorEpilogue": (DiscriminatorEpilogue, {"in_channels": 8, "cmap_dim": 6,
                                                      "img_channels": 3, "architecture": "skip",
                                                      "mbstd_group_size": 2,
                                                      "mbstd_num_channels": 2},
                              (_normal(4, 4, 4, 8), _normal(4, 4, 4, 3), _normal(4, 6)), {}),
    "Discriminator": (Discriminator, {"c_dim": 3, "img_resolution": 8, "img_channels": 3,
                                      "channel_base": 64, "channel_max": 16, "cmap_dim": 4,
                                      "mbstd_group_size": 2, "num_fp16_res": 1, "conv_clamp": 256,
                                      "mapping_kwargs": {"num_layers": 1}},
                      ((_normal(4, 8, 8, 3), _labels(4, 3)),), {}),
}


def _run(layer, args, kwargs):
    """The layer's outputs as a list of numpy arrays (Nones dropped)."""
    return [np.asarray(t) for t in tf.nest.flatten(layer(*args, **kwargs)) if t is not None]


def _randomize(layer):
    """Every weight drawn anew (biases, noise strengths and w_avg start at 0 or 1 and would
    hide a weight that is not copied)."""
    rng = np.random.RandomState(2)
    for variable in layer.weights:
        variable.assign(np.float32(0.5) * rng.standard_normal(variable.shape).astype(np.float32))


def _json_config(layer):
    return json.loads(json.dumps(layer.get_config()))


def assert_same_layer(clone, layer, args, kwargs, expected):
    """clone, built by a call, gets layer's weights: same names, shapes, counts, outputs."""
    assert type(clone) is type(layer)
    assert _json_config(clone) == _json_config(layer)
    _run(clone, args, kwargs)  # builds the layers that build on their first call
    assert [(v.path, tuple(v.shape), v.trainable) for v in clone.weights] == [
        (v.path, tuple(v.shape), v.trainable) for v in layer.weights]
    assert clone.count_params() == layer.count_params()
    assert len(clone.trainable_weights) == len(layer.trainable_weights)
    clone.set_weights(layer.get_weights())
    outputs = _run(clone, args, kwargs)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip_gives_the_same_layer(case):
    cls, init, args, kwargs = CASES[case]
    layer = cls(**init)
    _run(layer, args, kwargs)
    assert layer.weights or cls is MinibatchStdDev, "nothing was built"
    _randomize(layer)
    expected = _run(layer, args, kwargs)
    assert expected and all(np.all(np.isfinite(x)) for x in expected)

    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert_same_layer(clone, layer, args, kwargs, expected)

    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"{PACKAGE}>{cls.__name__}"
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert_same_layer(clone, layer, args, kwargs, expected)


def _decorated_classes():
    """Names of the classes in stylegan2_tf/**/*.py decorated with `serializable` or with
    keras' register_keras_serializable (read from the source, whether imported or not)."""
    names = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                    if name in ("serializable", "register_keras_serializable"):
                        names.add(node.name)
    return names


def test_every_registered_class_has_a_case():
    registered = {name.split(">", 1)[1] for name in keras.saving.get_custom_objects()
                  if name.startswith(f"{PACKAGE}>")}
    tested = {cls.__name__ for cls, *_ in CASES.values()}
    assert registered == _decorated_classes()
    assert tested == registered, (f"without a case: {sorted(registered - tested)}; "
                                  f"not registered: {sorted(tested - registered)}")
