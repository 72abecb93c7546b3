"""Perceptual path length: how much the image changes for a small step in latent space.

Karras et al. 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks" (arXiv 1812.04948), sec. 4.1; semantics of NVlabs/stylegan2
and stylegan2-ada-pytorch perceptual_path_length.py: ppl_wend (space "w",
sampling "end"), ppl_wfull, ppl_zend, ppl_zfull (crop=True there, crop=False in
ada's ppl2_wend), 50k samples, epsilon 1e-4, LPIPS (VGG16) as the distance.
"""

import numpy as np
import tensorflow as tf

from stylegan2_tf.metrics.feature_nets import downsample_for_lpips

SPACES = ("z", "w")
SAMPLINGS = ("end", "full")


def slerp(a, b, t):
    """Spherical interpolation of directions: a, b [N, D], t [N, 1] -> unit vectors [N, D].

    Interpolates between a / |a| and b / |b| along the great circle; t may leave [0, 1].
    """
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True), -1.0, 1.0)  # [N, 1]
    angle = t * np.arccos(cos)
    ortho = b - cos * a
    ortho = ortho / np.linalg.norm(ortho, axis=-1, keepdims=True)
    out = a * np.cos(angle) + ortho * np.sin(angle)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def prepare_for_distance(images, crop=False):
    """What the reference does to both endpoints before LPIPS: float32 [N, R, R, C] -> [N, S, S, 3 or C].

    1. crop=True keeps rows [3R/8, 7R/8) and columns [R/4, 3R/4) (the face in FFHQ).
    2. An image larger than 256 is box-filtered by factor = size // 256 (feature_nets.
       downsample_for_lpips, as NVlabs/stylegan2; the size after the crop).
    3. A single channel is repeated to three.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if crop:
        c = images.shape[1] // 8
        images = images[:, c * 3:c * 7, c * 2:c * 6, :]
    images = downsample_for_lpips(images)
    if images.shape[3] == 1:
        images = tf.tile(images, [1, 1, 1, 3])
    return images


def _check_options(G, space, sampling, epsilon, num_samples, batch_size, crop, labels):
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}. Received: space={space!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}. Received: sampling={sampling!r}")
    if not float(epsilon) > 0:
        raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon!r}")
    if int(num_samples) < 1 or int(batch_size) < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1. Received: {num_samples!r}, "
                         f"{batch_size!r}")
    if crop and G.img_resolution < 8:
        raise ValueError(f"crop needs images of at least 8x8. Received: {G.img_resolution}")
    if getattr(G.synthesis, "num_fp16_res", 0) > 0:
        raise ValueError(f"G computes {G.synthesis.num_fp16_res} resolutions in float16, too coarse for "
                         f"steps of epsilon: pass a float32 copy (num_fp16_res=0, same weights)")
    if G.z_dim < 1:
        raise ValueError(f"PPL interpolates latents z: the generator has z_dim={G.z_dim}")
    if G.c_dim == 0:
        if labels is not None and np.shape(labels)[1:] != (0,):
            raise ValueError(f"the generator is unconditional; labels must be None or [M, 0]. "
                             f"Received: shape {np.shape(labels)}")
        return None
    if labels is None:
        raise ValueError(f"the generator is conditional (c_dim={G.c_dim}): pass labels [M, {G.c_dim}] "
                         f"to draw from (e.g. the dataset's)")
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2 or labels.shape[0] < 1 or labels.shape[1] != G.c_dim:
        raise ValueError(f"labels must be [M >= 1, {G.c_dim}]. Received: shape {labels.shape}")
    return labels


def path_length_distances(G, distance, num_samples, epsilon=1e-4, space="w", sampling="end", crop=False,
                          batch_size=8, seed=0, progress=None, labels=None):
    """Perceptual distances between the images at t and t + epsilon of random latent paths, / epsilon^2.

    Per batch of b = min(batch_size, samples left), drawn from one
    np.random.RandomState(seed) in this order:
      1. z [2b, z_dim] standard normal: z0 = z[:b], z1 = z[b:];
      2. t [b] uniform in [0, 1), multiplied by 0 for sampling="end";
      3. for a conditional G, b row indices into `labels` (uniform), the same c for both ends;
      4. a noise seed, 2 ints in [0, 2^30).
    space="w": w0, w1 = G.mapping(z0, c), G.mapping(z1, c) (psi 1); ends lerp(w0, w1, t)
    and lerp(w0, w1, t + epsilon). space="z": ends slerp(z0, z1, t), slerp(z0, z1, t + epsilon)
    mapped to w. Both ends are synthesized with noise_mode="random" from the same noise
    seed (identical noise), `prepare_for_distance`d (crop, downsample above 256, gray
    to RGB), and compared with `distance`.

    Args:
        G: a Generator (z_dim, c_dim, img_resolution, mapping, synthesis).
        distance: callable(img0, img1) on float32 tf.Tensors [b, S, S, 3] in about [-1, 1]
            returning [b] distances (LPIPS for the metric).
        num_samples: number of paths, int >= 1.
        epsilon: step along the path (reference: 1e-4).
        space: "w" (lerp) or "z" (slerp).
        sampling: "end" (t = 0) or "full" (t uniform).
        crop: keep the central face region (FFHQ).
        batch_size: paths per generator call.
        seed: the result is a function of the network, the arguments and the seed.
        progress: optional callable(count of samples done), called after each batch.
        labels: [M, c_dim] labels to draw from; required iff G.c_dim > 0.

    Returns:
        float64 numpy [num_samples]: distance / epsilon^2.
    """
    labels = _check_options(G, space, sampling, epsilon, num_samples, batch_size, crop, labels)
    epsilon = float(epsilon)

    rng = np.random.RandomState(seed)
    results = []
    done = 0
    while done < int(num_samples):
        b = min(int(batch_size), int(num_samples) - done)
        z = rng.standard_normal([2 * b, G.z_dim])
        t = rng.uniform(size=b) * (1.0 if sampling == "full" else 0.0)
        c = None
        if labels is not None:
            c = tf.constant(np.tile(labels[rng.randint(labels.shape[0], size=b)], [2, 1]))
        noise_seed = tf.constant(rng.randint(1 << 30, size=2), tf.int32)
        z0, z1 = z[:b], z[b:]
        if space == "w":
            w0, w1 = tf.split(G.mapping(tf.constant(z, tf.float32), c), 2, axis=0)  # [b, num_ws, w_dim]
            t = tf.constant(t[:, None, None], tf.float32)
            ends = [w0 + (w1 - w0) * t, w0 + (w1 - w0) * (t + epsilon)]
        else:
            z01 = np.concatenate([slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + epsilon)])
            ends = tf.split(G.mapping(tf.constant(z01, tf.float32), c), 2, axis=0)
        img0, img1 = [prepare_for_distance(G.synthesis(w, noise_mode="random", noise_seed=noise_seed), crop)
                      for w in ends]
        d = np.asarray(distance(img0, img1), dtype=np.float64)
        if d.shape != (b,):
            raise ValueError(f"distance must return [{b}] values. Received: shape {d.shape}")
        results.append(d / epsilon ** 2)
        done += b
        if progress is not None:
            progress(done)
    return np.concatenate(results)


def perceptual_path_length(distances):
    """PPL: the mean of the distances between their 1st ('lower') and 99th ('higher') percentiles.

    distances: [N >= 1] from `path_length_distances`. Returns a float, NaN when a
    distance is not finite (a diverged network).
    """
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 1 or distances.size < 1:
        raise ValueError(f"distances must be a vector [N >= 1]. Received: shape {distances.shape}")
    if not np.all(np.isfinite(distances)):
        return float("nan")
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())
