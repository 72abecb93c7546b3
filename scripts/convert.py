"""Converts an official TF1 StyleGAN2 / stylegan2-ada pickle into a network folder.

  python scripts/convert.py --source=official.pkl --dest=DIR

Writes DIR/G_ema.keras (the averaged generator, official Gs), and DIR/G.keras,
DIR/D.keras when the pickle has them. No code from the pickle is run.
"""

import os

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf import cli
from stylegan2_tf.files import check_output_folder
from stylegan2_tf.network_io import NETWORK_NAMES, save_network
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.official.pickle_reader import OfficialPickleError

SOURCE = flags.DEFINE_string("source", None, "Official TF1 network pickle (.pkl).")
DEST = flags.DEFINE_string("dest", None, "Output network folder (created if missing).")
FORCE_FP32 = flags.DEFINE_boolean("force_fp32", False,
                                  "Compute in float32 where the network asks for float16 blocks.")
OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace the networks of a --dest that has "
                                 "some (those the pickle lacks are removed).")
flags.mark_flags_as_required(["source", "dest"])


def main():
    if not os.path.isfile(SOURCE.value):
        raise app.UsageError(f"--source {SOURCE.value} is not a file")
    with cli.usage_errors("dest"):
        dest = check_output_folder(DEST.value)  # created only once the pickle was read
    existing = [name for name in NETWORK_NAMES if (dest / f"{name}.keras").exists()]
    if existing and not OVERWRITE.value:
        raise app.UsageError(f"--dest: {dest} already holds {', '.join(existing)}; give "
                             "--overwrite to replace them")
    with cli.usage_errors("source", (OfficialPickleError,)):
        networks = load_official(SOURCE.value, force_fp32=FORCE_FP32.value)
    dest = cli.outdir_flag(DEST.value, "dest")
    save_network(networks, dest)
    written = [name for name, model in networks.items() if model is not None]
    for name in set(existing) - set(written):  # a mix of two sources is no network folder
        (dest / f"{name}.keras").unlink()
    print(f"wrote {', '.join(f'{name}.keras' for name in written)} to {DEST.value}")


if __name__ == "__main__":
    cli.run(main)
