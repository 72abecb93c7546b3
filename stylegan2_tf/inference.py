"""Drawing images from a generator: seeds, class labels, truncation, style mixing, grids.

Seeds follow the official scripts: z = np.random.RandomState(seed).randn(1, z_dim).

Images are quantized as the official scripts do, in one formula with two forms:

    uint8 = truncate(clip(x * 127.5 + 128, 0, 255))

`to_uint8` in numpy, `to_uint8_tf` in stock TensorFlow ops (Mul, AddV2,
Minimum, Maximum, Cast: what a graph or a SavedModel for serving may hold);
tests/serving/test_quantization.py checks that both give the same bytes. The + 128 (not + 127.5) makes the
truncation round: a dataset image read as u / 127.5 - 1 comes back as u.
"""

import numpy as np
import tensorflow as tf
from PIL import Image

from stylegan2_tf.files import atomic_write


def seed_latents(seeds, z_dim):
    """[len(seeds), z_dim] float32 latents, one RandomState(seed) draw each."""
    return np.concatenate(
        [np.random.RandomState(seed).randn(1, z_dim) for seed in seeds]).astype(np.float32)


def class_labels(G, count, class_idx, name="class_idx"):
    """[count, c_dim] one-hot labels, or None for an unconditional G; ValueError naming `name`."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError(f"{name} is given but the network is unconditional")
        return None
    if class_idx is None:
        raise ValueError(f"the network is conditional: give {name}, a class in [0, {G.c_dim})")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"{name}={class_idx} is outside [0, {G.c_dim}), the network's classes")
    labels = np.zeros([count, G.c_dim], np.float32)
    labels[:, class_idx] = 1
    return labels


def to_uint8(images):
    """float images in about [-1, 1] -> uint8 numpy array, quantized as the official scripts
    (the module's formula, in numpy)."""
    return np.clip(np.asarray(images) * 127.5 + 128, 0, 255).astype(np.uint8)


def to_uint8_tf(images):
    """float images in about [-1, 1] -> uint8 tensor: `to_uint8` in stock TensorFlow ops."""
    return tf.cast(tf.clip_by_value(images * 127.5 + 128, 0, 255), tf.uint8)


def generate_images(G, seeds, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const",
                    class_idx=None, batch_size=8):
    """uint8 images [len(seeds), R, R, C] for `seeds`, drawn in batches."""
    z = seed_latents(seeds, G.z_dim)
    c = class_labels(G, len(seeds), class_idx)
    images = []
    for start in range(0, len(seeds), batch_size):
        stop = start + batch_size
        batch = G(z[start:stop], None if c is None else c[start:stop],
                  truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                  noise_mode=noise_mode)
        images.append(to_uint8(batch))
    return np.concatenate(images)


def style_mix(G, row_seeds, col_seeds, styles, truncation_psi=1.0, noise_mode="const",
              class_idx=None):
    """The style-mixing figure of the paper, as uint8 images.

    Row i, column j takes the ws of row seed i with the ws listed in `styles`
    replaced by those of column seed j (the official style_mixing_example).

    Returns:
        (row images [R, ...], column images [C, ...], mixes [R, C, ...]).
    """
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise ValueError(f"styles {bad} are outside [0, {G.num_ws}) for this network")
    seeds = list(row_seeds) + list(col_seeds)
    z = seed_latents(seeds, G.z_dim)
    c = class_labels(G, len(seeds), class_idx)
    ws = G.mapping(z, c, truncation_psi=truncation_psi).numpy()  # [S, num_ws, w_dim]
    row_ws, col_ws = ws[:len(row_seeds)], ws[len(row_seeds):]
    mixed = np.repeat(row_ws[:, np.newaxis], len(col_seeds), axis=1)  # [R, C, num_ws, w_dim]
    mixed[:, :, styles] = col_ws[np.newaxis, :, styles]

    def draw(w):
        return to_uint8(G.synthesis(tf.constant(w), noise_mode=noise_mode))

    mixes = draw(mixed.reshape(-1, *ws.shape[1:]))
    return draw(row_ws), draw(col_ws), mixes.reshape(len(row_seeds), len(col_seeds), *mixes.shape[1:])


def truncation_sweep(G, seeds, psis, truncation_cutoff=None, noise_mode="const", class_idx=None):
    """uint8 images [len(seeds), len(psis), R, R, C]: each seed at each truncation psi.

    psi 0 draws the average image (w_avg) for every seed; psi 1 the untruncated one.
    """
    rows = [generate_images(G, seeds, psi, truncation_cutoff, noise_mode, class_idx)
            for psi in psis]
    return np.stack(rows, axis=1)


def image_grid(images, columns):
    """[N, H, W, C] uint8 -> one [rows * H, columns * W, C] image (blank cells black)."""
    images = np.asarray(images)
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.zeros([rows * height, columns * width, channels], np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
    return grid


def save_png(image, path):
    """Writes a uint8 [H, W, C] image (C = 1, 3 or 4) as PNG, aside first and then renamed."""
    image = np.asarray(image)
    if image.shape[-1] == 1:
        image = image[..., 0]
    atomic_write(path, lambda partial: Image.fromarray(image).save(partial, format="PNG"))
