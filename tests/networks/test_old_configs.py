"""Files saved by earlier versions still load: configs with retired keys (the op `impl`) and
renamed keys (MappingNetwork's `label_mode` "embed"/"concat", now `conditioning` "ada"/"official"),
in layer configs, .keras files and a run's networks.json."""

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from stylegan2_tf.network_io import load_network
from stylegan2_tf.networks.generator import Generator, MappingNetwork
from stylegan2_tf.networks.layers import upgrade_config

OLD_LABEL_MODES = {"ada": "embed", "official": "concat"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old_versions"


@pytest.fixture(scope="module")
def network_size():
    return {"channel_max": 8}


def _as_saved_before(config):
    """A Generator config as earlier versions wrote it: label_mode, and impl."""
    mapping = dict(config["mapping_kwargs"])
    mapping["label_mode"] = OLD_LABEL_MODES[mapping.pop("conditioning")]
    return {**config, "mapping_kwargs": mapping, "impl": "ref"}


def _outputs(G):
    z = np.random.RandomState(0).randn(2, 8).astype(np.float32)
    return G(z, np.eye(3, dtype=np.float32)[[0, 2]], noise_mode="const").numpy()


def test_upgrade_config_drops_retired_and_renames_old_keys():
    old = {"impl": "custom", "label_mode": "concat", "z_dim": 8,
           "mapping_kwargs": {"label_mode": "embed", "num_layers": 2, "impl": "ref"},
           "synthesis_kwargs": {"impl": "auto", "channel_base": 64}}
    assert upgrade_config(old) == {"conditioning": "official", "z_dim": 8,
                                   "mapping_kwargs": {"conditioning": "ada", "num_layers": 2},
                                   "synthesis_kwargs": {"channel_base": 64}}
    current = {"conditioning": "ada", "mapping_kwargs": {"num_layers": 2}}
    assert upgrade_config(current) == current


@pytest.mark.parametrize("conditioning", ["ada", "official"])
def test_old_generator_and_mapping_configs_load(conditioning, tiny_generator):
    G = tiny_generator(3, mapping={"conditioning": conditioning})
    config = G.get_config()
    assert "label_mode" not in json.dumps(config) and '"impl"' not in json.dumps(config)
    old = Generator.from_config(_as_saved_before(config))
    assert old.mapping.conditioning == conditioning and old.get_config() == config
    old.set_weights(G.get_weights())
    np.testing.assert_array_equal(_outputs(old), _outputs(G))

    mapping = G.mapping.get_config()
    mapping["label_mode"] = OLD_LABEL_MODES[mapping.pop("conditioning")]
    assert MappingNetwork.from_config(mapping).conditioning == conditioning


@pytest.mark.parametrize("conditioning", ["ada", "official"])
def test_old_keras_file_loads(tmp_path, conditioning, tiny_generator):
    G = tiny_generator(3, mapping={"conditioning": conditioning})
    G.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as new, \
            zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":
                saved = json.loads(data)
                saved["config"] = _as_saved_before(saved["config"])
                data = json.dumps(saved).encode()
            old.writestr(item, data)
    for loaded in (keras.saving.load_model(tmp_path / "old.keras"),
                   load_network(tmp_path / "old.keras")["G_ema"]):
        assert loaded.mapping.conditioning == conditioning
        np.testing.assert_array_equal(_outputs(loaded), _outputs(G))


@pytest.mark.parametrize("label_mode, conditioning", [("embed", "ada"), ("concat", "official")])
def test_files_written_by_an_earlier_version_load(label_mode, conditioning):
    """.keras files and a run's networks.json written by commit aca2f8b (make_old_version_fixtures.py)."""
    reference = np.load(FIXTURES / "reference.npz")
    G = load_network(FIXTURES / f"G_label_mode_{label_mode}.keras")["G_ema"]
    assert G.mapping.conditioning == conditioning
    images = G(reference["z"], reference["c"], noise_mode="const").numpy()
    np.testing.assert_allclose(images, reference[f"img_{label_mode}"], atol=1e-5)


def test_a_runs_networks_json_written_by_an_earlier_version_loads():
    configs = json.loads((FIXTURES / "networks_label_mode_concat.json").read_text())
    assert configs["G"]["config"]["mapping_kwargs"]["label_mode"] == "concat"
    G = keras.saving.deserialize_keras_object(configs["G"])
    D = keras.saving.deserialize_keras_object(configs["D"])
    assert G.mapping.conditioning == D.conditioning == "official"
