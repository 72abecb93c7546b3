"""The layout of the stateless random keys (stylegan2_tf/seed_keys.py): as documented, no two
streams share a key, and the same arguments give the same key in and out of tf.function/XLA."""

import itertools

import numpy as np
import tensorflow as tf

from stylegan2_tf import seed_keys
from stylegan2_tf.seed_keys import (
    AUGMENT,
    DOMAIN_SHIFT,
    FLIP,
    LATENTS,
    MAX_PARALLEL,
    PHASE,
    PHASES,
    flip_key,
    latents_key,
    layer_noise_key,
    mixing_keys,
    path_length_keys,
    phase_key,
    shuffle_seed,
)

SEED = 7


def _tuple(key):
    return tuple(int(v) for v in np.asarray(key))


def test_keys_are_packed_as_documented():
    assert _tuple(flip_key(SEED, 3, 5)) == (SEED, (FLIP << DOMAIN_SHIFT) + (3 << 40) + 5)
    assert _tuple(latents_key(SEED, 9, 2)) == (SEED, (LATENTS << DOMAIN_SHIFT) + 9 * MAX_PARALLEL + 2)
    counter = ((11 * 4 + PHASES.index("d_main")) * 2 + 1) * MAX_PARALLEL + 3
    assert _tuple(phase_key(SEED, 11, "d_main", 3, part=1)) == (SEED, (PHASE << DOMAIN_SHIFT) + counter)
    assert (_tuple(phase_key(SEED, 11, "d_main", 3, part=1, domain=AUGMENT))
            == (SEED, (AUGMENT << DOMAIN_SHIFT) + counter))
    assert shuffle_seed(SEED, 2) == SEED + 2 * seed_keys.PIPELINE_SEED_STRIDE
    for key in (flip_key(SEED, 0, 0), latents_key(SEED, 0, 0), phase_key(SEED, 0, "g_main", 0)):
        assert key.dtype == tf.int64 and key.shape == (2,)


def test_no_two_draws_share_a_key():
    keys = []
    keys += [flip_key(SEED, p, i) for p, i in itertools.product(range(3), range(40))]
    keys += [latents_key(SEED, b, p) for b, p in itertools.product(range(40), range(3))]
    phase_keys = [phase_key(SEED, s, f, r, k) for s, f, r, k in
                  itertools.product(range(6), PHASES, range(3), range(2))]
    keys += phase_keys
    # Derived keys: style mixing (part 0), layer noise (part 1), path length (g_reg, part 1).
    for s, f, r in itertools.product(range(6), PHASES, range(3)):
        keys += mixing_keys(phase_key(SEED, s, f, r, 0))
        noise = phase_key(SEED, s, f, r, 1)
        if f == "g_reg":
            noise, projection = path_length_keys(noise)
            keys.append(projection)
        keys += [layer_noise_key(noise, res, up) for res in (4, 8, 16, 32) for up in (1, 2)]
    tuples = [_tuple(key) for key in keys]
    assert len(set(tuples)) == len(tuples)
    assert len({_tuple(phase_key(seed, 0, "g_main", 0)) for seed in range(5)}) == 5


def test_keys_are_the_same_in_tf_function_and_xla():
    def keys(step, replica, index):
        noise = phase_key(SEED, step, "g_main", replica, 1)
        return (phase_key(SEED, step, "g_reg", replica), latents_key(SEED, index, 1),
                flip_key(SEED, 1, index), layer_noise_key(noise, 8, 2), *mixing_keys(noise))

    args = (tf.constant(5, tf.int64), tf.constant(1, tf.int32), tf.constant(12, tf.int64))
    eager = [_tuple(k) for k in keys(*args)]
    for jit_compile in (False, True):
        traced = tf.function(keys, jit_compile=jit_compile)
        assert [_tuple(k) for k in traced(*args)] == eager
