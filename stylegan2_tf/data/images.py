"""Decoding, channel handling, cropping, resizing and encoding of single images for the converter.

Channel rule: a dataset has 1 channel when every image is grayscale (PIL modes
1, L, LA, I, I;16*), else 3 (RGB); palette images count as color. A grayscale
image in a color dataset is repeated over R, G and B. Transparency is composited
onto black: value * alpha / 255, rounded. 16-bit grayscale (modes I;16*, I) keeps
its high byte.
EXIF orientation is ignored (as NVIDIA's tools and tf.io.decode_jpeg do).

Arrays are uint8 [H, W, C], C in {1, 3}.
"""

import io

import numpy as np
from PIL import Image

GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N")
TRANSFORMS = ("none", "center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}


class ImageError(ValueError):
    """An image that cannot be used, with the reason as message."""


def probe(file):
    """(PIL mode, (width, height)) from the header of an image file object; ImageError if unreadable."""
    try:
        with Image.open(file) as image:
            return image.mode, image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot read image: {error}") from error


def is_grayscale(mode):
    return mode in GRAYSCALE_MODES


def decode(data, channels):
    """Fully decoded uint8 [H, W, channels] pixels and the file's PIL format ('PNG', 'JPEG', ...).

    Raises ImageError for corrupt or truncated files and for a color image when
    channels is 1.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot decode image: {error}") from error
    with image:
        return _to_array(image, channels), image.format


def _to_array(image, channels):
    """PIL image -> uint8 [H, W, channels] by the module's channel rule."""
    if image.mode.startswith("I"):
        high_bytes = np.clip(np.asarray(image).astype(np.int64) >> 8, 0, 255)
        image = Image.fromarray(high_bytes.astype(np.uint8), "L")
    if is_grayscale(image.mode):
        layers = np.asarray(image.convert("LA"))
    elif channels == 1:
        raise ImageError(f"color image (mode {image.mode}) in a grayscale dataset")
    else:
        layers = np.asarray(image.convert("RGBA"))
    color, alpha = layers[..., :-1].astype(np.uint32), layers[..., -1:].astype(np.uint32)
    pixels = ((color * alpha + 127) // 255).astype(np.uint8)
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
