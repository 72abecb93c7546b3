"""The projector (stylegan2_tf.projection) and scripts/project.py on a tiny generator."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan2_tf.inference import to_uint8
from stylegan2_tf.projection import (
    Projector,
    load_projection,
    noise_layers,
    noise_regularization,
    pixel_distance,
    prepare_target,
    project,
    schedule,
    synthesize,
)

REPO = Path(__file__).resolve().parents[2]
STEPS = 100
NOISE_NAMES = ["b4/conv1", "b8/conv0", "b8/conv1", "b16/conv0", "b16/conv1"]


NOISE = 0.05  # the strength of every noise input (they start at 0: no noise)


@pytest.fixture(scope="module")
def network_size():
    """16x16 images, 2 mapping layers, 8 channels at 16x16 and 16 below."""
    return {"resolution": 16, "mapping_layers": 2, "channel_base": 128}


def weights_of(G):
    return {w.path: np.array(w.numpy()) for w in G.weights}


@pytest.fixture(scope="module")
def setup(tiny_generator):
    """G, its image of seed 5 (stored noise), a pixel projector, its result, G's weights before."""
    G = tiny_generator(seed=0, noise_strength=NOISE)
    z = np.random.RandomState(5).randn(1, G.z_dim).astype(np.float32)
    target = G(z, noise_mode="const").numpy()[0]
    before = weights_of(G)
    projector = Projector(G, pixel_distance)
    result = projector.project(target, STEPS, seed=1, num_snapshots=4)
    return G, target, projector, result, before


def test_projection_gets_close_to_a_generated_image(setup):
    G, target, projector, result, _ = setup
    assert result.distance < 0.3 * result.distances[0]
    assert result.distances[-10:].mean() < result.distances[:10].mean()
    ws_avg = np.tile(projector.w_avg, [1, G.num_ws, 1])
    start_mse = np.mean(np.square(G.synthesis(ws_avg, noise_mode="const").numpy()[0] - target))
    final_mse = np.mean(np.square(result.image - target))
    assert final_mse < 0.2 * start_mse
    np.testing.assert_allclose(result.distance, final_mse, rtol=1e-5)  # pixel distance is the MSE


def test_result_shapes_and_snapshots(setup):
    G, target, _, result, _ = setup
    assert result.w.shape == (1, G.w_dim)
    assert result.ws.shape == (1, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(result.ws[0], np.tile(result.w, [G.num_ws, 1]))
    assert list(result.noises) == NOISE_NAMES
    for name, noise in result.noises.items():
        r = int(name.split("/")[0][1:])
        assert noise.shape == (1, r, r, 1)
    assert result.image.shape == result.target.shape == (16, 16, 3)
    np.testing.assert_allclose(result.target, target, atol=1e-6)  # right size: taken as it is
    assert result.distances.shape == (STEPS,)
    assert [step for step, _ in result.snapshots] == [25, 50, 75, 100]
    np.testing.assert_allclose(result.snapshots[-1][1], result.image, atol=1e-6)


def test_w_and_noises_reproduce_the_image(setup):
    G, _, _, result, _ = setup
    np.testing.assert_allclose(synthesize(G, result.ws, result.noises)[0], result.image, atol=1e-5)


def test_noise_maps_are_optimized_through_the_buffers(setup):
    """A target that differs from w_avg's image only in its noise: matched by the noise maps."""
    G = setup[0]
    strengths = {name: layer.noise_strength.numpy() for name, layer in noise_layers(G).items()}
    try:
        for layer in noise_layers(G).values():
            layer.noise_strength.assign(0.5)
        projector = Projector(G, initial_noise_factor=0.0, regularize_noise_weight=0.0,
                              w_avg_samples=1000)
        ws_avg = np.tile(projector.w_avg, [1, G.num_ws, 1])
        target = G.synthesis(ws_avg, noise_mode="const").numpy()[0]  # G's stored noise
        result = projector.project(target, 100, seed=0)
    finally:
        for name, layer in noise_layers(G).items():
            layer.noise_strength.assign(strengths[name])
    assert result.distance < 0.1 * result.distances[0]
    correlations = [np.corrcoef(layer.noise_const.numpy().ravel(), result.noises[name].ravel())[0, 1]
                    for name, layer in noise_layers(G).items()]
    assert np.mean(correlations) > 0.3  # towards the stored noise (from random maps)


def test_noise_maps_are_normalized(setup):
    for noise in setup[3].noises.values():
        assert abs(noise.mean()) < 1e-5
        np.testing.assert_allclose(np.mean(np.square(noise)), 1.0, rtol=1e-4)


def test_generator_is_left_unchanged(setup):
    G, _, _, _, before = setup
    after = weights_of(G)
    assert after.keys() == before.keys()
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value, err_msg=path)


