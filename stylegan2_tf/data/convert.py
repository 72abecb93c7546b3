"""Converting a folder or zip of images into a TFRecord dataset (the format of records.py).

The conversion runs in two passes over the source, in sorted-name order:
  1. scan: read each header (size, PIL mode) and its label; reject unusable files
     and decide the dataset's resolution (see _decide_resolution) and channels
     (see images.py for the rule);
  2. write: decode, transform, encode and write each accepted image.
Records hold encoded images, lossless PNG, or a source JPEG's own bytes when it
needs no crop, resize or channel change, so a dataset is about as big as its
sources. The same input gives byte-identical output.

A problem of one image (unreadable, no label, a size it cannot be used at) is
skippable: on_error="skip" leaves the image out and reports it; "fail" stops
with a DatasetError naming the file, the reason and the fix. Messages name the
options as scripts/dataset_tool.py's flags (--transform, ...), which have the
same names as convert_dataset's arguments.

Output appears only when complete: it is written into a hidden sibling folder
of `dest` that is renamed into place at the end and removed on any error or
interruption. An existing `dest` is replaced only when empty or with overwrite.
One conversion at a time writes a `dest`: it holds files.lock_output(dest) (the
lock file `.<name>.lock` next to it) throughout, and first removes the hidden
folders a killed conversion to the same dest left.
"""

import collections
import dataclasses
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from stylegan2_tf.data import images, records
from stylegan2_tf.data.images import ImageError
from stylegan2_tf.data.sources import IMAGE_EXTENSIONS, LABELS_FILE, ImageSource
from stylegan2_tf.files import OutputPathError, aside_name, lock_output, remove_path
from stylegan2_tf.networks.layers import MIN_RESOLUTION, is_resolution

ON_ERROR = ("fail", "skip")
SOURCE_BYTES_PER_SHARD = 256 << 20
MAX_LABELS_BYTES = 64 << 20  # a dataset.json: ["relative/path.png", class] per image
DEFAULT_MAX_LABEL_SIZE = 100_000  # classes (largest label + 1); training holds one-hot labels of this size
_SIZE_RULE = f"StyleGAN2 needs square power-of-two sizes of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}"


class DatasetError(ValueError):
    """A conversion that cannot go on: bad arguments, source, labels or image (message says why)."""


@dataclass(frozen=True)
class ConversionResult:
    """What convert_dataset wrote: the dataset folder, its metadata and the skipped files."""
    dest: Path
    metadata: dict
    skipped: list  # [(file name, reason)], in the order found
    removed: list = ()  # leftovers of a killed conversion to dest, removed first


@dataclass(frozen=True)
class _Plan:
    """The dataset's settings, decided by the scan."""
    resolution: int
    channels: int
    transform: str
    resize_filter: str
    shards: int
    label_size: int  # classes; 0 for an unlabelled dataset
    source: str  # description for metadata.json


@dataclass(frozen=True)
class _Accepted:
    """A source image that passed the scan."""
    name: str
    mode: str
    size: tuple  # (width, height)
    label: int


def convert_dataset(source, dest, resolution=None, transform="none", resize_filter="box", labels=None,
                    shards=None, on_error="fail", max_images=None, overwrite=False, description=None,
                    progress=True, max_label_size=DEFAULT_MAX_LABEL_SIZE):
    """Converts the images of folder or zip `source` into a dataset folder `dest`.

    Args:
        resolution: output size R (a power of two >= 4); None takes the most
            common square power-of-two image size. Required by the crop transforms.
        transform: "none" (images must be R x R already; others are rejected),
            "center-crop" or "center-crop-wide" (see images.apply_transform).
        resize_filter: "box" (area average, as the published FIDs used) or "lanczos".
        labels: a dataset.json {"labels": [["relative/path.png", class], ...]};
            None uses the source's own top-level dataset.json, if any.
        shards: shard count; None gives one shard per 256 MiB of source images.
        on_error: "fail" stops at the first unusable image (unreadable, without a
            label, or of a size transform "none" cannot use); "skip" leaves it
            out and lists it in the result (and in metadata.json).
        max_images: convert only the first N images (in name order).
        overwrite: replace a non-empty existing `dest`.
        description: the source description stored in metadata.json (default: `source`).
        progress: show tqdm progress bars.
        max_label_size: the most classes (largest label + 1) a labels file may give;
            at most records.MAX_LABEL_SIZE (int32).

    Returns:
        ConversionResult. Raises DatasetError (a ValueError) with the reason.
    """
    _check_arguments(resolution, transform, resize_filter, on_error, shards, max_images)
    if not 1 <= max_label_size <= records.MAX_LABEL_SIZE:
        raise DatasetError(f"max_label_size must be in [1, {records.MAX_LABEL_SIZE}], got {max_label_size}")
    dest = Path(dest)
    _check_dest(dest, overwrite)
    try:
        lock = lock_output(dest)  # one writer per dest (its leftovers are ours to remove)
    except OutputPathError as error:
        raise DatasetError(f"destination {dest} cannot be created: {error}") from error
    try:
        removed = remove_conversion_leftovers(dest)
        result = _convert(source, dest, resolution, transform, resize_filter, labels, shards, on_error,
                          max_images, overwrite, description, progress, max_label_size)
    finally:
        lock.release()
    return dataclasses.replace(result, removed=removed)


