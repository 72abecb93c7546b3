"""Projects an image into a network's latent space (the paper's projector, sec. 5).

  python scripts/project.py --network=NET --target=face.png --outdir=out [--steps=1000]
      [--seed=0] [--distance=lpips|pixel] [--lpips=net-lin_vgg_v0.1.pb] [--class_idx=N] [--w_plus]

NET is an official TF1 pickle, a network folder or a generator .keras file. The
target (any size and format Pillow reads) is converted like Pillow's
`convert("RGB")` (gray repeated, alpha dropped; `convert("L")` for a grayscale
network), center-cropped to a square and Lanczos-resized to the network's
resolution; 16- and 32-bit images are refused (save them with 8 bits per
channel). LPIPS needs `net-lin_vgg_v0.1.pb` (--lpips or STYLEGAN2_LPIPS);
--distance=pixel (mean squared error) needs nothing.

Writes to --outdir, each file aside then renamed into place:
  proj.png          the projected image (its w with its optimized noise maps)
  target.png        the target as compared (cropped and resized)
  projected_w.npz   w [1 or num_ws, w_dim], ws [1, num_ws, w_dim] (the G.synthesis
                    input), noise_names + noise_<i> [1, r, r, 1], distances [steps],
                    distance, snapshot_steps; read it with
                    stylegan2_tf.projection.load_projection
  progress.png      the projection after --snapshots evenly spaced steps, then the target
"""

from pathlib import Path

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import numpy as np
from absl import app, flags
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from stylegan2_tf import cli
from stylegan2_tf.inference import image_grid, save_png, to_uint8
from stylegan2_tf.projection import (
    Projector,
    pixel_distance,
    prepare_target,
    save_projection,
)

NETWORK = cli.define_network_flag()
TARGET = flags.DEFINE_string("target", None, "Image to project (PNG, JPEG, ...; any size).")
OUTDIR = flags.DEFINE_string("outdir", None, "Folder for the results (created if missing).")
STEPS = flags.DEFINE_integer("steps", 1000, "Optimization steps.", lower_bound=1)
SEED = flags.DEFINE_integer("seed", 0, "Seed of the initial noise maps and of the noise on w.",
                            lower_bound=0)
DISTANCE = flags.DEFINE_enum("distance", "lpips", ["lpips", "pixel"],
                             "LPIPS (the paper's; needs --lpips) or mean squared pixel error.")
weights_flags = cli.define_weights_flags("lpips")
CLASS_IDX = cli.define_class_idx_flag()
W_PLUS = flags.DEFINE_boolean("w_plus", False, "Optimize one w per layer instead of one w.")
SNAPSHOTS = flags.DEFINE_integer("snapshots", 8, "Images in progress.png.", lower_bound=1)
flags.mark_flags_as_required(["network", "target", "outdir"])


def read_target(path):
    """The target as a PIL image, or a usage error naming --target."""
    if not Path(path).is_file():
        raise app.UsageError(f"--target: {path} does not exist or is not a file")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise app.UsageError(f"--target: cannot read {path} as an image ({error})") from error


def distance_flag():
    """The distance callable from --distance and --lpips."""
    if DISTANCE.value == "pixel":
        return pixel_distance
    from stylegan2_tf.metrics.feature_nets import load_lpips

    try:
        return load_lpips(weights_flags().get("lpips"))
    except (FileNotFoundError, ValueError, OSError) as error:
        raise app.UsageError(f"--lpips: {error} (or project with --distance=pixel)") from error


def main():
    target = read_target(TARGET.value)
    distance = distance_flag()
    G = cli.generator_flag(NETWORK.value)
    if G.img_channels not in (1, 3):
        raise app.UsageError(f"--network: the projector supports networks with 1 or 3 channels, "
                             f"this one has {G.img_channels}")
    with cli.usage_errors("target"):
        target = prepare_target(target, G.img_resolution, G.img_channels)
    class_idx = cli.class_flag(G, CLASS_IDX.value)
    projector = Projector(G, distance, w_plus=W_PLUS.value, class_idx=class_idx)
    outdir = cli.outdir_flag(OUTDIR.value)  # only once every input was accepted

    with tqdm(total=STEPS.value, desc="projecting", unit="step") as bar:
        def progress(step, dist):
            bar.set_postfix(dist=f"{dist:.4f}", refresh=False)
            bar.update(1)

        result = projector.project(target, STEPS.value, seed=SEED.value,
                                   num_snapshots=min(SNAPSHOTS.value, STEPS.value),
                                   progress=progress)

    target_uint8 = to_uint8(result.target)
    strip = [to_uint8(image) for _, image in result.snapshots] + [target_uint8]
    save_png(to_uint8(result.image), outdir / "proj.png")
    save_png(target_uint8, outdir / "target.png")
    save_png(image_grid(np.stack(strip), len(strip)), outdir / "progress.png")
    save_projection(result, outdir / "projected_w.npz",
                    snapshot_steps=np.array([step for step, _ in result.snapshots]))
    print(f"distance {result.distance:.4f} ({DISTANCE.value}) after {STEPS.value} steps; "
          f"wrote proj.png, target.png, projected_w.npz, progress.png to {outdir}")


if __name__ == "__main__":
    cli.run(main)
