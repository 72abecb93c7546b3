"""Writes the truncation sweep figure: one row per seed, one column per truncation psi.

  python scripts/truncation_sweep.py --network=NET --seeds=0-5 --psis=1,0.7,0.5,0,-0.5 --outdir=out

psi 0 gives the average image (w_avg) in every row; negative psi the "opposite" of each
seed's image. Writes grid.png.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf.cli import class_flag, generator_flag, outdir_flag, run, seeds_flag
from stylegan2_tf.inference import image_grid, parse_floats, save_png, truncation_sweep

NETWORK = flags.DEFINE_string("network", None, "Official .pkl, network folder or generator .keras.")
SEEDS = flags.DEFINE_string("seeds", "0-5", "Row seeds: '0-5,42'.")
PSIS = flags.DEFINE_string("psis", "1,0.7,0.5,0,-0.5,-1", "Column truncation psis.")
TRUNC_CUTOFF = flags.DEFINE_integer("trunc_cutoff", None, "Truncate only the first N ws.",
                                     lower_bound=1)
NOISE_MODE = flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Per-pixel noise.")
CLASS_IDX = flags.DEFINE_integer("class_idx", None, "Class of a conditional network.")
OUTDIR = flags.DEFINE_string("outdir", None, "Output folder (created if missing).")
flags.mark_flags_as_required(["network", "outdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    seeds = seeds_flag(SEEDS.value)
    try:
        psis = parse_floats(PSIS.value, "--psis")
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    G = generator_flag(NETWORK.value)
    class_idx = class_flag(G, CLASS_IDX.value)
    outdir = outdir_flag(OUTDIR.value)  # only once every input was accepted
    try:
        images = truncation_sweep(G, seeds, psis, TRUNC_CUTOFF.value, NOISE_MODE.value,
                                  class_idx)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    save_png(image_grid(images.reshape(-1, *images.shape[2:]), len(psis)), outdir / "grid.png")
    print(f"wrote {outdir / 'grid.png'} ({len(seeds)} seeds x {len(psis)} psis)")


if __name__ == "__main__":
    run(main)