def numpy_noise_penalty(noise):
    x = noise[0, :, :, 0].astype(np.float64)
    total = 0.0
    while True:
        total += np.mean(x * np.roll(x, 1, axis=1)) ** 2 + np.mean(x * np.roll(x, 1, axis=0)) ** 2
        if x.shape[0] <= 8:
            return total
        x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))


def test_noise_regularization_matches_numpy():
    rng = np.random.default_rng(0)
    noises = [rng.standard_normal([1, r, r, 1]).astype(np.float32) for r in (4, 8, 32)]
    noises[2] += np.linspace(0, 2, 32, dtype=np.float32)[None, :, None, None]  # correlated
    expected = sum(numpy_noise_penalty(n) for n in noises)
    np.testing.assert_allclose(float(noise_regularization(noises)), expected, rtol=1e-5)
    # one 4x4 map by hand: horizontal and vertical one-pixel products, wrapping around
    x = noises[0][0, :, :, 0]
    by_hand = (np.mean(x * x[:, [3, 0, 1, 2]]) ** 2 + np.mean(x * x[[3, 0, 1, 2], :]) ** 2)
    np.testing.assert_allclose(float(noise_regularization(noises[:1])), by_hand, rtol=1e-5)


def test_same_seed_same_projection(setup):
    _, target, projector, _, _ = setup
    first = projector.project(target, 15, seed=3)
    again = projector.project(target, 15, seed=3)
    other = projector.project(target, 15, seed=4)
    np.testing.assert_array_equal(first.w, again.w)
    np.testing.assert_array_equal(first.distances, again.distances)
    for name in first.noises:
        np.testing.assert_array_equal(first.noises[name], again.noises[name])
    assert not np.array_equal(first.w, other.w)


def test_w_plus_and_function_api(setup):
    G, target, _, _, _ = setup
    result = project(G, target, pixel_distance, 10, w_plus=True, w_avg_samples=1000)
    assert result.w.shape == result.ws[0].shape == (G.num_ws, G.w_dim)
    assert not np.allclose(result.w[0], result.w[1])  # the layers move apart


def test_schedule_follows_the_official_ramps():
    lrs, strengths = zip(*(schedule(step, 1000, 2.0) for step in range(1000)))
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.1) and lrs[-1] < 1e-4
    assert lrs[25] == pytest.approx(0.05) and lrs[400] == pytest.approx(0.1)
    assert lrs[875] == pytest.approx(0.05)  # half-way down the cosine
    assert strengths[0] == pytest.approx(2.0 * 0.05) and strengths[750] == 0
    assert strengths[375] == pytest.approx(2.0 * 0.05 * 0.25)


def test_conditional_networks_need_a_class(setup, tiny_generator):
    G = setup[0]
    with pytest.raises(ValueError, match="unconditional"):
        Projector(G, class_idx=1)
    Gc = tiny_generator(c_dim=3, seed=1, noise_strength=NOISE)
    with pytest.raises(ValueError, match="conditional"):
        Projector(Gc)
    with pytest.raises(ValueError, match="outside"):
        Projector(Gc, class_idx=3)
    target = Gc(np.zeros([1, 8], np.float32), np.eye(3, dtype=np.float32)[1:2]).numpy()[0]
    result = Projector(Gc, class_idx=1, w_avg_samples=500).project(target, 5)
    assert result.ws.shape == (1, Gc.num_ws, Gc.w_dim)


