"""Converts a folder or zip of images into a TFRecord dataset for training.

  python scripts/dataset_tool.py --source=DIR_OR_ZIP --dest=DIR [--resolution=N]
      [--transform=none|center-crop|center-crop-wide] [--resize_filter=box|lanczos]
      [--labels=dataset.json] [--shards=N] [--on_error=fail|skip] [--max_images=N] [--overwrite]
      [--max_label_size=N]
  python scripts/dataset_tool.py --verify=DIR

Reads PNG, JPEG, WebP and BMP files (a folder recursively), in sorted order.
Writes DIR/data-SSSSS-of-NNNNN.tfrecord and DIR/metadata.json; DIR appears only
once complete. Labels follow stylegan2-ada's dataset.json:
{"labels": [["relative/path.png", class], ...]}; a dataset.json at the top of the
source is used when --labels is not given. See stylegan2_tf/data/convert.py.

Images must be square, a power of two (>= 4) and one size (--resolution, else
the most common such size) unless --transform=center-crop --resolution=N crops and
resizes them; an image that does not fit stops the tool with its name and the fix,
or with --on_error=skip is left out and listed, like an unreadable file.

One conversion at a time writes a --dest: a second one is refused ("DIR is in use by
pid N on HOST", exit 2) while the lock file .DIR.lock next to it is held; the hidden
folders a killed conversion to the same --dest left are removed first.

--verify=DIR checks a converted dataset in full: every record reads (TFRecord
checksums) and decodes to the dataset's size and channels, every label is in range
and as metadata.json lists it, the record counts and sizes per shard and in all, and
the sha256 of each shard and of the whole dataset. It prints a summary and exits 0,
or prints each problem (file, record index, what) and exits 1. Training checks the
cheap part of this at every start and each record as it reads it.
"""

import sys

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import app, flags

from stylegan2_tf import cli
from stylegan2_tf.data.convert import DEFAULT_MAX_LABEL_SIZE, ON_ERROR, DatasetError, convert_dataset
from stylegan2_tf.data.images import RESIZE_FILTERS, TRANSFORMS
from stylegan2_tf.data.records import MAX_LABEL_SIZE
from stylegan2_tf.data.sources import printable
from stylegan2_tf.data.verify import verify_dataset
from stylegan2_tf.files import FolderInUseError

SOURCE = flags.DEFINE_string("source", None, "Folder or .zip of images.")
DEST = flags.DEFINE_string("dest", None, "Dataset folder to create.")
RESOLUTION = flags.DEFINE_integer("resolution", None, "Output size (power of two >= 4); default: "
                                  "the most common square power-of-two image size.")
TRANSFORM = flags.DEFINE_enum("transform", "none", list(TRANSFORMS),
                              "none: images are used as they are (other sizes are unusable); "
                              "center-crop: square crop, resized; "
                              "center-crop-wide: 2:1 crop between black bars.")
RESIZE_FILTER = flags.DEFINE_enum("resize_filter", "box", list(RESIZE_FILTERS),
                                  "box (area average, as the published FIDs) or lanczos.")
LABELS = flags.DEFINE_string("labels", None, "dataset.json with class labels.")
SHARDS = flags.DEFINE_integer("shards", None, "TFRecord files; default one per 256 MiB of source.",
                              lower_bound=1)
ON_ERROR_FLAG = flags.DEFINE_enum("on_error", "fail", list(ON_ERROR),
                                  "Unusable image (unreadable, no label, wrong size): stop, or skip "
                                  "it with a report line.")
MAX_IMAGES = flags.DEFINE_integer("max_images", None, "Convert only the first N images.", lower_bound=1)
OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace a non-empty --dest.")
MAX_LABEL_SIZE_FLAG = flags.DEFINE_integer(
    "max_label_size", DEFAULT_MAX_LABEL_SIZE, "Most classes (largest label + 1) the labels may give; "
    "training holds one-hot labels of this size.", lower_bound=1, upper_bound=MAX_LABEL_SIZE)
VERIFY = flags.DEFINE_string("verify", None, "Check the converted dataset DIR in full instead of "
                             "converting: every record, the counts, the checksums; exit 1 on a problem.")


def main():
    if VERIFY.value is not None:
        if SOURCE.value is not None or DEST.value is not None:
            raise app.UsageError("--verify checks a dataset; give it without --source and --dest")
        return verify(VERIFY.value)
    missing = [f"--{flag.name}" for flag in (SOURCE, DEST) if flag.value is None]
    if missing:
        raise app.UsageError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                             "(or --verify=DIR)")
    with cli.usage_errors(errors=(DatasetError, FolderInUseError)):
        result = convert_dataset(SOURCE.value, DEST.value, resolution=RESOLUTION.value,
                                 transform=TRANSFORM.value, resize_filter=RESIZE_FILTER.value,
                                 labels=LABELS.value, shards=SHARDS.value, on_error=ON_ERROR_FLAG.value,
                                 max_images=MAX_IMAGES.value, overwrite=OVERWRITE.value,
                                 max_label_size=MAX_LABEL_SIZE_FLAG.value)
    for path in result.removed:
        print(printable(f"removed {path}, left by a conversion that was stopped"))
    for name, reason in result.skipped:
        print(printable(f"skipped {name}: {reason}"))
    metadata = result.metadata
    print(printable(f"wrote {metadata['image_count']} images ({metadata['resolution']}x{metadata['resolution']}, "
          f"{metadata['channels']} channel(s), {metadata['label_size']} classes) to {result.dest}"
          + (f"; skipped {len(result.skipped)} (listed above and in metadata.json)" if result.skipped else "")))



def verify(data_dir):
    """dataset_tool.py --verify: prints the summary or each problem; exits 1 on a problem."""
    with cli.usage_errors("verify", (FileNotFoundError,)):
        result = verify_dataset(data_dir)
    for problem in result.problems:
        print(printable(str(problem)))
    metadata = result.metadata
    if not result.ok:
        print(printable(f"{data_dir}: {len(result.problems)} problem(s)"
                        + (f" ({result.records} of {metadata['image_count']} records read)" if metadata else "")))
        sys.exit(1)
    shards = metadata["shards"]
    print(printable(
        f"{data_dir}: ok: {result.records} records in {len(shards)} shard(s), {metadata['resolution']}x"
        f"{metadata['resolution']} with {metadata['channels']} channel(s), {metadata['label_size']} classes; "
        f"every record decodes and fits, counts and " + _matched(metadata)))


def _matched(metadata):
    """What --verify compared besides the records, by what metadata.json records."""
    if all("sha256" in shard and "bytes" in shard for shard in metadata["shards"]):
        return "sizes and sha256 checksums match"
    if metadata.get("checksum"):
        return ("the overall sha256 checksum match (metadata.json has no per-shard sizes and "
                "checksums: converted before they were recorded)")
    return "labels match (metadata.json records no checksums)"


if __name__ == "__main__":
    cli.run(main)
