"""Projecting images into a generator's latent space (Karras et al. 2020, sec. 5).

The projector looks for the w (and the per-layer noise maps) whose image is
closest to a target image under a distance, normally LPIPS, with the paper's
procedure (the official NVlabs/stylegan2 `projector.py`, kept by
stylegan2-ada-pytorch):

1. Estimate w_avg and w_std from 10000 mapped z (`np.random.RandomState(123)`,
   so the start does not depend on the seed); w_std is the root mean squared
   distance of the samples to w_avg. Start from w = w_avg, one w for every
   layer ("W" space; `w_plus=True` optimizes one w per layer instead), and from
   N(0, 1) noise maps drawn from the seed.
2. Each step t = step / num_steps: add Gaussian noise of strength
   w_std * 0.05 * max(0, 1 - t / 0.75)^2 to w, draw the image with the noise
   maps, and minimize distance(image, target) + 1e5 * noise regularization
   with Adam (betas 0.9, 0.999) at learning rate 0.1 * ramp, where the ramp
   rises linearly over the first 5% of the steps and falls as a half cosine
   over the last 25%.
3. After each step renormalize every noise map to zero mean and unit variance.

Images larger than 256 pixels are box-filtered down to 256 before the
distance, target and projection alike, as PPL does before LPIPS
(`feature_nets.downsample_for_lpips`; VGG-based LPIPS was made for ~224 pixels).

The generator's own noise buffers (`SynthesisLayer.noise_const`) are the only
way to feed noise maps into `G.synthesis`. The projector therefore keeps its
noise maps in variables of its own and, while it runs, assigns them into
those buffers before each image is drawn; the buffers' previous values are
restored in a `finally`, so G is unchanged afterwards (do not use G from
another thread while a projection runs). The gradient of a noise map is the
gradient with respect to its buffer (watched by the tape) plus that of the
penalty. `synthesize(G, ws, noises)` draws images with given noise maps the
same way.

    projector = Projector(G, load_lpips())            # w statistics, compiled step
    result = projector.project(image, num_steps=1000, seed=0)
    img = synthesize(G, result.ws, result.noises)     # == result.image[None]

`project(G, target, distance, num_steps, ...)` does both for one target.
"""

import contextlib
import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from PIL import Image

from stylegan2_tf.files import atomic_write
from stylegan2_tf.inference import class_labels
from stylegan2_tf.metrics.feature_nets import downsample_for_lpips, lpips_factor

W_AVG_SEED = 123


def pixel_distance(img0, img1):
    """Mean squared difference per image: float images [N, H, W, C] -> [N] float32."""
    diff = tf.cast(img0, tf.float32) - tf.cast(img1, tf.float32)
    return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])


def noise_layers(G):
    """{"b8/conv0": SynthesisLayer, ...}: the layers with a noise input, lowest resolution first.

    The order is that of the official `noise0, noise1, ...` inputs.
    """
    layers = {}
    for block in G.synthesis.blocks:
        for layer in (block.conv0, block.conv1):
            if layer is not None and layer.use_noise:
                layers[f"{block.name}/{layer.name}"] = layer
    return layers


@contextlib.contextmanager
def noise_buffers(G, noises):
    """Within the block, G's `noise_const` buffers hold `noises`; restored on exit.

    Args:
        G: a Generator.
        noises: {name: array [1, r, r, 1]} for some or all of `noise_layers(G)`.
    """
    layers = noise_layers(G)
    unknown = sorted(set(noises) - set(layers))
    if unknown:
        raise ValueError(f"noise maps {unknown} match no noise input of the network; "
                         f"it has {list(layers)}")
    saved = {name: layers[name].noise_const.numpy() for name in noises}
    try:
        for name, value in noises.items():
            buffer = layers[name].noise_const
            value = np.asarray(value, np.float32)
            if value.shape != tuple(buffer.shape):
                raise ValueError(f"noise map {name}: expected shape {tuple(buffer.shape)}, "
                                 f"got {value.shape}")
            buffer.assign(value)
        yield
    finally:
        for name, value in saved.items():
            layers[name].noise_const.assign(value)