def test_prepare_target_crops_resizes_and_converts():
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, [20, 36, 3], dtype=np.uint8)
    square = prepare_target(wide, 20)  # center crop only
    np.testing.assert_allclose(square, wide[:, 8:28] / 127.5 - 1, atol=1e-6)
    resized = prepare_target(wide, 8)
    expected = Image.fromarray(wide[:, 8:28]).resize((8, 8), Image.LANCZOS)
    np.testing.assert_allclose(resized, np.asarray(expected) / 127.5 - 1, atol=1e-6)
    gray = rng.integers(0, 256, [8, 8], dtype=np.uint8)
    np.testing.assert_allclose(prepare_target(gray, 8), np.repeat(gray[..., None], 3, -1) / 127.5 - 1,
                               atol=1e-6)
    rgba = rng.integers(0, 256, [8, 8, 4], dtype=np.uint8)
    np.testing.assert_allclose(prepare_target(rgba, 8), rgba[..., :3] / 127.5 - 1, atol=1e-6)
    as_gray = prepare_target(Image.fromarray(rgba[..., :3]), 8, channels=1)
    np.testing.assert_allclose(as_gray[..., 0], np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
                               / 127.5 - 1, atol=1e-6)
    floats = rng.uniform(-1, 1, [8, 8, 3]).astype(np.float32)
    np.testing.assert_array_equal(prepare_target(floats, 8), floats)
    with pytest.raises(ValueError, match="8 bits"):
        prepare_target(Image.fromarray(np.zeros([8, 8], np.uint16)), 8)
    with pytest.raises(ValueError, match="expected"):
        prepare_target(np.zeros([8, 8, 2], np.uint8), 8)


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("STYLEGAN2_LPIPS", None)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "project.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


def test_script_end_to_end(setup, tmp_path):
    G, target, _, _, _ = setup
    network = tmp_path / "G.keras"
    G.save(network)
    # A non-square grayscale+alpha PNG: converted to RGB, center-cropped, resized.
    big = np.asarray(Image.fromarray(to_uint8(target)).resize((32, 32), Image.LANCZOS))
    gray = np.pad(np.asarray(Image.fromarray(big).convert("L")), [(0, 0), (4, 4)])
    Image.fromarray(np.stack([gray, np.full_like(gray, 200)], -1), "LA").save(tmp_path / "t.png")
    outdir = tmp_path / "out"
    result = run_script(f"--network={network}", f"--target={tmp_path / 't.png'}",
                        f"--outdir={outdir}", "--steps=30", "--distance=pixel", "--snapshots=4")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in outdir.iterdir()) == [
        "progress.png", "proj.png", "projected_w.npz", "target.png"]
    proj = np.asarray(Image.open(outdir / "proj.png"))
    target_png = np.asarray(Image.open(outdir / "target.png"))
    assert proj.shape == target_png.shape == (16, 16, 3)
    expected_target = Image.fromarray(gray[:, 4:36]).convert("RGB").resize((16, 16), Image.LANCZOS)
    np.testing.assert_array_equal(target_png, np.asarray(expected_target))
    progress = np.asarray(Image.open(outdir / "progress.png"))
    assert progress.shape == (16, 5 * 16, 3)
    np.testing.assert_array_equal(progress[:, 64:], target_png)
    np.testing.assert_array_equal(progress[:, 48:64], proj)
    with np.load(outdir / "projected_w.npz") as data:
        assert data["w"].shape == (1, G.w_dim)
        assert data["ws"].shape == (1, G.num_ws, G.w_dim)
        assert data["distances"].shape == (30,)
        assert list(data["noise_names"]) == NOISE_NAMES
        assert list(data["snapshot_steps"]) == [8, 15, 22, 30]  # rounded even spacing
    ws, noises = load_projection(outdir / "projected_w.npz")
    drawn = to_uint8(synthesize(G, ws, noises)[0])
    assert np.abs(drawn.astype(int) - proj.astype(int)).max() <= 1


@pytest.mark.parametrize("target,extra,message", [
    ("missing.png", [], "--target: missing.png does not exist"),
    ("README.md", [], "--target: cannot read README.md as an image"),
    ("PNG", ["--distance=lpips"], "net-lin_vgg_v0.1.pb"),
])
def test_script_usage_errors(tmp_path, target, extra, message):
    if target == "PNG":
        target = tmp_path / "t.png"
        Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(target)
    result = run_script("--network=missing.keras", f"--target={target}", f"--outdir={tmp_path}",
                        *extra)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_script_projects_with_an_lpips_graph(setup, tmp_path, lpips_standin):
    """--distance=lpips runs the LPIPS graph loader (a stand-in with the real file's node names)."""
    G, target, _, _, _ = setup
    network = tmp_path / "G.keras"
    G.save(network)
    Image.fromarray(to_uint8(target)).save(tmp_path / "t.png")
    outdir = tmp_path / "out"
    result = run_script(f"--network={network}", f"--target={tmp_path / 't.png'}",
                        f"--outdir={outdir}", "--steps=20", f"--lpips={lpips_standin}")
    assert result.returncode == 0, result.stderr
    with np.load(outdir / "projected_w.npz") as data:
        distances = data["distances"]
    assert distances.shape == (20,) and np.all(np.isfinite(distances))
    assert distances[-5:].mean() < distances[:5].mean()  # it fell (noise on w makes steps jumpy)
