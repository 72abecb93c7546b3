"""Draws images from a trained or official network, one PNG per seed.

  python scripts/generate.py --network=NET --seeds=0-7,42 --trunc=0.7 --outdir=out [--grid]

NET is an official TF1 pickle (NVlabs/stylegan2 or the TF1 stylegan2-ada), a network
folder written by scripts/convert.py or training, or a generator .keras file.
Seeds follow the official scripts: z = np.random.RandomState(seed).randn(1, z_dim).
"""

import math

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import flags
from tqdm import tqdm

from stylegan2_tf import cli
from stylegan2_tf.inference import generate_images, image_grid, save_png

NETWORK = cli.define_network_flag()
SEEDS = flags.DEFINE_string("seeds", None, "Seeds, as numbers and ranges: '0-7,42'.")
TRUNC = flags.DEFINE_float("trunc", 1.0, "Truncation psi: 1 = none, 0 = the average image.")
TRUNC_CUTOFF = flags.DEFINE_integer("trunc_cutoff", None, "Truncate only the first N ws (default all).",
                                     lower_bound=1)
NOISE_MODE = cli.define_noise_mode_flag()
CLASS_IDX = cli.define_class_idx_flag()
OUTDIR = flags.DEFINE_string("outdir", None, "Folder for seedNNNN.png (created if missing).")
GRID = flags.DEFINE_boolean("grid", False, "Also write grid.png with every image.")
BATCH = flags.DEFINE_integer("batch", 8, "Images drawn at once.", lower_bound=1)
flags.mark_flags_as_required(["network", "seeds", "outdir"])
cli.require_finite(TRUNC)


def main():
    seeds = cli.seeds_flag(SEEDS.value)
    G = cli.generator_flag(NETWORK.value)
    class_idx = cli.class_flag(G, CLASS_IDX.value)
    outdir = cli.outdir_flag(OUTDIR.value)
    images = []
    for start in tqdm(range(0, len(seeds), BATCH.value), desc="generating", unit="batch"):
        chunk = seeds[start:start + BATCH.value]
        with cli.usage_errors():
            batch = generate_images(G, chunk, TRUNC.value, TRUNC_CUTOFF.value, NOISE_MODE.value,
                                    class_idx, batch_size=BATCH.value)
        for seed, image in zip(chunk, batch):
            save_png(image, outdir / f"seed{seed:04d}.png")
        images.extend(batch)
    if GRID.value:
        save_png(image_grid(images, math.ceil(math.sqrt(len(images)))), outdir / "grid.png")
    print(f"wrote {len(images)} images to {outdir}")


if __name__ == "__main__":
    cli.run(main)