def synthesize(G, ws, noises):
    """G.synthesis(ws, noise_mode="const") with the noise maps `noises` ({name: [1, r, r, 1]})."""
    with noise_buffers(G, noises):
        return G.synthesis(tf.convert_to_tensor(ws, tf.float32), noise_mode="const").numpy()


def noise_regularization(noises):
    """The paper's noise penalty: squared autocorrelations at one pixel shift, at every scale.

    For each map [1, r, r, 1]: add mean(n * roll(n, 1, x))^2 + mean(n * roll(n, 1, y))^2
    (rolls wrap around), then average 2x2 pixels and repeat while the map is larger
    than 8x8. Returns the sum over maps and scales, a float32 scalar.
    """
    total = tf.constant(0.0, tf.float32)
    for noise in noises:
        x = tf.convert_to_tensor(noise, tf.float32)  # [1, r, r, 1]
        while True:
            total += tf.square(tf.reduce_mean(x * tf.roll(x, shift=1, axis=2)))
            total += tf.square(tf.reduce_mean(x * tf.roll(x, shift=1, axis=1)))
            if x.shape[1] <= 8:
                break
            x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")
    return total


def w_statistics(G, c=None, num_samples=10000, seed=W_AVG_SEED, batch_size=1000):
    """(w_avg [w_dim] float32, w_std float) of `num_samples` ws mapped from z ~ RandomState(seed).

    c: one label [1, c_dim] for a conditional network (used for every sample), else None.
    w_std = sqrt(sum((w - w_avg)^2) / num_samples), summed over samples and features.
    """
    z = np.random.RandomState(seed).randn(num_samples, G.z_dim).astype(np.float32)
    ws = []
    for start in range(0, num_samples, batch_size):
        chunk = z[start:start + batch_size]
        labels = None if c is None else np.repeat(np.asarray(c, np.float32), len(chunk), axis=0)
        ws.append(G.mapping(chunk, labels).numpy()[:, 0].astype(np.float64))  # [B, w_dim]
    ws = np.concatenate(ws)
    w_avg = ws.mean(axis=0)
    w_std = float(np.sqrt(np.sum(np.square(ws - w_avg)) / num_samples))
    return w_avg.astype(np.float32), w_std


def prepare_target(image, resolution, channels=3):
    """A target image at the network's size: float32 [resolution, resolution, channels] in [-1, 1].

    As stylegan2-ada-pytorch's projector: channels converted as Pillow does
    (`convert("RGB")` or `convert("L")`: gray is repeated to RGB, alpha is dropped,
    RGB becomes gray by ITU-R 601-2 luma), the centered square of side min(H, W)
    cropped, then a Lanczos resize to `resolution`.

    Args:
        image: a PIL image; uint8 array [H, W] or [H, W, C] (values 0-255); or
            float array [H, W] or [H, W, C] with values in [-1, 1]. C = 1, 3 or 4.
        resolution: side of the result.
        channels: 3 (RGB) or 1 (gray).
    """
    if channels not in (1, 3):
        raise ValueError(f"the projector supports networks with 1 or 3 channels, not {channels}")
    mode = "RGB" if channels == 3 else "L"
    if isinstance(image, Image.Image):
        if image.mode in ("I", "F") or image.mode.startswith("I;"):
            raise ValueError(f"target image: {image.mode!r} images (16 or 32 bits per pixel) are "
                             "not supported; save the image with 8 bits per channel")
        image = image.convert(mode)
    else:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] in (1, 3, 4):
            pass
        elif image.ndim == 2:
            image = image[..., np.newaxis]
        else:
            raise ValueError(f"target image: expected [H, W] or [H, W, 1, 3 or 4], got {image.shape}")
        if image.dtype == np.uint8:
            image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert(mode)
        elif np.issubdtype(image.dtype, np.floating):
            return _prepare_float(image.astype(np.float32), resolution, channels)
        else:
            raise ValueError(f"target image: expected uint8 or float values, got {image.dtype}")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, np.float32).reshape(resolution, resolution, channels)
    return array / 127.5 - 1


