"""Decoding, channel handling, cropping, resizing and encoding of single images for the converter.

Channel rule: a dataset has 1 channel when every image is grayscale (PIL modes
1, L, LA, I, I;16*), else 3 (RGB); palette images count as color. A grayscale
image in a color dataset is repeated over R, G and B. Transparency is composited
onto black: value * alpha / 255, rounded. 16-bit grayscale (modes I;16*, I) keeps
its high byte.
EXIF orientation is ignored (as NVIDIA's tools and tf.io.decode_jpeg do).

Memory per image is bounded by the dataset's resolution R: an image is decoded
only when it has at most max_pixels(R) pixels (PIXELS_PER_OUTPUT_PIXEL x R x R,
at least MIN_PIXEL_LIMIT); a larger JPEG is decoded at 1/2, 1/4 or 1/8 scale
(libjpeg's DCT scaling) when that fits and keeps its short side >= R, any other
is refused. A file is read only up to max_file_bytes(R).

Arrays are uint8 [H, W, C], C in {1, 3}.
"""

import io
import warnings

import numpy as np
from PIL import Image

GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N")
TRANSFORMS = ("none", "center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
PIXELS_PER_OUTPUT_PIXEL = 16  # a source may have 16x the pixels of a dataset image (4x its side)
MIN_PIXEL_LIMIT = 1 << 25  # 33.5 megapixels (8192x4096) for any resolution: a camera photo
BYTES_PER_PIXEL_LIMIT = 8  # an image file holds at most 8 bytes per pixel (16-bit RGBA, uncompressed)
_JPEG_SCALES = (2, 4, 8)  # libjpeg's DCT scaling, used by PIL's draft()
_FAST_MODES = ("1", "L", "P", "RGB", "CMYK", "YCbCr")  # no alpha band: converted without compositing


class ImageError(ValueError):
    """An image that cannot be used, with the reason as message."""


def probe(file):
    """(PIL mode, (width, height)) from the header of an image file object; ImageError if unreadable."""
    try:
        with warnings.catch_warnings():  # the size is checked against our own limit when decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                return image.mode, image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot read image: {error}") from error


def is_grayscale(mode):
    return mode in GRAYSCALE_MODES


def max_pixels(resolution):
    """The most pixels a source image may have to be decoded for a dataset of `resolution`."""
    return max(MIN_PIXEL_LIMIT, PIXELS_PER_OUTPUT_PIXEL * resolution * resolution)


def max_file_bytes(resolution):
    """The largest image file read for a dataset of `resolution` (uncompressed size in a zip)."""
    return BYTES_PER_PIXEL_LIMIT * max_pixels(resolution) + (1 << 20)


def decode(data, channels, resolution=None):
    """Fully decoded uint8 [H, W, channels] pixels and the file's PIL format ('PNG', 'JPEG', ...).

    With a `resolution`, an image of more than max_pixels(resolution) pixels is
    refused, or for a JPEG decoded at a reduced scale (see the module docstring).
    Raises ImageError for corrupt, truncated or too large files and for a color
    image when channels is 1.
    """
    try:
        with warnings.catch_warnings():
            if resolution is not None:  # max_pixels(resolution) applies instead (below)
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        if resolution is not None:
            _limit_pixels(image, resolution)
        image.load()
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot decode image: {error}") from error
    with image:
        return _to_array(image, channels), image.format


def _limit_pixels(image, resolution):
    """Makes an opened, not yet loaded image decode to at most max_pixels(resolution) pixels."""
    limit = max_pixels(resolution)
    width, height = image.size
    if width * height <= limit:
        return
    if image.format == "JPEG":
        for scale in _JPEG_SCALES:
            size = (width // scale, height // scale)
            if min(size) >= resolution and size[0] * size[1] <= limit:
                image.draft(image.mode, size)
                if image.size[0] * image.size[1] <= limit:
                    return
                break
    raise ImageError(f"{width}x{height} is {width * height:,} pixels, more than the {limit:,} decoded "
                     f"for a {resolution}x{resolution} dataset ({PIXELS_PER_OUTPUT_PIXEL} per output "
                     f"pixel, at least {MIN_PIXEL_LIMIT:,}); shrink it first")


def _to_array(image, channels):
    """PIL image -> uint8 [H, W, channels] by the module's channel rule.

    Alpha is composited in uint16, and images without alpha skip the compositing:
    converting an RGB PNG peaks at ~10 bytes per source pixel, decoding included
    (it was ~48 with uint32 compositing of every image).
    """
    if image.mode.startswith("I"):
        values = np.asarray(image)  # uint16 (I;16*) or int32 (I)
        image = Image.fromarray(np.clip(values >> 8, 0, 255).astype(np.uint8), "L")
    if not is_grayscale(image.mode) and channels == 1:
        raise ImageError(f"color image (mode {image.mode}) in a grayscale dataset")
    gray = is_grayscale(image.mode)
    if image.mode in _FAST_MODES and "transparency" not in image.info:
        mode = "L" if gray else "RGB"
        pixels = np.asarray(image if image.mode == mode else image.convert(mode))  # opaque: no alpha
        pixels = pixels[..., np.newaxis] if gray else pixels
    else:
        layers = np.asarray(image.convert("LA" if gray else "RGBA"))
        pixels = layers[..., :-1].astype(np.uint16)  # value * alpha + 127 <= 65152 fits uint16
        pixels *= layers[..., -1:]
        pixels += 127
        pixels //= 255
        pixels = pixels.astype(np.uint8)
    if pixels.shape[-1] != channels:
        pixels = np.repeat(pixels, channels, axis=-1)
    return pixels


def changes_geometry(size, transform, resolution):
    """Whether `transform` to `resolution` alters an image of size (width, height)."""
    return transform == "center-crop-wide" or tuple(size) != (resolution, resolution)


def apply_transform(pixels, transform, resolution, resize_filter):
    """uint8 [H, W, C] -> uint8 [resolution, resolution, C].

    none: the image must already be resolution x resolution.
    center-crop: the largest centered square, resized.
    center-crop-wide: the largest centered 2:1 (width:height) rectangle, resized to
        resolution x resolution/2 and centered between black bars.
    """
    height, width = pixels.shape[:2]
    if transform == "none":
        if (width, height) != (resolution, resolution):
            raise ImageError(f"size {width}x{height} is not {resolution}x{resolution}")
        return pixels
    if transform == "center-crop":
        side = min(width, height)
        return _resize(_crop(pixels, side, side), resolution, resolution, resize_filter)
    if transform == "center-crop-wide":
        crop_w, crop_h = (2 * height, height) if width >= 2 * height else (width, max(1, width // 2))
        band = _resize(_crop(pixels, crop_w, crop_h), resolution, resolution // 2, resize_filter)
        canvas = np.zeros([resolution, resolution, pixels.shape[2]], np.uint8)
        top = (resolution - resolution // 2) // 2
        canvas[top:top + resolution // 2] = band
        return canvas
    raise ValueError(f"unknown transform {transform!r}; expected one of {TRANSFORMS}")


def _crop(pixels, width, height):
    """The centered width x height window of [H, W, C] pixels."""
    top = (pixels.shape[0] - height) // 2
    left = (pixels.shape[1] - width) // 2
    return pixels[top:top + height, left:left + width]


def _resize(pixels, width, height, resize_filter):
    """[H, W, C] uint8 resized with PIL's box or lanczos filter (no-op at the same size)."""
    if pixels.shape[:2] == (height, width):
        return pixels
    if resize_filter not in RESIZE_FILTERS:
        raise ValueError(f"unknown resize filter {resize_filter!r}; expected one of {list(RESIZE_FILTERS)}")
    channels = pixels.shape[2]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, "L" if channels == 1 else "RGB")
    resized = np.asarray(image.resize((width, height), RESIZE_FILTERS[resize_filter]))
    return resized.reshape(height, width, channels)


def encode_png(pixels):
    """uint8 [H, W, 1 or 3] -> PNG bytes (deterministic: no timestamps or metadata)."""
    channels = pixels.shape[2]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, "L" if channels == 1 else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
