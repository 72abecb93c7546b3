"""Hostile datasets and sources: typed metadata, bounded images and zip members, sane labels.

Every fault ends as one clear error (or, for an image, a skip reason) naming the file and the
problem. The limits are lowered (monkeypatch) so the bombs stay a few kilobytes.
"""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan2_tf.data import images, records
from stylegan2_tf.data.convert import DatasetError, convert_dataset
from stylegan2_tf.data.pipeline import make_dataset
from stylegan2_tf.data.records import DatasetFormatError, read_metadata
from stylegan2_tf.data.sources import ImageSource, printable

REPO = Path(__file__).resolve().parents[2]


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def noise(shape, seed=0):
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def write_images(folder, count=4, side=8):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i}.png").write_bytes(png_bytes(noise([side, side, 3], i)))
    return folder


def run_tool(*args, **env):
    environment = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "dataset_tool.py"), *args], cwd=REPO,
                          env=environment, capture_output=True, text=True, check=False)


# --------------------------------------------------------------------------------------
# 6. Typed metadata.


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A converted 4-image labelled dataset in 2 shards, and its metadata."""
    root = tmp_path_factory.mktemp("typed")
    source = write_images(root / "src")
    labels = root / "dataset.json"
    labels.write_text(json.dumps({"labels": [[f"{i}.png", i % 2] for i in range(4)]}))
    result = convert_dataset(source, root / "data", labels=labels, shards=2, progress=False)
    return root / "data", result.metadata


def _with(dataset, tmp_path, **changes):
    """A copy of the dataset folder whose metadata.json has `changes` (None removes a key)."""
    folder, metadata = dataset
    copy = tmp_path / "copy"
    copy.mkdir()
    for shard in folder.glob("*.tfrecord"):
        (copy / shard.name).write_bytes(shard.read_bytes())
    edited = {**metadata, **changes}
    (copy / records.METADATA_FILE).write_text(json.dumps(edited))
    return copy


SHARD = "data-00000-of-00002.tfrecord"


@pytest.mark.parametrize("changes, message", [
    ({"resolution": "32"}, r"resolution must be an integer, got '32' \(str\)"),
    ({"resolution": 32.0}, r"resolution must be an integer, got 32.0 \(float\)"),
    ({"resolution": 24}, "resolution must be a power of two >= 4, got 24"),
    ({"image_count": "4"}, r"image_count must be an integer, got '4' \(str\)"),
    ({"image_count": True}, r"image_count must be an integer, got True \(bool\)"),
    ({"channels": "3"}, r"channels must be an integer, got '3' \(str\)"),
    ({"channels": 2}, "channels must be 1 or 3, got 2"),
    ({"label_size": 2**31}, r"label_size must be in \[0, 2147483647\], got 2147483648"),
    ({"label_size": "2"}, r"label_size must be an integer, got '2' \(str\)"),
    ({"labels": [0, 1, 0, 2**40]}, r"label 1099511627776 is not a class in \[0, label_size=2\)"),
    ({"labels": [0, 1, 0, "1"]}, r"label '1' is not a class"),
    ({"labels": [0, 1]}, r"labels must be null or a list of 4 classes"),
    ({"shards": "data-00000-of-00001.tfrecord"}, "shards must be a non-empty list"),
    ({"shards": []}, "shards must be a non-empty list"),
    ({"shards": [SHARD]}, "each shard must be"),
    ({"shards": [{"file": 5, "records": 4}]}, "each shard must be"),
    ({"shards": [{"file": "/etc/passwd", "records": 4}]},
     "shard '/etc/passwd' is not a file name inside the dataset folder"),
    ({"shards": [{"file": "../data/" + SHARD, "records": 4}]}, "is not a file name inside the dataset folder"),
    ({"shards": [{"file": "..", "records": 4}]}, "shard '..' is not a file name inside"),
    ({"shards": [{"file": SHARD, "records": 2}, {"file": SHARD, "records": 2}]}, "listed twice"),
    ({"shards": [{"file": SHARD, "records": "4"}]}, rf"shard {SHARD}: records must be an integer, got '4'"),
    ({"shards": [{"file": SHARD, "records": -1}, {"file": SHARD.replace("0-of", "1-of"), "records": 5}]},
     "records must be >= 0, got -1"),
])
def test_mistyped_metadata_is_a_clear_error(dataset, tmp_path, changes, message):
    folder = _with(dataset, tmp_path, **changes)
    with pytest.raises(DatasetFormatError, match=message) as failure:
        read_metadata(folder)
    assert str(failure.value).startswith(f"{folder}/metadata.json: "), failure.value
    assert isinstance(failure.value, ValueError)


def test_the_pipeline_refuses_an_absolute_shard_path_before_reading_it(dataset, tmp_path):
    folder = _with(dataset, tmp_path, shards=[{"file": "/etc/passwd", "records": 4}])
    with pytest.raises(ValueError, match="'/etc/passwd' is not a file name inside the dataset folder"):
        make_dataset(folder, 2, seed=0)


def test_undecodable_and_deeply_nested_json(dataset, tmp_path):
    folder = _with(dataset, tmp_path)
    for text in ("[" * 100_000 + "]" * 100_000, '{"resolution": 1' + "0" * 5000 + "}"):
        (folder / records.METADATA_FILE).write_text(text)
        with pytest.raises(DatasetFormatError, match=r"metadata.json is not valid JSON"):
            read_metadata(folder)
    (folder / records.METADATA_FILE).write_bytes(b"\xff\xfe{")
    with pytest.raises(DatasetFormatError, match="is not valid JSON"):
        read_metadata(folder)


def test_a_well_formed_dataset_still_reads(dataset):
    folder, metadata = dataset
    assert read_metadata(folder) == metadata
    assert metadata["label_size"] == 2 and metadata["labels"] == [0, 1, 0, 1]


# --------------------------------------------------------------------------------------
# 8. Images: memory per image bounded by the resolution.


@pytest.fixture
def small_pixel_limit(monkeypatch):
    """max_pixels(R) = max(1000, 16 R^2): 1000 pixels up to R = 7, 1024 at R = 8."""
    monkeypatch.setattr(images, "MIN_PIXEL_LIMIT", 1000)
    assert images.max_pixels(4) == 1000 and images.max_pixels(8) == 1024


def test_limits_follow_the_resolution():
    assert images.max_pixels(256) == 1 << 25  # the floor: a 33.5-megapixel photo
    assert images.max_pixels(4096) == 16 * 4096 * 4096
    assert images.max_file_bytes(256) == 8 * (1 << 25) + (1 << 20)


def test_a_png_over_the_pixel_limit_is_refused_before_decoding(small_pixel_limit, tmp_path):
    big = png_bytes(np.zeros([40, 40, 3], np.uint8))  # 1600 pixels, a few hundred bytes
    with pytest.raises(images.ImageError, match=r"^40x40 is 1,600 pixels, more than the 1,000 decoded "
                                                r"for a 4x4 dataset \(16 per output pixel, at least 1,000\)"):
        images.decode(big, 3, resolution=4)
    assert images.decode(big, 3)[0].shape == (40, 40, 3)  # no resolution: no limit
    source = write_images(tmp_path / "src", count=1, side=16)
    (source / "big.png").write_bytes(big)
    result = convert_dataset(source, tmp_path / "out", resolution=4, transform="center-crop",
                             on_error="skip", progress=False)
    assert result.metadata["files"] == ["0.png"]
    reason = ("40x40 is 1,600 pixels, more than the 1,000 decoded for a 4x4 dataset (16 per output pixel, "
              "at least 1,000); shrink it first")
    assert result.skipped == [("big.png", reason)]
    with pytest.raises(DatasetError, match=r"big.png: 40x40 is 1,600 pixels.*--on_error=skip"):
        convert_dataset(source, tmp_path / "fail", resolution=4, transform="center-crop", progress=False)


def _jpeg(side):
    buffer = io.BytesIO()
    Image.fromarray(noise([side, side, 3], 7)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(small_pixel_limit, tmp_path):
    data = _jpeg(64)  # 4096 pixels
    pixels, file_format = images.decode(data, 3, resolution=8)  # 1/2 scale: 32x32 = 1024, the limit
    assert file_format == "JPEG" and pixels.shape == (32, 32, 3)
    assert images.decode(data, 3, resolution=4)[0].shape == (16, 16, 3)  # 1/2 is 1024 > 1000: 1/4
    assert images.decode(data, 3, resolution=64)[0].shape == (64, 64, 3)  # within 16 R^2: as it is
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.jpg").write_bytes(data)
    result = convert_dataset(tmp_path / "src", tmp_path / "out", resolution=8, transform="center-crop",
                             progress=False)
    assert result.metadata["image_count"] == 1 and not result.skipped


def test_a_jpeg_that_no_scale_brings_under_the_limit_is_refused(small_pixel_limit):
    # 256x256 at R = 4: 1/8 scale is 32x32 = 1024 pixels > 1000.
    with pytest.raises(images.ImageError, match=r"^256x256 is 65,536 pixels, more than the 1,000"):
        images.decode(_jpeg(256), 3, resolution=4)


def _zip_with_padded_png(path, padding):
    """ok.png, and bomb.png: a valid 8x8 PNG followed by `padding` zero bytes (deflated to little)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ok.png", png_bytes(noise([8, 8, 3], 1)))
        archive.writestr("bomb.png", png_bytes(noise([8, 8, 3], 2)) + b"\0" * padding)
    return path