def _prepare_float(image, resolution, channels):
    """prepare_target for float [H, W, C] in [-1, 1]: same conversion, crop and resize, in float."""
    if not np.all(np.isfinite(image)):
        raise ValueError("target image has non-finite values")
    image = image[..., :3] if image.shape[-1] == 4 else image
    if channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif channels == 1 and image.shape[-1] == 3:
        image = image @ np.array([0.299, 0.587, 0.114], np.float32)[:, np.newaxis]
    height, width = image.shape[:2]
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    image = image[top:top + side, left:left + side]
    if side != resolution:  # per channel, as 32-bit float images ("F")
        image = np.stack([np.asarray(Image.fromarray(image[..., i], "F").resize(
            (resolution, resolution), Image.LANCZOS)) for i in range(channels)], axis=-1)
    return np.ascontiguousarray(image, np.float32)


def schedule(step, num_steps, w_std, initial_learning_rate=0.1, lr_rampup_length=0.05,
             lr_rampdown_length=0.25, initial_noise_factor=0.05, noise_ramp_length=0.75):
    """(learning rate, w noise strength) for 0-based `step` of `num_steps` (the official ramps)."""
    t = step / num_steps
    noise_strength = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
    ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / lr_rampup_length)
    return initial_learning_rate * ramp, noise_strength


@dataclasses.dataclass(frozen=True)
class ProjectionResult:
    """What `project` found.

    Attributes:
        w: [1, w_dim] ("W" space) or [num_ws, w_dim] (`w_plus`), the optimized latent.
        ws: [1, num_ws, w_dim], w broadcast to every layer: the input of G.synthesis.
        noises: {name: [1, r, r, 1]}, the optimized noise maps (see `noise_layers`).
        image: [R, R, C] float32, synthesize(G, ws, noises)[0], in about [-1, 1].
        target: [R, R, C] float32 in [-1, 1], the target as it was compared.
        distance: distance(image, target) at the end (no noise on w).
        distances: [num_steps] float32, the distance at each step (w with its noise, before
            that step's update).
        snapshots: [(step, image [R, R, C] float32)] after the steps asked for.
    """

    w: np.ndarray
    ws: np.ndarray
    noises: dict
    image: np.ndarray
    target: np.ndarray
    distance: float
    distances: np.ndarray
    snapshots: list


