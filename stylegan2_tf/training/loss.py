"""StyleGAN2 losses: non-saturating logistic loss, R1 and path-length penalties.

Karras et al. 2020, sec. 3.2 (path length) and appendix B; semantics of the
official training/loss.py and stylegan2-ada-pytorch's StyleGAN2Loss phases:
  G main: softplus(-D(G(z)))                   G reg: pl_weight * (|J^T y| - a)^2
  D main: softplus(D(G(z))) + softplus(-D(x))   D reg: gamma / 2 * |grad_x D(x)|^2
Each function returns per-sample losses [N]; the trainer sums them and divides
by the global batch, so replicas add up to the mean.
"""

import tensorflow as tf

from stylegan2_tf.seed_keys import RNG_ALG, mixing_keys, path_length_keys


def mixed_ws(G, z, c, seed, style_mixing_prob=0.0):
    """ws [N, num_ws, w_dim] for latents z, with style-mixing regularization.

    Every call is a training-mode mapping: it updates G's w_avg from the ws of z
    (as both references do in each phase that runs G), not from the second latent.

    With probability style_mixing_prob, the ws from a random cutoff in
    [1, num_ws) on come from a second latent (official style mixing); the
    draws are a function of the key `seed` (seed_keys.mixing_keys).
    """
    ws = G.mapping(z, c, update_w_avg=True)
    if style_mixing_prob > 0:
        num_ws = G.num_ws
        cutoff_seed, mix_seed, z_seed = mixing_keys(seed)
        cutoff = tf.random.stateless_uniform([], cutoff_seed, 1, num_ws, dtype=tf.int32, alg=RNG_ALG)
        mix = tf.random.stateless_uniform([], mix_seed, alg=RNG_ALG) < style_mixing_prob
        cutoff = tf.where(mix, cutoff, num_ws)
        z2 = tf.random.stateless_normal(tf.shape(z), z_seed, alg=RNG_ALG)
        ws2 = G.mapping(z2, c)
        ws = tf.where((tf.range(num_ws) < cutoff)[tf.newaxis, :, tf.newaxis], ws, ws2)
    return ws


def d_logits(D, images, c, augment=None):
    """D's logits [N] of images [N, H, W, C], shown through `augment` (images -> images,
    the adaptive augmentation of D's inputs) when one is given."""
    if augment is not None:
        images = augment(images)
    return tf.squeeze(D(images, c), axis=1)


def g_main_loss(D, fake_images, c, augment=None):
    """softplus(-D(G(z))) per sample [N]: the non-saturating generator loss."""
    return tf.nn.softplus(-d_logits(D, fake_images, c, augment))


def d_main_loss(D, real_images, fake_images, c_real, c_fake, augment_real=None, augment_fake=None):
    """(softplus(D(G(z))) + softplus(-D(x)) per sample [N], the real logits D(x) [N])."""
    fake = d_logits(D, fake_images, c_fake, augment_fake)
    real = d_logits(D, real_images, c_real, augment_real)
    return tf.nn.softplus(fake) + tf.nn.softplus(-real), real


def r1_penalty(D, real_images, c, gamma, augment=None):
    """(gamma / 2 * |d D(x) / d x|^2 per sample [N], the real logits D(x) [N]); differentiable
    to second order. With `augment`, D sees augment(x) and the gradient is still taken
    with respect to the unaugmented x (as stylegan2-ada)."""
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        logits = d_logits(D, real_images, c, augment)
        logits_sum = tf.reduce_sum(logits)
    grads = tape.gradient(logits_sum, real_images)
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) * (gamma / 2), logits


def path_length_penalty(G, ws, pl_mean, pl_weight, pl_decay, seed):
    """Path-length penalty per sample [N] and the updated running mean a.

    |J_w^T y| for ws [N, num_ws, w_dim] with y ~ N(0, 1) / sqrt(H W), averaged
    over the ws; the penalty is pl_weight * (length - a)^2 with
    a = lerp(pl_mean, mean(length), pl_decay). As in both references, the
    gradient flows through a (only the stored copy is detached): the caller
    stores the returned mean (the official pl_mean_var) without gradient.
    Noise is a function of the key `seed` (seed_keys.path_length_keys).
    """
    noise_seed, projection_seed = path_length_keys(seed)
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = G.synthesis(ws, noise_mode="random", noise_seed=noise_seed)
        shape = tf.shape(images)
        noise = tf.random.stateless_normal(shape, projection_seed, dtype=images.dtype,
                                           alg=RNG_ALG) / tf.sqrt(tf.cast(shape[1] * shape[2], images.dtype))
        projected = tf.reduce_sum(images * noise)
    grads = tape.gradient(projected, ws)  # [N, num_ws, w_dim]
    lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))  # [N]
    new_mean = pl_mean + (tf.reduce_mean(lengths) - pl_mean) * pl_decay
    penalty = tf.square(lengths - new_mean) * pl_weight
    return penalty, new_mean