def test_a_zip_member_beyond_the_file_limit_is_not_read(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "max_file_bytes", lambda resolution: 10_000)
    source = _zip_with_padded_png(tmp_path / "src.zip", 100_000)
    assert source.stat().st_size < 2_000
    result = convert_dataset(source, tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["files"] == ["ok.png"]
    name, reason = result.skipped[0]
    assert name == "bomb.png"
    assert reason.startswith("100,")
    assert reason.endswith("bytes (uncompressed) is more than the 10,000 bytes read for one image at this "
                           "resolution")
    with ImageSource(source) as files:  # the declared size decides: nothing is unpacked
        monkeypatch.setattr(files._zip, "open", lambda *a: pytest.fail("opened a member over the limit"))
        with pytest.raises(images.ImageError, match="more than the 10,000 bytes"):
            files.read("bomb.png", max_bytes=10_000)


def test_a_folder_file_beyond_the_file_limit_is_not_read(tmp_path):
    source = write_images(tmp_path / "src", count=1)
    (source / "0.png").write_bytes((source / "0.png").read_bytes() + b"\0" * 5000)
    with ImageSource(source) as files:
        with pytest.raises(images.ImageError, match="more than the 1,000 bytes read for one image"):
            files.read("0.png", max_bytes=1000)
        assert len(files.read("0.png", max_bytes=100_000)) == files.file_size("0.png")


def test_damaged_zip_members_are_skipped_with_the_reason(tmp_path):
    source = tmp_path / "src.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("a.png", "b.png", "c.png"):
            archive.writestr(name, png_bytes(np.zeros([64, 64, 3], np.uint8)) + bytes(range(256)) * 64)
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        b_info = archive.getinfo("b.png")
    b_data = b_info.header_offset + 30 + len("b.png")
    data[b_data + 2] ^= 0xFF  # damaged deflate data: the header no longer reads
    c_entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)  # central entries: a, b, c
    c_entry = data.index(b"PK\x01\x02", c_entry + 1)
    data[c_entry + 16] ^= 0xFF  # a wrong CRC: the header reads, the full read fails
    source.write_bytes(bytes(data))
    result = convert_dataset(source, tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["files"] == ["a.png"]
    reasons = dict(result.skipped)
    assert sorted(reasons) == ["b.png", "c.png"]
    assert reasons["b.png"].startswith("cannot read image: damaged zip member: "), reasons
    assert reasons["c.png"] == "cannot read it: damaged zip member: Bad CRC-32 for file 'c.png'", reasons


MODES = {
    "P with a transparent index": lambda: _png(Image.fromarray(noise([9, 11, 3])).quantize(7), transparency=3),
    "L with a transparent value": lambda: _png(Image.fromarray(noise([9, 11])), transparency=17),
    "RGB with a transparent color": lambda: _png(Image.fromarray(noise([9, 11, 3])), transparency=(1, 2, 3)),
    "RGBA": lambda: _png(Image.fromarray(noise([9, 11, 4]))),
    "LA": lambda: _png(Image.fromarray(noise([9, 11, 2]), "LA")),
    "I;16": lambda: _png(Image.fromarray(np.random.RandomState(0).randint(0, 65536, (9, 11)).astype(np.uint16))),
    "1": lambda: _png(Image.fromarray(noise([9, 11]) > 128)),
}


def _png(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(MODES))
@pytest.mark.parametrize("channels", [1, 3])
def test_the_lean_conversion_keeps_the_channel_rule(name, channels):
    """value * alpha / 255 rounded, over black; 16-bit keeps its high byte; gray repeated."""
    data = MODES[name]()
    image = Image.open(io.BytesIO(data))
    if image.mode.startswith("I"):
        image = Image.fromarray((np.asarray(image).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8))
    gray = images.is_grayscale(image.mode)
    if not gray and channels == 1:
        with pytest.raises(images.ImageError, match="color image"):
            images.decode(data, channels)
        return
    layers = np.asarray(image.convert("LA" if gray else "RGBA")).astype(np.float64)
    expected = np.floor(layers[..., :-1] * layers[..., -1:] / 255 + 0.5).astype(np.uint8)
    expected = np.repeat(expected, channels // expected.shape[-1], axis=-1)
    np.testing.assert_array_equal(images.decode(data, channels, resolution=8)[0], expected)


# --------------------------------------------------------------------------------------
# 8. and 11. Labels.


def _labelled(tmp_path, entries):
    source = write_images(tmp_path / "src", count=2)
    labels = tmp_path / "dataset.json"
    labels.write_text(json.dumps({"labels": entries}))
    return source, labels


def test_a_label_count_beyond_the_maximum_is_refused_and_the_flag_overrides_it(tmp_path):
    source, labels = _labelled(tmp_path, [["0.png", 0], ["1.png", 10**7]])
    with pytest.raises(DatasetError, match=r"dataset.json: label 10000000 of 1.png makes 10,000,001 classes, "
                                           r"more than --max_label_size=100,000 .*raise --max_label_size"):
        convert_dataset(source, tmp_path / "out", labels=labels, progress=False)
    assert not (tmp_path / "out").exists()
    result = convert_dataset(source, tmp_path / "out", labels=labels, progress=False, max_label_size=10**7 + 1)
    assert result.metadata["label_size"] == 10**7 + 1
    assert read_metadata(tmp_path / "out")["labels"] == [0, 10**7]


def test_labels_beyond_int32_cannot_be_allowed(tmp_path):
    source, labels = _labelled(tmp_path, [["0.png", 0], ["1.png", 2**40]])
    with pytest.raises(DatasetError, match=r"label 1099511627776 of 1.png makes 1,099,511,627,777 classes, "
                                           r"more than --max_label_size=2,147,483,647"):
        convert_dataset(source, tmp_path / "out", labels=labels, progress=False,
                        max_label_size=records.MAX_LABEL_SIZE)
    with pytest.raises(DatasetError, match=r"max_label_size must be in \[1, 2147483647\], got 2147483648"):
        convert_dataset(source, tmp_path / "out", labels=labels, progress=False, max_label_size=2**31)


def test_duplicate_label_entries_are_an_error(tmp_path):
    source, labels = _labelled(tmp_path, [["0.png", 0], ["1.png", 1], ["0.png", 1]])
    with pytest.raises(DatasetError, match=r"dataset.json: 0.png is listed twice \(classes 0 and 1\)"):
        convert_dataset(source, tmp_path / "out", labels=labels, progress=False)
    source, labels = _labelled(tmp_path / "same", [["0.png", 0], ["1.png", 1], ["1.png", 1]])
    with pytest.raises(DatasetError, match=r"1.png is listed twice \(classes 1 and 1\)"):
        convert_dataset(source, tmp_path / "out", labels=labels, progress=False)


def test_the_script_names_the_override_flag(tmp_path):
    source, labels = _labelled(tmp_path, [["0.png", 0], ["1.png", 10**7]])
    result = run_tool(f"--source={source}", f"--dest={tmp_path / 'out'}", f"--labels={labels}")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("dataset_tool.py: error:")]
    assert len(lines) == 1 and "more than --max_label_size=100,000" in lines[0], result.stderr
    result = run_tool(f"--source={source}", f"--dest={tmp_path / 'out'}", f"--labels={labels}",
                      "--max_label_size=10000001")
    assert result.returncode == 0, result.stderr
    assert "10000001 classes" in result.stdout


# --------------------------------------------------------------------------------------
# 11. Symbolic link loops and non-UTF-8 names.


def test_symlink_loops_broken_links_and_fifos_are_listed_as_skipped(tmp_path):
    source = write_images(tmp_path / "src", count=1)
    os.symlink("loop.png", source / "loop.png")
    os.symlink("missing.png", source / "broken.png")
    os.symlink("0.png", source / "link.png")  # a working link is an image like any other
    os.mkfifo(source / "pipe.png")
    (source / "folder.png").mkdir()  # a folder is searched, not an image
    os.symlink("nowhere", source / "notes.txt")  # not an image name: ignored
    result = convert_dataset(source, tmp_path / "out", on_error="skip", progress=False)
    assert result.metadata["files"] == ["0.png", "link.png"]
    assert result.skipped == [("broken.png", "a broken symbolic link (to missing.png)"),
                              ("loop.png", "a symbolic link loop"),
                              ("pipe.png", "not a regular file")]
    assert [entry["file"] for entry in result.metadata["skipped"]] == ["broken.png", "loop.png", "pipe.png"]
    with pytest.raises(DatasetError, match=r"^broken.png: a broken symbolic link \(to missing.png\) "
                                           r"\(--on_error=skip leaves such images out\)"):
        convert_dataset(source, tmp_path / "fail", progress=False)


def test_printable_escapes_undecodable_bytes():
    name = os.fsdecode(b"caf\xe9.png")
    assert printable(f"skipped {name}: x") == "skipped caf\\xe9.png: x"
    assert printable("plain \u00e9") == "plain \u00e9"
    assert printable("lone \ud800") == "lone \\ud800"


def test_non_utf8_names_never_crash_the_report(tmp_path):
    source = write_images(tmp_path / "src", count=2)
    os.rename(source / "1.png", os.path.join(os.fsencode(source), b"\xff\xfe.png"))
    (source / os.fsdecode(b"bad\xe9.png")).write_bytes(b"not an image")
    result = run_tool(f"--source={source}", f"--dest={tmp_path / 'out'}", "--on_error=skip",
                      PYTHONIOENCODING="utf-8")  # strict: an unescaped name would raise
    assert result.returncode == 0, result.stderr
    assert "skipped bad\\xe9.png: cannot read image" in result.stdout
    assert "wrote 2 images" in result.stdout
    metadata = read_metadata(tmp_path / "out")
    assert metadata["files"] == ["0.png", os.fsdecode(b"\xff\xfe.png")]
