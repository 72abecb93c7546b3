"""Writes the style-mixing figure: rows take the listed styles of each column.

  python scripts/style_mixing.py --network=NET --rows=85,100 --cols=55,821 --styles=0-6 --outdir=out

Row seed r and column seed c give the image of r's ws with the ws in --styles
replaced by c's (the official style_mixing_example). Writes grid.png (column
images across the top, row images down the left) and one {row}-{col}.png per cell.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import numpy as np
from absl import flags

from stylegan2_tf import cli
from stylegan2_tf.inference import image_grid, save_png, style_mix

NETWORK = cli.define_network_flag()
ROWS = flags.DEFINE_string("rows", None, "Row seeds: '85,100,75'.")
COLS = flags.DEFINE_string("cols", None, "Column seeds: '55,821,1789'.")
STYLES = flags.DEFINE_string("styles", "0-6", "Indices of the ws taken from the column seeds.")
TRUNC = flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
NOISE_MODE = cli.define_noise_mode_flag()
CLASS_IDX = cli.define_class_idx_flag()
OUTDIR = flags.DEFINE_string("outdir", None, "Output folder (created if missing).")
flags.mark_flags_as_required(["network", "rows", "cols", "outdir"])
cli.require_finite(TRUNC)


def main():
    rows, cols = cli.seeds_flag(ROWS.value, "rows"), cli.seeds_flag(COLS.value, "cols")
    styles = cli.range_flag(STYLES.value, "styles")
    G = cli.generator_flag(NETWORK.value)
    class_idx = cli.class_flag(G, CLASS_IDX.value)
    outdir = cli.outdir_flag(OUTDIR.value)  # only once every input was accepted
    with cli.usage_errors():
        row_images, col_images, mixes = style_mix(G, rows, cols, styles, TRUNC.value,
                                                  NOISE_MODE.value, class_idx)
    blank = np.zeros_like(row_images[0])
    cells = [blank, *col_images]
    for i, row in enumerate(rows):
        cells.append(row_images[i])
        for j, col in enumerate(cols):
            save_png(mixes[i, j], outdir / f"{row}-{col}.png")
            cells.append(mixes[i, j])
    save_png(image_grid(cells, len(cols) + 1), outdir / "grid.png")
    print(f"wrote {outdir / 'grid.png'} and {len(rows) * len(cols)} mixes")


if __name__ == "__main__":
    cli.run(main)
