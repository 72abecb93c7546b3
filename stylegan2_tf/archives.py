"""Reading zip archives that may be hostile: the directory is checked before anything is unpacked.

A zip's directory says what each member unpacks to; `open_checked_zip` holds the
archive to what its format allows before a reader (Keras, for `.keras` files)
unpacks it:

1. it is a zip at all (a truncated or bit-flipped directory is an ArchiveError,
   not zipfile.BadZipFile);
2. every member has a known name (`limits`), none appears twice, none is
   encrypted, and the required ones are present;
3. each member's uncompressed size is within its limit, and a member over
   RATIO_FLOOR_BYTES unpacks to at most MAX_COMPRESSION_RATIO times its stored
   size (no format of ours compresses better; zip bombs do, by ~1000x);
4. optionally every member is read once, in chunks, so its CRC is checked
   (`verify_members`): damage is found here rather than as a confusing error, or
   wrong data, in the reader.

The reads of `read_member` are bounded by the (checked) declared size, which
zipfile enforces while unpacking.
"""

import zipfile
import zlib

MAX_COMPRESSION_RATIO = 20
RATIO_FLOOR_BYTES = 1 << 20
_CHUNK = 1 << 20
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
                ValueError)


class ArchiveError(ValueError):
    """A zip archive that is damaged or holds what its format does not allow (message says why)."""


def open_checked_zip(path, limits, required=(), what="archive"):
    """zipfile.ZipFile of `path` after checking its directory (steps 1-3 of the module docstring).

    Args:
        limits: {member name: its largest uncompressed size in bytes}; members named
            otherwise are refused.
        required: names that must be present.
        what: what the file should be, for messages ("Keras network file").

    Raises ArchiveError naming the file and the problem; close the result after use.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as error:
        raise ArchiveError(f"{path} is not a {what} (a zip archive): {error}; is it truncated or "
                           "damaged?") from error
    try:
        _check_directory(archive, path, limits, required, what)
    except BaseException:
        archive.close()
        raise
    return archive


def _check_directory(archive, path, limits, required, what):
    seen = set()
    for info in archive.infolist():
        name = info.filename
        limit = limits.get(name)
        if limit is None:
            raise ArchiveError(f"{path}: unexpected member {name!r:.80} in a {what} (it holds only "
                               f"{', '.join(sorted(limits))})")
        if name in seen:
            raise ArchiveError(f"{path}: member {name!r:.80} appears twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{path}: member {name!r:.80} is encrypted")
        if info.file_size > limit:
            raise ArchiveError(f"{path}: member {name} unpacks to {info.file_size:,} bytes, more than "
                               f"the {limit:,} a {what} needs")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            raise ArchiveError(f"{path}: member {name} unpacks {info.compress_size:,} bytes to "
                               f"{info.file_size:,}, more than {MAX_COMPRESSION_RATIO}x: a zip bomb, "
                               f"not a {what}")
    missing = [name for name in required if name not in seen]
    if missing:
        raise ArchiveError(f"{path} is not a {what}: it lacks {', '.join(missing)}")


def read_member(archive, name, path):
    """The bytes of member `name` (its size already checked); ArchiveError if it is damaged."""
    try:
        with archive.open(name) as member:
            return member.read()
    except _READ_ERRORS as error:
        raise ArchiveError(f"{path}: member {name} is damaged: {error}") from error


def verify_members(archive, path):
    """Reads every member once in 1 MiB chunks, so zipfile checks its data and CRC;
    ArchiveError naming the first damaged member."""
    for info in archive.infolist():
        try:
            with archive.open(info) as member:
                while member.read(_CHUNK):
                    pass
        except _READ_ERRORS as error:
            raise ArchiveError(f"{path}: member {info.filename} is damaged: {error}") from error
