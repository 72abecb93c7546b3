"""One StyleGAN2 training iteration on a tf.distribute strategy.

An iteration runs the phases of the official schedule: G main every minibatch,
the path-length regularization of G every `g_reg_interval` minibatches, D main
every minibatch and R1 every `d_reg_interval` (lazy regularization, with the
regularization losses multiplied by their interval and the Adam learning rate
and betas of each network corrected by interval / (interval + 1)), then the
G EMA update. Every phase is one tf.function around `strategy.run`; losses are
summed per replica and divided by the global batch, so gradients all-reduce to
the batch mean. A phase whose gradients are not finite on any replica is not
applied and is counted in `skipped_steps`. Every random draw (style mixing,
synthesis noise, path-length projections, augmentation) is stateless, keyed by
(seed, step, phase, replica) as stylegan2_tf.seed_keys lays out, so a resumed run
continues exactly as an uninterrupted one.

D sees its inputs through the adaptive augmentation of training/ada.py (in all four
phases, as stylegan2-ada); Freeze-D (Mo et al. 2020, arXiv 2002.10964) leaves D's first
`freeze_d` block layers (Discriminator.block_layers) as they are.
"""

import dataclasses

import keras
import tensorflow as tf

from stylegan2_tf.ops.native import current_impl, impl_under_xla, use_impl
from stylegan2_tf.seed_keys import AUGMENT, PHASE, PHASES, phase_key
from stylegan2_tf.training import loss as losses
from stylegan2_tf.training.ada import AdaptiveAugment


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of the loss, the lazy regularization, Adam and the G EMA: the one home
    of their defaults (the paper's; presets and flags give values, not defaults).

    batch: global minibatch (images per iteration over all replicas).
    r1_gamma: R1 weight; pl_weight, pl_decay, pl_batch_shrink: path-length penalty.
    ema_kimg: G EMA half-life in thousands of images; ema_rampup: None, or the
        fraction of images seen that the half-life may not exceed.
    seed: every random draw of training is a function of it (stylegan2_tf.seed_keys).
    xla: compile each phase with XLA (jit_compile); the phases then trace with the
        reference ops, which XLA can compile (impl "custom" is refused).
    augment: "ada", "fixed" or "noaug" (training/ada.py); augment_p: the fixed p, or ada's
        initial p; augpipe: the AugmentPipe pipeline's name; ada_target, ada_interval,
        ada_kimg: the adjustment of p (stylegan2-ada-pytorch's defaults).
    freeze_d: D's first layers (from the image resolution down) not trained (Freeze-D).
    """

    batch: int = 32
    r1_gamma: float = 10.0
    pl_weight: float = 2.0
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing_prob: float = 0.9
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    lrate: float = 0.002
    betas: tuple = (0.0, 0.99)
    epsilon: float = 1e-8
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    seed: int = 0
    xla: bool = False
    augment: str = "ada"
    augment_p: float = 0.0
    augpipe: str = "bgc"
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    freeze_d: int = 0


def check_batch(batch, replicas, pl_batch_shrink, mbstd_group_size):
    """Raises ValueError, saying which batches work, unless `batch` splits into `replicas` equal
    shares that pl_batch_shrink divides and whose minibatch-stddev groups of
    min(mbstd_group_size, share) divide them too."""
    def works(candidate):
        share = candidate // replicas
        group = min(mbstd_group_size or share, share)
        return candidate % replicas == 0 and share % pl_batch_shrink == 0 and share % group == 0

    if not works(batch):
        devices = f"{replicas} devices" if replicas > 1 else "one device"
        examples = [b for b in range(replicas, 64 * replicas * pl_batch_shrink + 1, replicas)
                    if works(b)][:4]
        raise ValueError(
            f"batch {batch} does not work on {devices}: each device takes an equal share, the "
            f"path-length penalty uses 1/{pl_batch_shrink} of it and the discriminator compares "
            f"groups of up to {mbstd_group_size} images within it; batches that work: "
            f"{', '.join(map(str, examples))}, ...")


def trained_variables(D, freeze_d):
    """D's trainable variables less those of its first `freeze_d` block layers (Freeze-D)."""
    layers = D.block_layers
    if not 0 <= freeze_d <= len(layers):
        raise ValueError(f"--freezed={freeze_d}: this discriminator has {len(layers)} layers to freeze "
                         f"(from the image resolution down), give 0 to {len(layers)}")
    frozen = {id(v) for layer in layers[:freeze_d] for v in layer.trainable_variables}
    return [v for v in D.trainable_variables if id(v) not in frozen]


def lazy_adam(config, reg_interval):
    """Adam with the lazy-regularization correction of learning rate and betas."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    beta_1, beta_2 = config.betas
    return keras.optimizers.Adam(learning_rate=config.lrate * ratio, beta_1=beta_1 ** ratio,
                                 beta_2=beta_2 ** ratio, epsilon=config.epsilon)


class Trainer:
    """Trains G and D and keeps G_ema; models must have been built in `strategy.scope()`."""

    def __init__(self, G, D, G_ema, config, strategy=None):
        self.G, self.D, self.G_ema, self.config = G, D, G_ema, config
        self.strategy = strategy or tf.distribute.get_strategy()
        replicas = self.strategy.num_replicas_in_sync
        check_batch(config.batch, replicas, config.pl_batch_shrink, D.mbstd_group_size)
        self.D_variables = trained_variables(D, config.freeze_d)
        self.ada = AdaptiveAugment(config, self.strategy)
        with self.strategy.scope():
            self.G_opt = lazy_adam(config, config.g_reg_interval)
            self.D_opt = lazy_adam(config, config.d_reg_interval)
            self.G_opt.build(G.trainable_variables)
            self.D_opt.build(self.D_variables)
            mean = tf.VariableAggregation.MEAN
            self.pl_mean = tf.Variable(0.0, trainable=False, aggregation=mean, name="pl_mean")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA, name="step")
            self.images_seen = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                                           name="images_seen")
            self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                             aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                                             name="skipped_steps")
        # tf.function around strategy.run (not inside it: apply_gradients all-reduces).
        replica_steps = {"g_main": self._g_main_replica, "g_reg": self._g_reg_replica,
                         "d_main": self._d_main_replica, "d_reg": self._d_reg_replica}
        self._phases = {name: tf.function(self._distributed(replica_steps[name]), jit_compile=config.xla)
                        for name in PHASES}
        self._ema = tf.function(self._update_ema)

    def checkpoint_items(self):
        """What a tf.train.Checkpoint of the training state holds."""
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema, "G_opt": self.G_opt,
                "D_opt": self.D_opt, "pl_mean": self.pl_mean, "step": self.step,
                "images_seen": self.images_seen, "skipped_steps": self.skipped_steps,
                **self.ada.checkpoint_items()}

    def train_step(self, real_images, real_c, z):
        """One iteration on a distributed batch; returns {phase: summed loss} as floats.

        real_images [N, R, R, C], real_c [N, c_dim] and the latents z [N, z_dim]
        of the fakes come from the input pipeline (z too, so that a run is
        reproducible and independent of how the batch is split over replicas).
        """
        step = int(self.step.numpy())
        args = (real_images, real_c, z)
        results = {"g_main": self.run_phase("g_main", *args)}
        if self.config.pl_weight > 0 and step % self.config.g_reg_interval == 0:
            results["g_reg"] = self.run_phase("g_reg", *args)
        results["d_main"] = self.run_phase("d_main", *args)
        if self.config.r1_gamma > 0 and step % self.config.d_reg_interval == 0:
            results["d_reg"] = self.run_phase("d_reg", *args)
        self.images_seen.assign_add(self.config.batch)
        self.update_ema(self.images_seen.numpy())
        self.step.assign_add(1)
        self.ada.adjust(step + 1)
        return results

    def run_phase(self, phase, *args):
        """Runs one phase ("g_main", "g_reg", "d_main", "d_reg") on a distributed batch
        (real_images, real_c, z); returns its loss summed over replicas, as a float. The D
        phases add the signs of D's logits on reals to the augmentation's r_t."""
        with use_impl(impl_under_xla(current_impl()) if self.config.xla else None):
            loss, sign_sum = self._phases[phase](*args)
        if phase in ("d_main", "d_reg"):
            self.ada.record(float(sign_sum), self.config.batch)
        return float(loss)

    def update_ema(self, images_seen):
        """G_ema <- lerp(G, G_ema, beta) for the half-life at `images_seen` images (see TrainingConfig)."""
        self._ema(tf.constant(float(images_seen)))

    def _distributed(self, replica_fn):
        """fn(*args) running replica_fn on every replica and summing what they return."""
        def run(*args):
            per_replica = self.strategy.run(replica_fn, args=args)
            return tf.nest.map_structure(
                lambda value: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
                per_replica)
        return run

    # Phases, in replica context. Each returns this replica's share of the loss and the sum of
    # the signs of D's logits on reals (0 in the G phases).

    def _phase_key(self, phase, part=0, domain=PHASE):
        """The key of `part` of `phase` at this step on this replica (seed_keys.phase_key)."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return phase_key(self.config.seed, self.step, phase, replica, part, domain)

    def _augment(self, phase, part):
        """The augmentation of D's reals (part 0) or fakes (part 1) in `phase`, or None."""
        return self.ada.augmenter(self._phase_key(phase, part, AUGMENT))

    def _fake_inputs(self, z, real_c, shrink=1):
        """The first 1/shrink of z, and labels for the fakes: the real labels, rolled by one."""
        n = tf.shape(z)[0] // shrink
        c = tf.roll(real_c, 1, axis=0)[:n] if self.G.c_dim > 0 else None
        return z[:n], c

    def _labels(self, real_c):
        return real_c if self.G.c_dim > 0 else None

    def _g_main_replica(self, real_images, real_c, z):
        z, c = self._fake_inputs(z, real_c)
        with tf.GradientTape() as tape:
            ws = losses.mixed_ws(self.G, z, c, self._phase_key("g_main"), self.config.style_mixing_prob)
            images = self.G.synthesis(ws, noise_mode="random", noise_seed=self._phase_key("g_main", 1))
            per_sample = losses.g_main_loss(self.D, images, c, self._augment("g_main", 1))
            loss = tf.reduce_sum(per_sample) / self.config.batch
        self._apply(tape, loss, self.G.trainable_variables, self.G_opt)
        return loss, tf.zeros([])

    def _g_reg_replica(self, real_images, real_c, z):
        z, c = self._fake_inputs(z, real_c, self.config.pl_batch_shrink)
        with tf.GradientTape() as tape:
            ws = losses.mixed_ws(self.G, z, c, self._phase_key("g_reg"), self.config.style_mixing_prob)
            penalty, new_mean = losses.path_length_penalty(
                self.G, ws, self.pl_mean, self.config.pl_weight, self.config.pl_decay,
                self._phase_key("g_reg", 1))
            batch = self.config.batch // self.config.pl_batch_shrink
            loss = tf.reduce_sum(penalty) / batch * self.config.g_reg_interval
        self.pl_mean.assign(new_mean)
        self._apply(tape, loss, self.G.trainable_variables, self.G_opt)
        return loss, tf.zeros([])

    def _d_main_replica(self, real_images, real_c, z):
        z, c = self._fake_inputs(z, real_c)
        ws = losses.mixed_ws(self.G, z, c, self._phase_key("d_main"), self.config.style_mixing_prob)
        fake_images = tf.stop_gradient(
            self.G.synthesis(ws, noise_mode="random", noise_seed=self._phase_key("d_main", 1)))
        with tf.GradientTape() as tape:
            per_sample, real_logits = losses.d_main_loss(
                self.D, real_images, fake_images, self._labels(real_c), c,
                self._augment("d_main", 0), self._augment("d_main", 1))
            loss = tf.reduce_sum(per_sample) / self.config.batch
        self._apply(tape, loss, self.D_variables, self.D_opt)
        return loss, tf.reduce_sum(tf.sign(real_logits))

    def _d_reg_replica(self, real_images, real_c, z):
        with tf.GradientTape() as tape:
            penalty, real_logits = losses.r1_penalty(self.D, real_images, self._labels(real_c),
                                                     self.config.r1_gamma, self._augment("d_reg", 0))
            loss = tf.reduce_sum(penalty) / self.config.batch * self.config.d_reg_interval
        self._apply(tape, loss, self.D_variables, self.D_opt)
        return loss, tf.reduce_sum(tf.sign(real_logits))

    def _apply(self, tape, loss, variables, optimizer):
        """Applies the gradients of `variables`; zeros them all when any replica's are not finite.

        With StyleGAN2's Adam beta1 = 0, zero gradients leave the weights as they
        are (only Adam's second moments decay by one step); a synchronization
        point cannot sit inside tf.cond under a distribution strategy.
        """
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        bad = 1.0 - tf.cast(tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads]),
                            tf.float32)
        context = tf.distribute.get_replica_context()
        all_finite = context.all_reduce(tf.distribute.ReduceOp.SUM, bad) == 0
        grads = [tf.where(all_finite, g, tf.zeros_like(g)) for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        self.skipped_steps.assign_add(1 - tf.cast(all_finite, tf.int64))

    # G EMA, in cross-replica context.

    def _update_ema(self, images_seen):
        config = self.config
        ema_images = config.ema_kimg * 1000.0
        if config.ema_rampup is not None:
            ema_images = tf.minimum(ema_images, images_seen * config.ema_rampup)
        beta = tf.pow(0.5, config.batch / tf.maximum(ema_images, 1e-8))
        for ema, current in zip(self.G_ema.trainable_variables, self.G.trainable_variables):
            ema.assign(current + (ema - current) * beta)
        for ema, current in zip(self.G_ema.non_trainable_variables, self.G.non_trainable_variables):
            ema.assign(current)
