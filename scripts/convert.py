"""Converts a network between NVIDIA's formats and this library's.

  python scripts/convert.py --source=NETWORK --dest=DIR
  python scripts/convert.py --to=tf1-pickle --source=runs/mine/network --dest=mine.pkl

--source is anything --network takes: NVIDIA's TF1 pickles (NVlabs/stylegan2, TF1
stylegan2-ada), stylegan2-ada-pytorch and stylegan3 (StyleGAN2) pickles, a URL or
known network name (downloaded once into --cache_dir), a network folder or a .keras.
No code from a pickle is run.

--to=folder (default) writes DIR/G_ema.keras (the averaged generator, official Gs),
and DIR/G.keras, DIR/D.keras when the source has them.
--to=tf1-pickle writes the network as NVIDIA's TF1 pickle (G, D, Gs), which
stylegan2-ada-pytorch's and stylegan3's legacy.load_network_pkl open; it holds no
code, so TF1's own loader (which executes a pickle's module source) cannot.

One convert.py at a time writes a --dest (folder or .pkl): it holds the lock file
.<name>.lock next to it while it runs; a second one is refused with "DEST is in use by
pid N on HOST" (exit 2).
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf import cli
from stylegan2_tf.files import FolderInUseError, check_output_folder, lock_output
from stylegan2_tf.network_io import NETWORK_NAMES, load_network, save_network
from stylegan2_tf.official.tf1_export import TF1ExportError, save_tf1_pickle

SOURCE = flags.DEFINE_string("source", None, "The network to convert: a NVIDIA pickle (TF1, "
                             "stylegan2-ada TF or PyTorch, stylegan3's StyleGAN2), URL, known "
                             "network name, network folder or .keras.")
DEST = flags.DEFINE_string("dest", None, "Output network folder (created if missing); with "
                           "--to=tf1-pickle, the .pkl file to write.")
TO = flags.DEFINE_enum("to", "folder", ["folder", "tf1-pickle"],
                       "folder: G.keras, D.keras, G_ema.keras; tf1-pickle: NVIDIA's TF1 network "
                       "pickle (G, D, Gs), which stylegan2-ada-pytorch's legacy.load_network_pkl opens.")
FORCE_FP32 = flags.DEFINE_boolean("force_fp32", False, "Compute in float32 where the network asks "
                                  "for float16 blocks (pickles; --to=folder).")
OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace the networks of a --dest folder that "
                                 "has some (those the source lacks are removed), or the --dest .pkl.")
CACHE_DIR = cli.define_cache_dir_flag()
flags.mark_flags_as_required(["source", "dest"])


def load_source():
    with cli.usage_errors("source", (OSError, ValueError)):
        return load_network(SOURCE.value, force_fp32=FORCE_FP32.value,
                            cache_dir=cli.cache_dir_flag(CACHE_DIR.value))


def write_folder():
    with cli.usage_errors("dest"):
        dest = check_output_folder(DEST.value)  # created only once the source was read
    existing = [name for name in NETWORK_NAMES if (dest / f"{name}.keras").exists()]
    if existing and not OVERWRITE.value:
        raise app.UsageError(f"--dest: {dest} already holds {', '.join(existing)}; give "
                             "--overwrite to replace them")
    networks = load_source()
    dest = cli.outdir_flag(DEST.value, "dest")
    save_network(networks, dest)
    written = [name for name, model in networks.items() if model is not None]
    for name in set(existing) - set(written):  # a mix of two sources is no network folder
        (dest / f"{name}.keras").unlink()
    print(f"wrote {', '.join(f'{name}.keras' for name in written)} to {DEST.value}")


def write_tf1_pickle():
    if FORCE_FP32.value:
        raise app.UsageError("--force_fp32 applies to --to=folder; a TF1 pickle keeps num_fp16_res")
    dest = cli.output_file_flag(DEST.value, "dest")
    if dest.exists() and not OVERWRITE.value:
        raise app.UsageError(f"--dest: {dest} exists; give --overwrite to replace it")
    networks = load_source()
    with cli.usage_errors("source", (TF1ExportError,)):
        save_tf1_pickle(networks, dest)
    held = ("G, D and Gs" if networks["D"] is not None else
            "Gs alone (stylegan2-ada-pytorch's legacy.load_network_pkl needs G, D and Gs)")
    print(f"wrote {dest}: a TF1 network pickle holding {held}")


WRITERS = {"folder": write_folder, "tf1-pickle": write_tf1_pickle}


def main():
    with cli.usage_errors("dest", (FolderInUseError, ValueError)):
        lock = lock_output(DEST.value)  # one writer per --dest; the lock file is next to it
    with lock:
        WRITERS[TO.value]()


if __name__ == "__main__":
    cli.run(main)
