"""Writes the style-mixing figure: rows take the listed styles of each column.

  python scripts/style_mixing.py --network=NET --rows=85,100 --cols=55,821 --styles=0-6 --outdir=out

Row seed r and column seed c give the image of r's ws with the ws in --styles
replaced by c's (the official style_mixing_example). Writes grid.png (column
images across the top, row images down the left) and one {row}-{col}.png per cell.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import numpy as np
from absl import app, flags

from stylegan2_tf.cli import (
    class_flag,
    generator_flag,
    outdir_flag,
    range_flag,
    require_finite,
    run,
    seeds_flag,
)
from stylegan2_tf.inference import image_grid, save_png, style_mix

NETWORK = flags.DEFINE_string("network", None, "Official .pkl, network folder or generator .keras.")
ROWS = flags.DEFINE_string("rows", None, "Row seeds: '85,100,75'.")
COLS = flags.DEFINE_string("cols", None, "Column seeds: '55,821,1789'.")
STYLES = flags.DEFINE_string("styles", "0-6", "Indices of the ws taken from the column seeds.")
TRUNC = flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
NOISE_MODE = flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"], "Per-pixel noise.")
CLASS_IDX = flags.DEFINE_integer("class_idx", None, "Class of a conditional network.")
OUTDIR = flags.DEFINE_string("outdir", None, "Output folder (created if missing).")
flags.mark_flags_as_required(["network", "rows", "cols", "outdir"])
require_finite(TRUNC)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    rows, cols = seeds_flag(ROWS.value, "rows"), seeds_flag(COLS.value, "cols")
    styles = range_flag(STYLES.value, "styles")
    G = generator_flag(NETWORK.value)
    class_idx = class_flag(G, CLASS_IDX.value)
    outdir = outdir_flag(OUTDIR.value)  # only once every input was accepted
    try:
        row_images, col_images, mixes = style_mix(G, rows, cols, styles, TRUNC.value,
                                                  NOISE_MODE.value, class_idx)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
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
    run(main)
