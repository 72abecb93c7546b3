"""Exports a generator as a SavedModel for TF Serving.

  python scripts/export.py --network=NET --export_dir=exported/1 [--trunc=0.7] [--trunc_cutoff=N]
      [--max_batch=N]

NET is an official TF1 pickle (NVlabs/stylegan2 or the TF1 stylegan2-ada), a network
folder written by scripts/convert.py or training, or a generator .keras file; its
averaged generator (G_ema) is exported with stock TensorFlow ops only. Signatures:
serving_default (z [, c] -> uint8 images), mapping (z [, c] -> ws) and synthesis
(ws -> uint8 images); --trunc, --trunc_cutoff and --noise_mode set the defaults of
their optional inputs truncation_psi, truncation_cutoff and noise_mode. --max_batch
caps the rows of a request (checked in the graph), so one request cannot exhaust
the server's memory. One export.py at a time writes an --export_dir: it holds the lock
file .<name>.lock next to it (e.g. exported/.1.lock) while it runs; a second one is
refused with "DIR is in use by pid N on HOST" (exit 2).
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import flags

from stylegan2_tf import cli
from stylegan2_tf.files import FolderInUseError, lock_output
from stylegan2_tf.serving import check_export_dir, export_saved_model

NETWORK = cli.define_network_flag()
EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "New SavedModel folder, a numbered version as TF Serving expects "
    "(e.g. exported/1). Written aside and renamed into place; must be missing or empty.")
TRUNC = flags.DEFINE_float("trunc", 1.0, "Default truncation_psi: 1 = none, 0 = the average image.")
TRUNC_CUTOFF = flags.DEFINE_integer(
    "trunc_cutoff", None, "Default truncation_cutoff: truncate only the first N ws "
    "(default: all; 0 or less in a request also means all).")
NOISE_MODE = cli.define_noise_mode_flag("Default noise_mode")
FORCE_FP32 = flags.DEFINE_boolean("force_fp32", False,
                                  "Compute in float32 where the network asks for float16 blocks.")
MAX_BATCH = flags.DEFINE_integer(
    "max_batch", None, "Most rows (images) a request may have; larger ones fail with a message "
    "naming the limit. Default: about 2 GiB of activations per request, at most 64 "
    "(config-f widths: 64 at 32 px, 8 at 256 px, 2 at 1024 px).", lower_bound=1)
flags.mark_flags_as_required(["network", "export_dir"])
cli.require_finite(TRUNC)


def main():
    with cli.usage_errors("export_dir", (FolderInUseError, ValueError)):
        check_export_dir(EXPORT_DIR.value)
        lock = lock_output(EXPORT_DIR.value)  # one writer per --export_dir, the lock file next to it
    with lock:
        export()


def export():
    with cli.usage_errors("export_dir"):
        check_export_dir(EXPORT_DIR.value)  # again, now that no other export can fill it
    G = cli.generator_flag(NETWORK.value)
    print(f"exporting {NETWORK.value}: z_dim {G.z_dim}, c_dim {G.c_dim}, "
          f"{G.img_resolution}x{G.img_resolution}x{G.img_channels} images, {G.num_ws} ws")
    lines = export_saved_model(G, EXPORT_DIR.value, TRUNC.value, TRUNC_CUTOFF.value,
                               NOISE_MODE.value, FORCE_FP32.value, MAX_BATCH.value)
    print(f"wrote SavedModel {EXPORT_DIR.value} with signatures:")
    for line in lines:
        print(f"  {line}")


if __name__ == "__main__":
    cli.run(main)
