"""Converts an official TF1 StyleGAN2 / stylegan2-ada pickle into a network folder.

  python scripts/convert.py --source=official.pkl --dest=DIR

Writes DIR/G_ema.keras (the averaged generator, official Gs), and DIR/G.keras,
DIR/D.keras when the pickle has them. No code from the pickle is run.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

from stylegan2_tf.network_io import save_network
from stylegan2_tf.official.convert import load_official
from stylegan2_tf.official.pickle_reader import OfficialPickleError

SOURCE = flags.DEFINE_string("source", None, "Official TF1 network pickle (.pkl).")
DEST = flags.DEFINE_string("dest", None, "Output network folder (created if missing).")
FORCE_FP32 = flags.DEFINE_boolean("force_fp32", False,
                                  "Compute in float32 where the network asks for float16 blocks.")
flags.mark_flags_as_required(["source", "dest"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not os.path.isfile(SOURCE.value):
        raise app.UsageError(f"--source {SOURCE.value} is not a file")
    try:
        networks = load_official(SOURCE.value, force_fp32=FORCE_FP32.value)
    except OfficialPickleError as error:
        raise app.UsageError(f"--source: {error}") from error
    save_network(networks, DEST.value)
    written = [name for name, model in networks.items() if model is not None]
    print(f"wrote {', '.join(f'{name}.keras' for name in written)} to {DEST.value}")


if __name__ == "__main__":
    sys.exit(app.run(main))
