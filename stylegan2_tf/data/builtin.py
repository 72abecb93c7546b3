"""The built-in dataset: scikit-learn's handwritten digits, needing no download.

sklearn.datasets.load_digits ships inside scikit-learn: 1797 grayscale 8x8
digits (values 0-16, white on black) in 10 classes. They are scaled to 0-255,
written as PNGs with a dataset.json of their classes and converted by
convert.convert_dataset (lanczos upscaling), so training reads one format.
"""

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan2_tf.data import records
from stylegan2_tf.data.convert import convert_dataset

DIGITS_IMAGES = 1797
DIGITS_CLASSES = 10


def digits_dataset(cache_dir, resolution=32):
    """The folder of the digits dataset at `resolution` (a power of two), converting it on first use.

    The dataset (1797 images, 1 channel, label_size 10) is kept in
    cache_dir/digits-<resolution> and reused while its metadata is valid.
    """
    dest = Path(cache_dir) / f"digits-{resolution}"
    try:
        if records.read_metadata(dest)["resolution"] == resolution:
            return dest
    except (FileNotFoundError, ValueError):
        pass
    from sklearn.datasets import load_digits  # imported here: only this dataset needs scikit-learn

    digits = load_digits()
    with tempfile.TemporaryDirectory() as source:
        labels = []
        for index, (image, label) in enumerate(zip(digits.images, digits.target)):
            name = f"{index:04d}.png"
            pixels = np.round(image * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels, "L").save(Path(source) / name)
            labels.append([name, int(label)])
        (Path(source) / "dataset.json").write_text(json.dumps({"labels": labels}))
        convert_dataset(source, dest, resolution=resolution, transform="center-crop",
                        resize_filter="lanczos", overwrite=True, progress=False,
                        description=f"scikit-learn load_digits (8x8, {DIGITS_IMAGES} images, "
                                    f"{DIGITS_CLASSES} classes), lanczos-upscaled to {resolution}")
    return dest