def remove_conversion_leftovers(dest):
    """Removes the write-aside folders (`.<name>.<random>.partial` / `.old`) that a conversion to
    `dest` stopped by a kill left next to it; returns their paths. Call it holding lock_output(dest)."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.[0-9a-f]{{12}}\.(partial|old)")
    removed = []
    for path in sorted(dest.parent.iterdir()) if dest.parent.is_dir() else ():
        if pattern.fullmatch(path.name):
            remove_path(path)
            removed.append(path)
    return removed


def _aside(dest, suffix):
    """A write-aside name next to `dest` that keeps its whole name: .<name>.<random><suffix>."""
    return aside_name(dest.with_name(dest.name + suffix))


def _convert(source, dest, resolution, transform, resize_filter, labels, shards, on_error, max_images,
             overwrite, description, progress, max_label_size):
    """convert_dataset's work, holding the lock of `dest`."""
    try:
        source_files = ImageSource(source)
    except (FileNotFoundError, ValueError) as error:
        raise DatasetError(str(error)) from error
    with source_files:
        names = source_files.names[:max_images]
        if not names:
            raise DatasetError(f"{source} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        label_map = _load_labels(source_files, labels, max_label_size)
        skipped = []

        def reject(name, reason):
            if on_error == "fail":
                raise DatasetError(f"{name}: {reason} (--on_error=skip leaves such images out)")
            skipped.append((name, reason))

        accepted = _scan(source_files, names, label_map, reject, progress)
        if transform == "none":
            resolution, accepted = _decide_resolution(accepted, resolution, reject)
        if not accepted:
            raise DatasetError(_nothing_usable(skipped))
        channels = 1 if all(images.is_grayscale(image.mode) for image in accepted) else 3
        if shards is None:
            source_bytes = sum(source_files.file_size(image.name) for image in accepted)
            shards = math.ceil(source_bytes / SOURCE_BYTES_PER_SHARD)
        shards = max(1, min(shards, len(accepted)))
        plan = _Plan(resolution=resolution, channels=channels, transform=transform,
                     resize_filter=resize_filter, shards=shards,
                     label_size=0 if label_map is None else max(label_map.values(), default=-1) + 1,
                     source=description if description is not None else str(source))
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = _aside(dest, ".partial")  # created inside the try: nothing leaks
        try:
            partial.mkdir()
            metadata = _write(source_files, accepted, partial, plan, reject, progress)
            if metadata is None:
                raise DatasetError(_nothing_usable(skipped))
            metadata["skipped"] = [{"file": name, "reason": reason} for name, reason in skipped]
            (partial / records.METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
            _publish(partial, dest, overwrite)
        finally:
            if partial.exists():
                shutil.rmtree(partial)
    return ConversionResult(dest=dest, metadata=metadata, skipped=skipped)


def _check_arguments(resolution, transform, resize_filter, on_error, shards, max_images):
    if transform not in images.TRANSFORMS:
        raise DatasetError(f"unknown transform {transform!r}; expected one of {images.TRANSFORMS}")
    if resize_filter not in images.RESIZE_FILTERS:
        raise DatasetError(f"unknown resize filter {resize_filter!r}; "
                           f"expected one of {tuple(images.RESIZE_FILTERS)}")
    if on_error not in ON_ERROR:
        raise DatasetError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if resolution is not None:
        _check_resolution(resolution, "resolution")
    elif transform != "none":
        raise DatasetError(f"transform {transform} needs a resolution")
    if shards is not None and shards < 1:
        raise DatasetError(f"shards must be at least 1, got {shards}")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"max_images must be at least 1, got {max_images}")


def _check_resolution(resolution, what):
    if not is_resolution(resolution):
        raise DatasetError(f"{what} {resolution} is not a power of two (>= {MIN_RESOLUTION}); "
                           "StyleGAN2 needs square power-of-two images")


def _check_dest(dest, overwrite):
    blocking = next((p for p in dest.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise DatasetError(f"destination {dest} cannot be created: {blocking} is a file")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise DatasetError(f"destination {dest} exists and is not a folder")
    if any(dest.iterdir()) and not overwrite:
        raise DatasetError(f"destination {dest} exists and is not empty (overwrite to replace it)")


def _load_labels(source_files, labels, max_label_size):
    """{relative name: class} from a dataset.json (path `labels`, or the source's own), or None."""
    if labels is not None:
        where = str(labels)
        try:
            with open(labels, "rb") as file:
                data = file.read(MAX_LABELS_BYTES + 1)
            if len(data) > MAX_LABELS_BYTES:
                raise DatasetError(_labels_too_large(where))
            text = data.decode()
        except (OSError, UnicodeDecodeError) as error:
            raise DatasetError(f"cannot read labels {labels}: {error}") from error
    elif source_files.has(LABELS_FILE):
        where = f"{source_files.path}/{LABELS_FILE}"
        if (source_files.file_size(LABELS_FILE) or 0) > MAX_LABELS_BYTES:
            raise DatasetError(_labels_too_large(where))
        try:
            text = source_files.read(LABELS_FILE, MAX_LABELS_BYTES).decode()
        except (UnicodeDecodeError, ImageError) as error:
            raise DatasetError(f"cannot read labels {where}: {error}") from error
    else:
        return None
    try:
        entries = json.loads(text)["labels"]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{where}: expected {{\"labels\": [[\"path\", class], ...]}}: {error}") from error
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise DatasetError(f"{where}: \"labels\" must be a list of [\"path\", class] entries")
    label_map = {}
    for entry in entries:
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                or not isinstance(entry[1], int) or isinstance(entry[1], bool) or entry[1] < 0):
            raise DatasetError(f"{where}: expected [\"path\", class >= 0] entries, got {entry!r}")
        if entry[0] in label_map:
            raise DatasetError(f"{where}: {entry[0]} is listed twice (classes {label_map[entry[0]]} and {entry[1]})")
        if entry[1] >= max_label_size:
            raise DatasetError(f"{where}: label {entry[1]} of {entry[0]} makes {entry[1] + 1:,} classes, more "
                               f"than --max_label_size={max_label_size:,} (training holds one-hot labels "
                               "of that size); raise --max_label_size if the classes are real")
        label_map[entry[0]] = entry[1]
    missing = [name for name in label_map if not source_files.has(name)]
    if missing:
        raise DatasetError(f"{where} names {len(missing)} file(s) missing from {source_files.path}: "
                           f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return label_map


def _labels_too_large(where):
    return (f"{where} is larger than {MAX_LABELS_BYTES >> 20} MiB, more than the labels of any "
            "dataset need (about 30 bytes per image); not reading it")


def _scan(source_files, names, label_map, reject, progress):
    """[_Accepted] for the files whose header reads and that have a label when labels are given."""
    accepted = []
    for name in tqdm(names, desc="scanning", unit="img", disable=not progress):
        if label_map is not None and name not in label_map:
            reject(name, "no label in the labels file")
            continue
        try:
            with source_files.open(name) as file:
                mode, size = images.probe(file)
        except ImageError as error:
            reject(name, str(error))
            continue
        label = records.NO_LABEL if label_map is None else label_map[name]
        accepted.append(_Accepted(name, mode, size, label))
    return accepted


def _decide_resolution(accepted, resolution, reject):
    """(resolution, the images usable at it) for transform "none".

    Every image must be `resolution` x `resolution`; without a resolution, the
    most common size among the square power-of-two (>= 4) ones is the dataset's
    (ties: the first in name order). The others are rejected with the reason and
    the --transform/--resolution that would convert them. Returns resolution None
    when no image is usable.
    """
    reference = None  # the first image of the inferred size
    if resolution is None:
        sizes = collections.Counter(image.size for image in accepted
                                    if image.size[0] == image.size[1] and is_resolution(image.size[0]))
        if sizes:
            size = sizes.most_common(1)[0][0]
            reference = next(image for image in accepted if image.size == size)
            resolution = size[0]
    usable = []
    for image in accepted:
        problem = _size_problem(image.size, resolution, reference)
        if problem is None:
            usable.append(image)
        else:
            reject(image.name, problem)
    return resolution, usable


def _size_problem(size, resolution, reference):
    """Why an image of `size` cannot go as it is into a dataset of `resolution` (None: it can).

    `reference` is the image whose size fixed the resolution when it was not
    given (None when it was given, or when no image fits the size rule).
    """
    width, height = size
    if resolution is not None and size == (resolution, resolution):
        return None
    if resolution is not None and reference is None:  # a given resolution
        return (f"size {_size(size)} is not {resolution}x{resolution} (--resolution={resolution}); "
                + _size_fix(size, resolution))
    suggested = resolution or max(MIN_RESOLUTION, 1 << (min(width, height).bit_length() - 1))
    if width != height:
        return f"size {_size(size)} is not square ({_SIZE_RULE}); " + _size_fix(size, suggested)
    if not is_resolution(width):
        problem = "too small" if width < MIN_RESOLUTION else "not a power of two"
        return f"size {_size(size)} is {problem} ({_SIZE_RULE}); " + _size_fix(size, suggested)
    return (f"size {_size(size)} differs from {reference.name}'s {_size(reference.size)}, the most "
            f"common size; convert all images to one size with --transform=center-crop "
            f"--resolution={resolution}")


def _size_fix(size, resolution):
    """The transform that makes an image of `size` into `resolution` x `resolution`, as flags."""
    width, height = size
    fix = f"{'resize' if width == height else 'crop'} it with --transform=center-crop --resolution={resolution}"
    if width > height:
        fix += f" or, for a 2:1 band between black bars, --transform=center-crop-wide --resolution={resolution}"
    return fix


def _nothing_usable(skipped):
    name, reason = skipped[0]
    return f"no usable images: all {len(skipped)} were skipped, the first as {name}: {reason}"


def _size(size):
    return f"{size[0]}x{size[1]}"


def _write(source_files, accepted, folder, plan, reject, progress):
    """Writes the shards of `accepted` into `folder`; returns the metadata dict (less 'skipped'),
    or None when every image was rejected."""
    shards = plan.shards
    passthrough_mode = "L" if plan.channels == 1 else "RGB"
    checksum = records.new_checksum()
    shard_checksums = [records.new_checksum() for _ in range(shards)]
    files, labels = [], []
    writers = [tf.io.TFRecordWriter(str(folder / records.shard_name(i, shards))) for i in range(shards)]
    try:
        for image in tqdm(accepted, desc="converting", unit="img", disable=not progress):
            try:
                data = source_files.read(image.name, images.max_file_bytes(plan.resolution))
                pixels, file_format = images.decode(data, plan.channels, plan.resolution)
                if (file_format != "JPEG" or image.mode != passthrough_mode
                        or images.changes_geometry(image.size, plan.transform, plan.resolution)):
                    pixels = images.apply_transform(pixels, plan.transform, plan.resolution,
                                                    plan.resize_filter)
                    data = images.encode_png(pixels)
            except ImageError as error:
                reject(image.name, str(error))
                continue
            record = records.serialize_example(data, image.label)
            writers[len(files) % shards].write(record)
            checksum.update(record)
            shard_checksums[len(files) % shards].update(record)
            files.append(image.name)
            labels.append(image.label)
    finally:
        for writer in writers:
            writer.close()
    if not files:
        return None
    return {
        "format": records.FORMAT,
        "format_version": records.FORMAT_VERSION,
        "image_count": len(files),
        "resolution": plan.resolution,
        "channels": plan.channels,
        "label_size": plan.label_size,
        "labels": labels if plan.label_size else None,
        "files": files,
        "checksum": {"algorithm": "sha256", "value": checksum.hexdigest()},
        "source": plan.source,
        "transform": plan.transform,
        "resize_filter": plan.resize_filter,
        "shards": [{"file": records.shard_name(i, shards), "records": len(files[i::shards]),
                    "bytes": (folder / records.shard_name(i, shards)).stat().st_size,
                    "sha256": shard_checksums[i].hexdigest()}
                   for i in range(shards)],
    }


def _publish(partial, dest, overwrite):
    """Renames the finished folder `partial` to `dest`, replacing an empty or (overwrite) any folder."""
    _check_dest(dest, overwrite)
    if not dest.exists():
        os.replace(partial, dest)
        return
    old = _aside(dest, ".old")
    os.replace(dest, old)
    os.replace(partial, dest)
    shutil.rmtree(old)
