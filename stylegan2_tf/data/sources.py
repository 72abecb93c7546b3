"""Image sources for the converter: a folder (searched recursively) or a .zip archive.

Images are the files whose names end in .png, .jpg, .jpeg, .webp or .bmp (any
case); other files are ignored. Names are paths relative to the source root with
'/' separators, in sorted order, so a conversion does not depend on the file
system's listing order.
"""

import zipfile
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABELS_FILE = "dataset.json"


def is_image_name(name):
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


class ImageSource:
    """The image files of a folder or zip: `names`, `open(name)`, `read(name)`, `file_size(name)`.

    Use as a context manager (it closes the zip). Raises FileNotFoundError for a
    missing source and ValueError for a file that is neither a folder nor a zip.
    """

    def __init__(self, source):
        self.path = Path(source)
        self._zip = None
        if self.path.is_dir():
            files = [p for p in self.path.rglob("*") if p.is_file()]
            self._sizes = {p.relative_to(self.path).as_posix(): p.stat().st_size for p in files}
        elif self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as error:
                raise ValueError(f"{source} is neither a folder nor a zip archive: {error}") from error
            self._sizes = {info.filename: info.file_size for info in self._zip.infolist()
                           if not info.is_dir()}
        else:
            raise FileNotFoundError(f"source {source} does not exist")
        self.names = sorted(name for name in self._sizes if is_image_name(name))

    def has(self, name):
        return name in self._sizes

    def file_size(self, name):
        """Bytes of file `name` (uncompressed, for a zip)."""
        return self._sizes[name]

    def open(self, name):
        """A binary file object for file `name` (a relative '/' path); close it after use."""
        if self._zip is not None:
            return self._zip.open(name)
        return open(self.path / name, "rb")

    def read(self, name):
        """The bytes of file `name`."""
        with self.open(name) as file:
            return file.read()

    def close(self):
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
