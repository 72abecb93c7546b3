"""Dataset conversion (stylegan2_tf.data.convert), scripts/dataset_tool.py and the built-in dataset."""

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylegan2_tf.data import convert, records
from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.data.convert import DatasetError, convert_dataset

REPO = Path(__file__).resolve().parents[2]


def pixels(shape, seed):
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def save(path, array, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return array


def read_records(dest):
    """[(image bytes, label)] of a converted dataset, in conversion order."""
    metadata = json.loads((dest / "metadata.json").read_text())
    shards = []
    for shard in metadata["shards"]:
        shards.append([tf.io.parse_single_example(record, records.FEATURES)
                       for record in tf.data.TFRecordDataset(str(dest / shard["file"]))])
    count = metadata["image_count"]
    examples = [shards[i % len(shards)][i // len(shards)] for i in range(count)]
    return [(example["image"].numpy(), int(example["label"])) for example in examples]


def decoded(data):
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture
def mixed(tmp_path):
    """A folder of 16x16 images: RGB PNG, RGB JPEG, RGBA WebP, grayscale BMP and PNG."""
    source = tmp_path / "mixed"
    arrays = {
        "a.png": save(source / "a.png", pixels([16, 16, 3], 0)),
        "sub/b.jpg": save(source / "sub" / "b.jpg", pixels([16, 16, 3], 1), quality=90),
        "sub/c.webp": save(source / "sub" / "c.webp", pixels([16, 16, 4], 2), lossless=True),
        "d.bmp": save(source / "d.bmp", pixels([16, 16], 3)),
        "e.png": save(source / "e.png", pixels([16, 16], 4)),
    }
    (source / "notes.txt").write_text("not an image")
    return source, arrays


def test_mixed_folder_converts_with_the_channel_rule(mixed, tmp_path):
    source, arrays = mixed
    result = convert_dataset(source, tmp_path / "out", progress=False)
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata == result.metadata
    assert metadata["files"] == ["a.png", "d.bmp", "e.png", "sub/b.jpg", "sub/c.webp"]
    assert (metadata["image_count"], metadata["resolution"], metadata["channels"]) == (5, 16, 3)
    assert (metadata["format"], metadata["format_version"]) == (records.FORMAT, records.FORMAT_VERSION)
    assert metadata["label_size"] == 0 and metadata["labels"] is None and metadata["skipped"] == []
    shard = tmp_path / "out" / "data-00000-of-00001.tfrecord"
    found = read_records(tmp_path / "out")
    payloads = [records.serialize_example(data, label) for data, label in found]
    assert metadata["shards"] == [{"file": shard.name, "records": 5, "bytes": shard.stat().st_size,
                                   "sha256": hashlib.sha256(b"".join(payloads)).hexdigest()}]
    assert [label for _, label in found] == [-1] * 5
    images = dict(zip(metadata["files"], (data for data, _ in found)))
    np.testing.assert_array_equal(decoded(images["a.png"]), arrays["a.png"])
    for gray in ("d.bmp", "e.png"):  # grayscale repeated over RGB
        np.testing.assert_array_equal(decoded(images[gray]), np.repeat(arrays[gray][..., None], 3, -1))
    assert images["sub/b.jpg"] == (source / "sub" / "b.jpg").read_bytes()  # JPEG kept as is
    rgba = arrays["sub/c.webp"].astype(np.uint32)
    composited = (rgba[..., :3] * rgba[..., 3:] + 127) // 255  # alpha over black
    np.testing.assert_array_equal(decoded(images["sub/c.webp"]), composited)
    assert metadata["checksum"]["value"] == hashlib.sha256(b"".join(payloads)).hexdigest()


def test_grayscale_dataset_has_one_channel_and_keeps_gray_jpegs(tmp_path):
    gray = save(tmp_path / "src" / "a.png", pixels([8, 8], 0))
    save(tmp_path / "src" / "b.jpg", pixels([8, 8], 1))
    metadata = convert_dataset(tmp_path / "src", tmp_path / "out", progress=False).metadata
    assert metadata["channels"] == 1
    (png, _), (jpeg, _) = read_records(tmp_path / "out")
    np.testing.assert_array_equal(decoded(png), gray)
    assert jpeg == (tmp_path / "src" / "b.jpg").read_bytes()


def test_conversion_is_deterministic_and_zip_matches_folder(mixed, tmp_path):
    source, _ = mixed
    first = convert_dataset(source, tmp_path / "one", shards=2, progress=False)
    convert_dataset(source, tmp_path / "two", shards=2, progress=False)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == ["data-00000-of-00002.tfrecord", "data-00001-of-00002.tfrecord", "metadata.json"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(source.rglob("*")):
            zipped.write(path, path.relative_to(source).as_posix())
    zipped_result = convert_dataset(archive, tmp_path / "zip", shards=2, progress=False)
    assert zipped_result.metadata["checksum"] == first.metadata["checksum"]
    assert zipped_result.metadata["files"] == first.metadata["files"]


def test_center_crop_resizes_with_the_chosen_filter(tmp_path):
    source = save(tmp_path / "src" / "a.png", pixels([24, 32, 3], 0))  # 32 wide, 24 high
    expected = {}
    for name in ("box", "lanczos"):
        convert_dataset(tmp_path / "src", tmp_path / name, resolution=8, transform="center-crop",
                        resize_filter=name, progress=False)
        square = Image.fromarray(source[:, 4:28])
        expected[name] = np.asarray(square.resize((8, 8), getattr(Image.Resampling, name.upper())))
        np.testing.assert_array_equal(decoded(read_records(tmp_path / name)[0][0]), expected[name])
    assert not np.array_equal(expected["box"], expected["lanczos"])


def test_center_crop_wide_puts_a_two_to_one_band_between_black_bars(tmp_path):
    source = save(tmp_path / "src" / "a.png", pixels([20, 32, 3], 0))  # crops to 32x16
    convert_dataset(tmp_path / "src", tmp_path / "out", resolution=16, transform="center-crop-wide",
                    progress=False)
    image = decoded(read_records(tmp_path / "out")[0][0])
    band = np.asarray(Image.fromarray(source[2:18]).resize((16, 8), Image.Resampling.BOX))
    np.testing.assert_array_equal(image[4:12], band)
    assert image[:4].max() == 0 and image[12:].max() == 0


def test_labels_from_the_source_or_a_file(tmp_path):
    for i in range(3):
        save(tmp_path / "src" / f"{i}.png", pixels([8, 8], i))
    labels = {"labels": [["0.png", 4], ["1.png", 0], ["2.png", 2]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    from_file = convert_dataset(tmp_path / "src", tmp_path / "a", labels=tmp_path / "labels.json",
                                progress=False).metadata
    assert from_file["label_size"] == 5 and from_file["labels"] == [4, 0, 2]
    assert [label for _, label in read_records(tmp_path / "a")] == [4, 0, 2]
    (tmp_path / "src" / "dataset.json").write_text(json.dumps(labels))
    in_source = convert_dataset(tmp_path / "src", tmp_path / "b", progress=False).metadata
    assert in_source["labels"] == [4, 0, 2] and in_source["checksum"] == from_file["checksum"]


def test_shards_round_robin_and_max_images(tmp_path):
    for i in range(7):
        save(tmp_path / "src" / f"{i}.png", pixels([8, 8], i))
    metadata = convert_dataset(tmp_path / "src", tmp_path / "out", shards=3, max_images=5,
                               progress=False).metadata
    assert metadata["image_count"] == 5 and metadata["files"] == [f"{i}.png" for i in range(5)]
    assert [shard["records"] for shard in metadata["shards"]] == [2, 2, 1]
    assert len(read_records(tmp_path / "out")) == 5


@pytest.fixture
def broken(tmp_path):
    """A folder with two good 8x8 images, a corrupt, a truncated and a 16x16 one."""
    source = tmp_path / "src"
    save(source / "a.png", pixels([8, 8, 3], 0))
    save(source / "b.png", pixels([8, 8, 3], 1))
    (source / "c.png").write_bytes(b"\x89PNG not really")
    truncated = io.BytesIO()
    Image.fromarray(pixels([8, 8, 3], 2)).save(truncated, format="PNG")
    (source / "d.png").write_bytes(truncated.getvalue()[:-100])  # cut inside the pixel data
    save(source / "e.png", pixels([16, 16, 3], 3))
    return source


def test_skip_reports_each_unusable_image(broken, tmp_path):
    result = convert_dataset(broken, tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["image_count"] == 2 and result.metadata["files"] == ["a.png", "b.png"]
    assert len(read_records(tmp_path / "out")) == 2
    reasons = dict(result.skipped)
    assert sorted(reasons) == ["c.png", "d.png", "e.png"]
    assert "cannot read image" in reasons["c.png"]
    assert "truncated" in reasons["d.png"]
    assert reasons["e.png"] == ("size 16x16 differs from a.png's 8x8, the most common size; convert all "
                                "images to one size with --transform=center-crop --resolution=8")
    assert result.metadata["skipped"] == [{"file": f, "reason": r} for f, r in result.skipped]


@pytest.mark.parametrize("remove,message", [
    (["c.png", "e.png"], "d.png: cannot decode image: image file is truncated"),
    (["d.png", "e.png"], "c.png: cannot read image"),
    (["c.png", "d.png"], "e.png: size 16x16 differs from a.png's 8x8"),
])
def test_bad_images_fail(broken, tmp_path, remove, message):
    for name in remove:
        (broken / name).unlink()
    with pytest.raises(DatasetError, match=message):
        convert_dataset(broken, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


RULE = "(StyleGAN2 needs square power-of-two sizes of at least 4x4)"
SKIP_HINT = " (--on_error=skip leaves such images out)"


@pytest.mark.parametrize("shape,options,reason", [
    ([8, 16], {}, (f"size 16x8 is not square {RULE}; crop it with --transform=center-crop --resolution=8 "
                   "or, for a 2:1 band between black bars, --transform=center-crop-wide --resolution=8")),
    ([16, 8], {}, f"size 8x16 is not square {RULE}; crop it with --transform=center-crop --resolution=8"),
    ([12, 12], {}, (f"size 12x12 is not a power of two {RULE}; resize it with --transform=center-crop "
                    "--resolution=8")),
    ([2, 2], {}, f"size 2x2 is too small {RULE}; resize it with --transform=center-crop --resolution=4"),
    ([8, 8], {"resolution": 16}, ("size 8x8 is not 16x16 (--resolution=16); resize it with "
                                  "--transform=center-crop --resolution=16")),
])
def test_image_size_errors_name_the_file_and_the_fix(tmp_path, shape, options, reason):
    save(tmp_path / "src" / "a.png", pixels(shape, 0))
    with pytest.raises(DatasetError) as raised:
        convert_dataset(tmp_path / "src", tmp_path / "out", progress=False, **options)
    assert str(raised.value) == f"a.png: {reason}{SKIP_HINT}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("options,message", [
    ({"resolution": 24, "transform": "center-crop"}, "resolution 24 is not a power of two"),
    ({"transform": "center-crop"}, "needs a resolution"),
])
def test_settings_errors_are_not_skipped(tmp_path, options, message):
    save(tmp_path / "src" / "a.png", pixels([8, 8], 0))
    with pytest.raises(DatasetError, match=message):
        convert_dataset(tmp_path / "src", tmp_path / "out", on_error="skip", progress=False, **options)


@pytest.mark.parametrize("sizes,files,rejected", [
    # the most common square power-of-two size is the dataset's; a tie goes to the first name
    ({"a.png": 16, "b.png": 8, "c.png": 8}, ["b.png", "c.png"],
     {"a.png": "size 16x16 differs from b.png's 8x8"}),
    ({"a.png": 16, "b.png": 8}, ["a.png"], {"b.png": "size 8x8 differs from a.png's 16x16"}),
    # unusable sizes never fix the dataset's, however common
    ({"a.png": 12, "b.png": 12, "c.png": 8}, ["c.png"],
     {"a.png": "size 12x12 is not a power of two", "b.png": "size 12x12 is not a power of two"}),
])
def test_inferred_size_and_skipped_sizes(tmp_path, sizes, files, rejected):
    for index, (name, side) in enumerate(sizes.items()):
        save(tmp_path / "src" / name, pixels([side, side], index))
    result = convert_dataset(tmp_path / "src", tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["files"] == files and result.metadata["image_count"] == len(files)
    assert result.metadata["resolution"] == sizes[files[0]]
    assert sorted(name for name, _ in result.skipped) == sorted(rejected)
    for name, reason in result.skipped:
        assert reason.startswith(rejected[name]), reason
    assert len(read_records(tmp_path / "out")) == len(files)


def test_zip_errors_name_the_path_inside_the_archive(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, side in (("faces/a.png", 8), ("faces/b.png", 8), ("faces/odd/c.png", 20)):
            buffer = io.BytesIO()
            Image.fromarray(pixels([side, side, 3], side)).save(buffer, format="PNG")
            zipped.writestr(name, buffer.getvalue())
    with pytest.raises(DatasetError) as raised:
        convert_dataset(archive, tmp_path / "out", progress=False)
    assert str(raised.value) == (f"faces/odd/c.png: size 20x20 is not a power of two {RULE}; resize it with "
                                 f"--transform=center-crop --resolution=8{SKIP_HINT}")
    result = convert_dataset(archive, tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["files"] == ["faces/a.png", "faces/b.png"]
    assert [name for name, _ in result.skipped] == ["faces/odd/c.png"]


def test_nothing_usable_gives_the_first_reason(tmp_path):
    for name in ("a.png", "b.png"):
        save(tmp_path / "src" / name, pixels([20, 20], 0))
    with pytest.raises(DatasetError) as raised:
        convert_dataset(tmp_path / "src", tmp_path / "out", on_error="skip", progress=False)
    assert str(raised.value) == (f"no usable images: all 2 were skipped, the first as a.png: size 20x20 is "
                                 f"not a power of two {RULE}; resize it with --transform=center-crop "
                                 "--resolution=16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_source_and_label_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        convert_dataset(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(DatasetError, match="does not exist"):
        convert_dataset(tmp_path / "missing", tmp_path / "out", progress=False)
    save(tmp_path / "src" / "a.png", pixels([8, 8], 0))
    save(tmp_path / "src" / "b.png", pixels([8, 8], 1))
    (tmp_path / "labels.json").write_text(json.dumps({"labels": [["a.png", 0], ["gone.png", 1]]}))
    with pytest.raises(DatasetError, match="names 1 file.* missing .*gone.png"):
        convert_dataset(tmp_path / "src", tmp_path / "out", labels=tmp_path / "labels.json", progress=False)
    (tmp_path / "labels.json").write_text(json.dumps({"labels": [["a.png", 0]]}))
    with pytest.raises(DatasetError, match="b.png: no label"):
        convert_dataset(tmp_path / "src", tmp_path / "out", labels=tmp_path / "labels.json", progress=False)
    (tmp_path / "labels.json").write_text(json.dumps({"labels": [["a.png", "cat"]]}))
    with pytest.raises(DatasetError, match="class >= 0"):
        convert_dataset(tmp_path / "src", tmp_path / "out", labels=tmp_path / "labels.json", progress=False)
    assert not (tmp_path / "out").exists()


def test_interrupted_conversion_leaves_nothing(mixed, tmp_path, monkeypatch):
    source, _ = mixed
    encode_png = convert.images.encode_png
    calls = []

    def failing_encode(image):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return encode_png(image)

    monkeypatch.setattr(convert.images, "encode_png", failing_encode)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(source, tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed"]


def test_existing_dest_is_kept_unless_empty_or_overwrite(mixed, tmp_path):
    source, _ = mixed
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="exists and is not empty"):
        convert_dataset(source, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    convert_dataset(source, tmp_path / "out", overwrite=True, progress=False)
    assert not (tmp_path / "out" / "keep.txt").exists()
    (tmp_path / "empty").mkdir()
    convert_dataset(source, tmp_path / "empty", progress=False)
    assert (tmp_path / "empty" / "metadata.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mixed", "out"]


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / "dataset_tool.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


def test_script_end_to_end(broken, tmp_path):
    result = run_tool(f"--source={broken}", f"--dest={tmp_path / 'out'}", "--on_error=skip", "--shards=2")
    assert result.returncode == 0, result.stderr
    assert "skipped c.png: cannot read image" in result.stdout
    assert "skipped e.png: size 16x16" in result.stdout
    assert "wrote 2 images (8x8, 3 channel(s), 0 classes)" in result.stdout
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["image_count"] == 2
    failed = run_tool(f"--source={broken}", f"--dest={tmp_path / 'fail'}", "--resolution=12",
                      "--on_error=skip")  # a bad setting is no skippable image
    assert failed.returncode != 0
    assert "resolution 12 is not a power of two" in failed.stderr
    assert not (tmp_path / "fail").exists()


def error_line(result):
    """The usage error of a failed run: its last stderr line but cli.run's pointer to --help,
    less the `dataset_tool.py: error: ` prefix."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line != "Run with --help for usage."]
    return lines[-1].removeprefix("dataset_tool.py: error: ")


@pytest.fixture
def sizes(tmp_path):
    """Two 8x8 images, and 16x16, 12x12 and (in sub/) 16x8 ones."""
    source = tmp_path / "src"
    for index, (name, shape) in enumerate([("a.png", [8, 8, 3]), ("b.png", [8, 8, 3]), ("c.png", [16, 16, 3]),
                                           ("d.png", [12, 12, 3]), ("sub/e.png", [8, 16, 3])]):
        save(source / name, pixels(shape, index))
    return source


def test_script_mixed_sizes_fail_or_skip(sizes, tmp_path):
    failed = run_tool(f"--source={sizes}", f"--dest={tmp_path / 'out'}")
    assert failed.returncode != 0
    assert error_line(failed) == ("c.png: size 16x16 differs from a.png's 8x8, the most common size; convert "
                                  f"all images to one size with --transform=center-crop --resolution=8{SKIP_HINT}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no partial folder

    result = run_tool(f"--source={sizes}", f"--dest={tmp_path / 'out'}", "--on_error=skip")
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped ")]
    assert [re.match(r"skipped (\S+): size (\S+) ", line).groups() for line in skipped] == [
        ("c.png", "16x16"), ("d.png", "12x12"), ("sub/e.png", "16x8")]
    assert f"skipped d.png: size 12x12 is not a power of two {RULE}; resize it" in result.stdout
    assert f"skipped sub/e.png: size 16x8 is not square {RULE}; crop it" in result.stdout
    assert "wrote 2 images (8x8, 3 channel(s), 0 classes)" in result.stdout
    assert "; skipped 3 (listed above and in metadata.json)" in result.stdout
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["image_count"] == 2 and metadata["files"] == ["a.png", "b.png"]
    assert [entry["file"] for entry in metadata["skipped"]] == ["c.png", "d.png", "sub/e.png"]
    assert len(read_records(tmp_path / "out")) == 2


def test_script_suggests_the_transform_for_non_power_of_two_images(tmp_path):
    for index in range(3):
        save(tmp_path / "src" / f"{index}.png", pixels([20, 20, 3], index))
    failed = run_tool(f"--source={tmp_path / 'src'}", f"--dest={tmp_path / 'out'}")
    assert failed.returncode != 0
    assert error_line(failed) == (f"0.png: size 20x20 is not a power of two {RULE}; resize it with "
                                  f"--transform=center-crop --resolution=16{SKIP_HINT}")
    assert not (tmp_path / "out").exists()
    fixed = run_tool(f"--source={tmp_path / 'src'}", f"--dest={tmp_path / 'out'}", "--transform=center-crop",
                     "--resolution=16")  # the suggested fix works
    assert fixed.returncode == 0, fixed.stderr
    assert "wrote 3 images (16x16, 3 channel(s), 0 classes)" in fixed.stdout and "skipped" not in fixed.stdout


def test_builtin_digits(tmp_path):
    dest = digits_dataset(tmp_path, resolution=16)
    metadata = records.read_metadata(dest)
    assert (metadata["image_count"], metadata["resolution"], metadata["channels"]) == (1797, 16, 1)
    assert metadata["label_size"] == 10 and sorted(set(metadata["labels"])) == list(range(10))
    first, label = read_records(dest)[0]
    assert decoded(first).shape == (16, 16) and label == 0
    stamp = (dest / "metadata.json").stat().st_mtime_ns
    assert digits_dataset(tmp_path, resolution=16) == dest  # cached
    assert (dest / "metadata.json").stat().st_mtime_ns == stamp
