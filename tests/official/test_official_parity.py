"""Networks loaded from official-format pickles draw NVIDIA's images.

The fixtures (tests/fixtures/official/README.md) are tiny random-weight
networks in the official TF1 pickle formats, with reference outputs computed
by NVIDIA's own code for seeds 0-3 (z = RandomState(seed).randn(1, z_dim)),
noise_mode const, truncation psi 1.0 and 0.7.
"""

from pathlib import Path

import numpy as np
import pytest

from stylegan2_tf.official.convert import discriminator_from_state, generator_from_state, load_official
from stylegan2_tf.official.pickle_reader import read_official_pickle
from stylegan2_tf.ops import use_impl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
NAMES = ["stylegan2_config_f_tiny", "stylegan2_config_e_cond_tiny", "stylegan2_ada_tf_tiny"]


def _load(name):
    nets = read_official_pickle(FIXTURES / f"{name}.pkl")
    reference = np.load(FIXTURES / f"{name}_reference.npz")
    c = reference["c"] if reference["c"].shape[1] else None
    return nets, reference, c


def _uint8(images):
    return np.clip(images * 127.5 + 128, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("impl", ["ref", "custom"])
@pytest.mark.parametrize("name", NAMES)
def test_generator_draws_nvidias_images(name, impl):
    with use_impl(impl):
        nets, reference, c = _load(name)
        G = generator_from_state(nets["Gs"], force_fp32=True)
        seeds = reference["seeds"]
        z = np.concatenate([np.random.RandomState(s).randn(1, G.z_dim) for s in seeds]).astype(np.float32)
        np.testing.assert_array_equal(z, reference["z"])  # the official seed convention
        for key, psi in (("psi1", 1.0), ("psi07", 0.7)):
            w = G.mapping(z, c, truncation_psi=psi).numpy()
            np.testing.assert_allclose(w, reference[f"w_{key}"], atol=1e-4, rtol=1e-4)
            images = G(z, c, truncation_psi=psi, noise_mode="const").numpy()
            np.testing.assert_allclose(images, reference[f"img_{key}"], atol=1e-3, rtol=0)
            # uint8 quantization: values on a rounding boundary may land one step apart.
            diff = np.abs(_uint8(images).astype(int) - reference[f"img_uint8_{key}"].astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_mixed_precision_network_stays_close():
    nets, reference, c = _load("stylegan2_ada_tf_tiny")
    G = generator_from_state(nets["Gs"])  # num_fp16_res=4: every block in float16 here
    images = G(reference["z"], c, noise_mode="const").numpy()
    np.testing.assert_allclose(images, reference["img_psi1"], atol=1e-2, rtol=0)


def test_trained_and_averaged_generators_differ():
    nets, reference, _ = _load("stylegan2_config_f_tiny")
    G, G_ema = generator_from_state(nets["G"]), generator_from_state(nets["Gs"])
    assert not np.allclose(G(reference["z"], noise_mode="const").numpy(),
                           G_ema(reference["z"], noise_mode="const").numpy())


@pytest.mark.parametrize("name", ["stylegan2_config_f_tiny", "stylegan2_ada_tf_tiny"])
def test_discriminator_gives_nvidias_logits(name):
    nets, reference, c = _load(name)
    D = discriminator_from_state(nets["D"], force_fp32=True)
    images = reference["img_psi1"]
    for key, count in (("d_logits_batch4", 4), ("d_logits_batch2", 2)):
        logits = D(images[:count], None if c is None else c[:count]).numpy()
        np.testing.assert_allclose(logits, reference[key], rtol=1e-3,
                                   atol=1e-3 * np.abs(reference[key]).max())


def test_load_official_returns_all_three_networks():
    networks = load_official(FIXTURES / "stylegan2_config_e_cond_tiny.pkl")
    assert set(networks) == {"G", "D", "G_ema"}
    _, reference, c = _load("stylegan2_config_e_cond_tiny")
    images = networks["G_ema"](reference["z"], c, noise_mode="const").numpy()
    np.testing.assert_allclose(images, reference["img_psi1"], atol=1e-3, rtol=0)
    # Official conditional D: one output per class, dotted with the label.
    assert networks["D"].b4.out.units == 4
    assert networks["D"](images, c).shape == (4, 1)


def test_top_level_load_official_reads_a_file_object():
    import stylegan2_tf

    with open(FIXTURES / "stylegan2_config_f_tiny.pkl", "rb") as f:
        networks = stylegan2_tf.load_official(f)
    _, reference, _ = _load("stylegan2_config_f_tiny")
    images = networks["G_ema"](reference["z"], noise_mode="const").numpy()
    np.testing.assert_allclose(images, reference["img_psi1"], atol=1e-3, rtol=0)