class _Adam:
    """Adam (betas 0.9, 0.999, eps 1e-8, bias-corrected) over tf.Variables, lr given per step."""

    def __init__(self, variables, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.variables = list(variables)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.iterations = tf.Variable(0.0, trainable=False)

    def reset(self):
        for slot in (*self.m, *self.v):
            slot.assign(tf.zeros_like(slot))
        self.iterations.assign(0.0)

    def apply(self, grads, learning_rate):
        self.iterations.assign_add(1.0)
        t = self.iterations
        for var, grad, m, v in zip(self.variables, grads, self.m, self.v):
            m.assign(self.beta_1 * m + (1 - self.beta_1) * grad)
            v.assign(self.beta_2 * v + (1 - self.beta_2) * tf.square(grad))
            m_hat = m / (1 - self.beta_1 ** t)
            v_hat = v / (1 - self.beta_2 ** t)
            var.assign_sub(learning_rate * m_hat / (tf.sqrt(v_hat) + self.epsilon))


def _snapshot_steps(num_steps, num_snapshots):
    """`num_snapshots` evenly spaced steps ending with the last one."""
    if num_snapshots <= 0:
        return set()
    return {max(1, round(num_steps * (k + 1) / num_snapshots)) for k in range(num_snapshots)}


class Projector:
    """The paper's projector for one network and distance; `project` runs it on a target.

    The optimization step is compiled once, at the first `project`, and reused for
    every later target (of any number of steps).

    Args:
        G: a Generator (G_ema). Its weights and noise buffers are left as they were.
        distance: fn(img0, img1) -> [N] for float32 images [N, H, W, C] in [-1, 1],
            differentiable in img0: `pixel_distance`, or LPIPS
            (`stylegan2_tf.metrics.feature_nets.load_lpips()`), the paper's.
        w_plus: optimize one w per layer ([num_ws, w_dim]) instead of one w for all.
        class_idx: class of a conditional network (w_avg is then that class's mean);
            ValueError when missing for a conditional network or given for another.
        w_avg_samples, initial_learning_rate, lr_rampup_length, lr_rampdown_length,
        initial_noise_factor, noise_ramp_length, regularize_noise_weight: the official
            hyperparameters (see the module docstring).
    """

    def __init__(self, G, distance: Callable = pixel_distance, *, w_plus=False, class_idx=None,
                 w_avg_samples=10000, initial_learning_rate=0.1, lr_rampup_length=0.05,
                 lr_rampdown_length=0.25, initial_noise_factor=0.05, noise_ramp_length=0.75,
                 regularize_noise_weight=1e5):
        if G.img_channels not in (1, 3):
            raise ValueError(f"the projector supports networks with 1 or 3 channels, "
                             f"not {G.img_channels}")
        self.G = G
        self.distance = distance
        self.w_plus = bool(w_plus)
        self.class_idx = class_idx
        c = class_labels(G, 1, class_idx)  # raises ValueError for a missing or unexpected class
        self.schedule_kwargs = {
            "initial_learning_rate": initial_learning_rate, "lr_rampup_length": lr_rampup_length,
            "lr_rampdown_length": lr_rampdown_length, "initial_noise_factor": initial_noise_factor,
            "noise_ramp_length": noise_ramp_length}
        self.regularize_noise_weight = float(regularize_noise_weight)
        self.w_avg, self.w_std = w_statistics(G, c, num_samples=w_avg_samples)
        self.layers = noise_layers(G)
        self._buffers = [layer.noise_const for layer in self.layers.values()]
        self._w = tf.Variable(tf.zeros([1, G.num_ws if self.w_plus else 1, G.w_dim]),
                              name="projected_w")  # [1, 1 or num_ws, w_dim]
        self._noises = [tf.Variable(tf.zeros(buffer.shape), name=f"noise_{i}")
                        for i, buffer in enumerate(self._buffers)]  # [1, r, r, 1] each
        self._optimizer = _Adam([self._w, *self._noises])
        size = G.img_resolution // lpips_factor(G.img_resolution)
        self._target = tf.Variable(tf.zeros([1, size, size, G.img_channels]), trainable=False,
                                   name="target")  # downsampled like the images
        self._train_step = tf.function(self._step)
        self._render = tf.function(self._draw)

    def _ws(self, w):
        """[1, 1 or num_ws, w_dim] -> [1, num_ws, w_dim]."""
        return w if self.w_plus else tf.tile(w, [1, self.G.num_ws, 1])

    def _assign_noise(self):
        for buffer, noise in zip(self._buffers, self._noises):
            buffer.assign(noise)

    def _step(self, seed, step, learning_rate, w_noise_strength):
        w_noise = tf.random.stateless_normal(tf.shape(self._w), tf.stack([seed, step]))
        self._assign_noise()
        buffer_values = [buffer.value for buffer in self._buffers]  # their tf.Variables
        with tf.GradientTape() as tape:
            tape.watch(buffer_values)
            images = self.G.synthesis(self._ws(self._w + w_noise * w_noise_strength),
                                      noise_mode="const")
            dist = tf.reduce_sum(self.distance(downsample_for_lpips(images), self._target))
            reg = noise_regularization(self._noises)
            loss = dist + reg * self.regularize_noise_weight
        # A noise map reaches the image through its buffer, the penalty directly.
        count = len(self._noises)
        grads = tape.gradient(loss, [self._w, *buffer_values, *self._noises],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        noise_grads = [a + b for a, b in zip(grads[1:1 + count], grads[1 + count:])]
        self._optimizer.apply([grads[0], *noise_grads], learning_rate)
        for noise in self._noises:  # zero mean, unit variance
            centered = noise - tf.reduce_mean(noise)
            noise.assign(centered * tf.math.rsqrt(tf.reduce_mean(tf.square(centered))))
        return dist

    def _draw(self):
        self._assign_noise()
        images = self.G.synthesis(self._ws(self._w), noise_mode="const")
        dist = tf.reduce_sum(self.distance(downsample_for_lpips(images), self._target))
        return images[0], dist

    def project(self, target, num_steps=1000, *, seed=0, num_snapshots=0, progress=None):
        """Finds w and noise maps whose image matches `target`.

        Args:
            target: the image, any size (see `prepare_target`: uint8 0-255 or float
                in [-1, 1], [H, W] or [H, W, C], or a PIL image); center-cropped to
                a square and Lanczos-resized to G.img_resolution.
            num_steps: optimization steps (official: 1000).
            seed: draws the initial noise maps (N(0, 1)) and the noise added to w.
            num_snapshots: also keep images after this many evenly spaced steps (the
                last one included), in `result.snapshots`.
            progress: fn(step, distance), called after each step (step counts from 1).

        Returns:
            A ProjectionResult.
        """
        num_steps = int(num_steps)
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        G = self.G
        target = prepare_target(target, G.img_resolution, G.img_channels)
        self._target.assign(downsample_for_lpips(tf.constant(target[np.newaxis])))
        rng = np.random.RandomState(seed)
        self._w.assign(np.tile(self.w_avg, [G.num_ws if self.w_plus else 1, 1])[np.newaxis])
        for noise in self._noises:
            noise.assign(rng.randn(*noise.shape).astype(np.float32))
        self._optimizer.reset()
        seed_tensor = tf.constant(int(seed) % 2**31, tf.int32)
        snapshot_steps = _snapshot_steps(num_steps, num_snapshots)
        distances, snapshots = [], []
        saved = [buffer.numpy() for buffer in self._buffers]
        try:
            for step in range(num_steps):
                learning_rate, w_noise_strength = schedule(step, num_steps, self.w_std,
                                                           **self.schedule_kwargs)
                dist = float(self._train_step(seed_tensor, tf.constant(step, tf.int32),
                                              tf.constant(learning_rate, tf.float32),
                                              tf.constant(w_noise_strength, tf.float32)))
                distances.append(dist)
                if step + 1 in snapshot_steps:
                    snapshots.append((step + 1, self._render()[0].numpy()))
                if progress is not None:
                    progress(step + 1, dist)
            image, final_distance = self._render()
        finally:
            for buffer, value in zip(self._buffers, saved):
                buffer.assign(value)
        w = self._w.numpy()[0]
        return ProjectionResult(
            w=w, ws=np.tile(w, [1 if self.w_plus else G.num_ws, 1])[np.newaxis],
            noises={name: noise.numpy() for name, noise in zip(self.layers, self._noises)},
            image=image.numpy(), target=target, distance=float(final_distance),
            distances=np.asarray(distances, np.float32), snapshots=snapshots)


def project(G, target, distance: Callable = pixel_distance, num_steps=1000, *, seed=0,
            num_snapshots=0, progress=None, **kwargs):
    """`Projector(G, distance, **kwargs).project(target, num_steps, ...)`: one target.

    kwargs: w_plus, class_idx and the hyperparameters of `Projector`.
    """
    return Projector(G, distance, **kwargs).project(
        target, num_steps, seed=seed, num_snapshots=num_snapshots, progress=progress)


def save_projection(result, path, **extra):
    """Writes `result` to an .npz (written aside, then renamed into place).

    Keys: `w` [1 or num_ws, w_dim]; `ws` [1, num_ws, w_dim] (G.synthesis input; what
    stylegan2-ada-pytorch's projector saves as `w`); `noise_names` [L] str and
    `noise_<i>` [1, r, r, 1] for the i-th name; `distances` [num_steps]; `distance`
    (final); plus `extra` arrays.
    """
    arrays = {"w": result.w, "ws": result.ws, "distances": result.distances,
              "distance": np.float32(result.distance), "noise_names": np.array(list(result.noises))}
    for i, value in enumerate(result.noises.values()):
        arrays[f"noise_{i}"] = value
    arrays.update(extra)

    def write(partial):
        with open(partial, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_projection(path):
    """(ws [1, num_ws, w_dim], noises {name: [1, r, r, 1]}) from `save_projection`'s file."""
    with np.load(path) as data:
        names = [str(name) for name in data["noise_names"]]
        return data["ws"], {name: data[f"noise_{i}"] for i, name in enumerate(names)}
