"""Converts a folder or zip of images into a TFRecord dataset for training.

  python scripts/dataset_tool.py --source=DIR_OR_ZIP --dest=DIR [--resolution=N]
      [--transform=none|center-crop|center-crop-wide] [--resize_filter=box|lanczos]
      [--labels=dataset.json] [--shards=N] [--on_error=fail|skip] [--max_images=N] [--overwrite]
      [--max_label_size=N]

Reads PNG, JPEG, WebP and BMP files (a folder recursively), in sorted order.
Writes DIR/data-SSSSS-of-NNNNN.tfrecord and DIR/metadata.json; DIR appears only
once complete. Labels follow stylegan2-ada's dataset.json:
{"labels": [["relative/path.png", class], ...]}; a dataset.json at the top of the
source is used when --labels is not given. See stylegan2_tf/data/convert.py.

Images must be square, a power of two (>= 4) and one size (--resolution, else
the most common such size) unless --transform=center-crop --resolution=N crops and
resizes them; an image that does not fit stops the tool with its name and the fix,
or with --on_error=skip is left out and listed, like an unreadable file.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

from absl import flags

from stylegan2_tf import cli
from stylegan2_tf.data.convert import DEFAULT_MAX_LABEL_SIZE, ON_ERROR, DatasetError, convert_dataset
from stylegan2_tf.data.images import RESIZE_FILTERS, TRANSFORMS
from stylegan2_tf.data.records import MAX_LABEL_SIZE
from stylegan2_tf.data.sources import printable

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
flags.mark_flags_as_required(["source", "dest"])


def main():
    with cli.usage_errors(errors=(DatasetError,)):
        result = convert_dataset(SOURCE.value, DEST.value, resolution=RESOLUTION.value,
                                 transform=TRANSFORM.value, resize_filter=RESIZE_FILTER.value,
                                 labels=LABELS.value, shards=SHARDS.value, on_error=ON_ERROR_FLAG.value,
                                 max_images=MAX_IMAGES.value, overwrite=OVERWRITE.value,
                                 max_label_size=MAX_LABEL_SIZE_FLAG.value)
    for name, reason in result.skipped:
        print(printable(f"skipped {name}: {reason}"))
    metadata = result.metadata
    print(printable(f"wrote {metadata['image_count']} images ({metadata['resolution']}x{metadata['resolution']}, "
          f"{metadata['channels']} channel(s), {metadata['label_size']} classes) to {result.dest}"
          + (f"; skipped {len(result.skipped)} (listed above and in metadata.json)" if result.skipped else "")))


if __name__ == "__main__":
    cli.run(main)
