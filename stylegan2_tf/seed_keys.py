"""The stateless random keys of training: every stream, its key layout, in one place.

TensorFlow's stateless random ops draw a function of a key, an integer tensor [2]. Every
random draw of a training run is such a function of the run's `seed` and of where the draw
happens (step, phase, replica, batch, dataset element), so a resumed run draws exactly what
an uninterrupted one would, whatever the number of replicas. Draws use RNG_ALG (Philox),
which gives the same numbers on CPUs and GPUs; XLA's normal sampler gives others.

Keys built here are int64 [2]:

    [seed, domain << DOMAIN_SHIFT | counter]

The domain (one per stream) keeps the streams apart: no two draws of a run share a key.

| stream | domain | counter | used in |
|--------|--------|---------|---------|
| x-flip of element i read by input pipeline p | FLIP | p << 40 \\| i | data/pipeline.py |
| latents z of global batch b, input pipeline p | LATENTS | b * MAX_PARALLEL + p | training/setup.py |
| part k of phase f of step s on replica r | PHASE | ((s * 4 + f) * 2 + k) * MAX_PARALLEL + r | training/trainer.py |
| augmentation of D's input k (0 reals, 1 fakes) in phase f of step s on replica r | AUGMENT | as PHASE | training/trainer.py |

Keys derived from a phase key (`stateless_split` / `stateless_fold_in`, a hash of the key):
  part 0 -> mixing_keys: (mixing cutoff, mixing coin, second latent)   training/loss.py
  part 1 -> G's synthesis noise of that phase: layer_noise_key per layer   networks/generator.py
         -> for "g_reg", path_length_keys: (synthesis noise, projection)  training/loss.py

The dataset's shuffle is a tf.data op with an integer seed, shuffle_seed(seed, pipeline).
Limits: MAX_PARALLEL (4096) replicas and input pipelines, 2^40 elements per pipeline.
"""

import tensorflow as tf

RNG_ALG = "philox"  # stateless draws: the same numbers on CPU and GPU
DOMAIN_SHIFT = 56
FLIP, LATENTS, PHASE, AUGMENT = 1, 2, 3, 4
MAX_PARALLEL = 1 << 12  # room for this many replicas and input pipelines
PHASES = ("g_main", "g_reg", "d_main", "d_reg")
PARTS = 2  # per phase: 0 style mixing, 1 synthesis noise (path length for g_reg); augmentation:
# 0 reals, 1 fakes
PIPELINE_SEED_STRIDE = 1_000_003  # tf.data shuffle seed of input pipeline p: seed + p * stride


def _key(seed, domain, counter):
    counter = tf.cast(counter, tf.int64) + (domain << DOMAIN_SHIFT)
    return tf.stack([tf.cast(seed, tf.int64), counter])


def shuffle_seed(seed, pipeline):
    """The tf.data shuffle seed of input pipeline `pipeline` (each shuffles its own share)."""
    return seed + PIPELINE_SEED_STRIDE * pipeline


def flip_key(seed, pipeline, element):
    """Key of the x-flip of the `element`-th record (int64 tensor) read by input pipeline `pipeline`."""
    return _key(seed, FLIP, (pipeline << 40) + tf.cast(element, tf.int64))


def latents_key(seed, batch, pipeline):
    """Key of the latents z of global batch `batch` (int64 tensor) for input pipeline `pipeline`."""
    return _key(seed, LATENTS, tf.cast(batch, tf.int64) * MAX_PARALLEL + pipeline)


def phase_key(seed, step, phase, replica, part=0, domain=PHASE):
    """Key of `part` of training phase `phase` (a name of PHASES) at `step` on `replica` (tensors or
    ints); domain AUGMENT: the key of the augmentation of D's reals (part 0) or fakes (part 1)."""
    counter = (tf.cast(step, tf.int64) * len(PHASES) + PHASES.index(phase)) * PARTS + part
    return _key(seed, domain, counter * MAX_PARALLEL + tf.cast(replica, tf.int64))


def mixing_keys(key):
    """(cutoff, coin, second latent) keys of style mixing, from a phase's part-0 key."""
    return tf.unstack(tf.random.experimental.stateless_split(key, 3, alg=RNG_ALG))


def path_length_keys(key):
    """(synthesis noise, projection) keys of the path-length penalty, from g_reg's part-1 key."""
    return tf.unstack(tf.random.experimental.stateless_split(key, 2, alg=RNG_ALG))


def layer_noise_key(noise_key, resolution, up):
    """Key of the noise of one synthesis layer (each layer of a network: its own resolution and up)."""
    return tf.random.experimental.stateless_fold_in(noise_key, 2 * resolution + up, alg=RNG_ALG)
