"""Writes the truncation sweep figure: one row per seed, one column per truncation psi.

  python scripts/truncation_sweep.py --network=NET --seeds=0-5 --psis=1,0.7,0.5,0,-0.5 --outdir=out

psi 0 gives the average image (w_avg) in every row; negative psi the "opposite" of each
seed's image. Writes grid.png.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import flags

from stylegan2_tf import cli
from stylegan2_tf.inference import image_grid, save_png, truncation_sweep

NETWORK = cli.define_network_flag()
SEEDS = flags.DEFINE_string("seeds", "0-5", "Row seeds: '0-5,42'.")
PSIS = flags.DEFINE_string("psis", "1,0.7,0.5,0,-0.5,-1", "Column truncation psis.")
TRUNC_CUTOFF = flags.DEFINE_integer("trunc_cutoff", None, "Truncate only the first N ws.",
                                     lower_bound=1)
NOISE_MODE = cli.define_noise_mode_flag()
CLASS_IDX = cli.define_class_idx_flag()
OUTDIR = flags.DEFINE_string("outdir", None, "Output folder (created if missing).")
flags.mark_flags_as_required(["network", "outdir"])


def main():
    seeds = cli.seeds_flag(SEEDS.value)
    psis = cli.floats_flag(PSIS.value, "psis")
    G = cli.generator_flag(NETWORK.value)
    class_idx = cli.class_flag(G, CLASS_IDX.value)
    outdir = cli.outdir_flag(OUTDIR.value)  # only once every input was accepted
    with cli.usage_errors():
        images = truncation_sweep(G, seeds, psis, TRUNC_CUTOFF.value, NOISE_MODE.value,
                                  class_idx)
    save_png(image_grid(images.reshape(-1, *images.shape[2:]), len(psis)), outdir / "grid.png")
    print(f"wrote {outdir / 'grid.png'} ({len(seeds)} seeds x {len(psis)} psis)")


if __name__ == "__main__":
    cli.run(main)
