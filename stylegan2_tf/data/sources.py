"""Image sources for the converter: a folder (searched recursively) or a .zip archive.

Images are the files whose names end in .png, .jpg, .jpeg, .webp or .bmp (any
case); other files are ignored. Names are paths relative to the source root with
'/' separators, in sorted order, so a conversion does not depend on the file
system's listing order. An image name in a folder that is not a readable regular
file (a symbolic link loop, a broken link, a FIFO) is listed too: opening it
raises ImageError with the reason, so the converter reports it like an
unreadable image. Reads are bounded: a file is read only when its size
(uncompressed, in a zip) is within the limit the caller gives.
"""

import errno
import lzma
import os
import stat
import zipfile
import zlib
from pathlib import Path

from stylegan2_tf.data.images import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABELS_FILE = "dataset.json"
# What reading a damaged, encrypted or unsupported zip member raises besides OSError.
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError,
                    RuntimeError, ValueError)


def is_image_name(name):
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


def printable(text):
    """`text` with the undecodable bytes of file names (surrogate escapes) written as \\xNN, so it
    prints on any stream."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ImageSource:
    """The image files of a folder or zip: `names`, `open(name)`, `read(name)`, `file_size(name)`.

    Use as a context manager (it closes the zip). Raises FileNotFoundError for a
    missing source and ValueError for a file that is neither a folder nor a zip.
    """

    def __init__(self, source):
        self.path = Path(source)
        self._zip = None
        self._problems = {}  # image names that are not readable regular files -> why
        if self.path.is_dir():
            self._sizes = {}
            for path in self.path.rglob("*"):
                name = path.relative_to(self.path).as_posix()
                size, problem = _regular_file_size(path)
                if problem is None:
                    self._sizes[name] = size
                elif problem and is_image_name(name):
                    self._problems[name] = problem
        elif self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                raise ValueError(f"{source} is neither a folder nor a zip archive: {error}") from error
            self._sizes = {info.filename: info.file_size for info in self._zip.infolist()
                           if not info.is_dir()}
        else:
            raise FileNotFoundError(f"source {source} does not exist")
        self.names = sorted(name for name in [*self._sizes, *self._problems] if is_image_name(name))

    def has(self, name):
        return name in self._sizes or name in self._problems

    def file_size(self, name):
        """Bytes of file `name` (uncompressed, for a zip)."""
        return self._sizes[name]

    def open(self, name):
        """A binary file object for file `name` (a relative '/' path); close it after use.

        Raises ImageError for a name that is not a readable regular file.
        """
        if name in self._problems:
            raise ImageError(self._problems[name])
        try:
            if self._zip is not None:
                return _ZipMember(self._zip.open(name))
            return open(self.path / name, "rb")
        except (OSError, *_ZIP_READ_ERRORS) as error:
            raise ImageError(f"cannot open it: {getattr(error, 'strerror', None) or error}") from error

    def read(self, name, max_bytes=None):
        """The bytes of file `name`; ImageError when it holds more than `max_bytes` (None: no limit)."""
        size = self._sizes.get(name)
        if max_bytes is not None and size is not None and size > max_bytes:
            raise ImageError(_too_large(size, max_bytes))
        with self.open(name) as file:
            try:
                data = file.read() if max_bytes is None else file.read(max_bytes + 1)
            except OSError as error:
                raise ImageError(f"cannot read it: {error.strerror or error}") from error
        if max_bytes is not None and len(data) > max_bytes:  # a file that grew since the listing
            raise ImageError(_too_large(len(data), max_bytes))
        return data

    def close(self):
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _ZipMember:
    """A zip member opened for reading whose read errors (damaged data, a bad CRC) are OSErrors,
    as they are for a file, so image decoders report them like any unreadable file."""

    def __init__(self, file):
        self._file = file

    def _guard(self, method, *args):
        try:
            return method(*args)
        except _ZIP_READ_ERRORS as error:
            raise OSError(f"damaged zip member: {error}") from error

    def read(self, size=-1):
        return self._guard(self._file.read, size)

    def seek(self, offset, whence=os.SEEK_SET):
        return self._guard(self._file.seek, offset, whence)

    def tell(self):
        return self._file.tell()

    def readable(self):
        return True

    def seekable(self):
        return self._file.seekable()

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _regular_file_size(path):
    """(size, None) for a regular file (links followed); (None, "") for a folder, which is
    searched; (None, why) for anything else."""
    try:
        status = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, "a symbolic link loop"
        if path.is_symlink() and error.errno == errno.ENOENT:
            return None, f"a broken symbolic link (to {os.readlink(path)})"
        return None, f"cannot read it: {error.strerror or error}"
    if stat.S_ISREG(status.st_mode):
        return status.st_size, None
    if stat.S_ISDIR(status.st_mode):
        return None, ""
    return None, "not a regular file"


def _too_large(size, max_bytes):
    return (f"{size:,} bytes (uncompressed) is more than the {max_bytes:,} bytes read for one image at "
            "this resolution")
