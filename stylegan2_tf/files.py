"""Where the library writes, and writing there so that readers never see a partial file.

- Output paths: `check_output_folder`, `make_output_folder` and `check_output_file`
  are the one check of a folder or file about to be written (script flags such as
  --outdir, --export_dir, --output and the cache folder all go through them).
- The cache: `cache_root` and `cache_folder`, the folder for files kept between runs
  (--cache_dir, else $STYLEGAN2_CACHE, else $XDG_CACHE_HOME/stylegan2_tf, else
  ~/.cache/stylegan2_tf), one subfolder per user: metrics/ for the metrics' dataset
  features, networks/ for downloaded networks.
- Write-aside: `atomic_write` and `atomic_folder` write under a hidden sibling name
  (`aside_name`) and rename into place; `remove_aside_leftovers` removes those a killed
  writer left (call it holding the folder's lock).
- Locks: `lock_folder`, one process at a time in a folder (e.g. a training run), and
  `lock_output`, one writer at a time of an output file or a folder replaced whole (a lock
  file `.<name>.lock` next to it: dataset_tool.py --dest, convert.py --dest, export.py
  --export_dir); released when the process exits however it exits.
"""

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock (as downloads.py)
    fcntl = None

CACHE_ENV = "STYLEGAN2_CACHE"


class OutputPathError(ValueError):
    """A path that cannot be written as asked; the message names it and why."""


def check_output_folder(path, *, empty=False, taken_hint=""):
    """Path(path), checked as a folder to create or write into; nothing is created.

    Raises OutputPathError when:
    1. the path is empty: "expected a folder, got an empty path";
    2. a folder above it is a file: "<file> is not a folder, so <path> cannot be created";
    3. it exists and is no folder: "<path> exists and is not a folder";
    4. `empty` and it is a folder with something in it: "<path> exists and is not an
       empty folder", then "; <taken_hint>" when given.
    """
    if not str(path):
        raise OutputPathError("expected a folder, got an empty path")
    path = Path(path)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputPathError(f"{blocking} is not a folder, so {path} cannot be created")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} exists and is not a folder")
    if empty and path.is_dir() and any(path.iterdir()):
        raise OutputPathError(f"{path} exists and is not an empty folder"
                              + (f"; {taken_hint}" if taken_hint else ""))
    return path


def make_output_folder(path):
    """check_output_folder(path), then the folder (and missing folders above it) created.

    A folder that cannot be created (permissions, a read-only disk) raises
    OutputPathError "cannot create the folder <path> (<reason>)".
    """
    path = check_output_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(f"cannot create the folder {path} ({error.strerror or error})") from error
    return path


def check_output_file(path):
    """Path(path), checked as a file to create or append to: not empty, not a folder, in an
    existing folder; raises OutputPathError naming what is wrong. Nothing is created."""
    if not str(path):
        raise OutputPathError("expected a file, got an empty path")
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; expected a file")
    if not path.parent.is_dir():
        raise OutputPathError(f"{path}: the folder {path.parent} does not exist")
    return path


def cache_root(path=None):
    """The cache folder: `path`, else $STYLEGAN2_CACHE, else $XDG_CACHE_HOME/stylegan2_tf, else
    ~/.cache/stylegan2_tf (~ expanded). Only the name: nothing is checked or created."""
    if path:
        return Path(path).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "stylegan2_tf"


def cache_folder(path=None, subfolder=None):
    """cache_root(path), or its `subfolder` when given, checked by check_output_folder (so
    OutputPathError when it cannot be a folder); created by whoever writes there."""
    root = check_output_folder(cache_root(path))
    return check_output_folder(root / subfolder) if subfolder else root


def aside_name(path, suffix=None):
    """A unique hidden sibling of `path`, `.<stem>.<random><suffix>` (default: path's suffix).

    Only a name: nothing is created, so a writer that names its temporary file
    before creating it, inside its try block, leaves nothing behind whenever it
    is interrupted (SIGTERM and Ctrl-C arrive between any two Python steps).
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}"
                          f"{path.suffix if suffix is None else suffix}")


_ASIDE_NAME = re.compile(r"\.(?P<stem>.+)\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?")


def remove_aside_leftovers(folder, stem):
    """Removes the files and folders in `folder` named by aside_name for a file whose stem
    fully matches the regex `stem` (the write-asides a killed process left); returns their paths.

    Only call it while no other process can be writing there (holding lock_folder).
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        match = _ASIDE_NAME.fullmatch(path.name)
        if match and re.fullmatch(stem, match["stem"]):
            remove_path(path)
            removed.append(path)
    return removed


def remove_path(path):
    """Removes a file, link or folder (with its contents)."""
    if Path(path).is_dir() and not Path(path).is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


class FolderInUseError(ValueError):
    """lock_folder or lock_output found another process holding the lock; the message names it."""


class FolderLock:
    """An exclusive fcntl lock on the file `lock_file` for `subject` (what it guards), held until
    release() or the process ends (the kernel drops it on any exit, so a lock file left by a dead
    process is not held). The file keeps "pid <pid> on <host>" of its holder; it stays when
    released unless `remove_on_release` (a lock taken on a file since removed is taken again,
    so removing it does not let two processes in). fcntl locks belong to an open file: a
    second acquire in the same process, through another open, is refused like another process."""

    def __init__(self, folder=None, *, lock_file=None, subject=None, remove_on_release=False):
        self.path = Path(lock_file) if lock_file is not None else Path(folder) / LOCK_FILE
        self.subject = Path(subject) if subject is not None else self.path.parent
        self.remove_on_release = remove_on_release
        self._handle = None

    def acquire(self):
        if fcntl is None:
            return self
        while True:
            handle = open(self.path, "a+")  # noqa: SIM115 (held until release)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read(200).strip() or "another process"
                handle.close()
                raise FolderInUseError(f"{self.subject} is in use by {holder} "
                                       f"(lock file {self.path})") from None
            if _same_file(handle, self.path):
                break
            handle.close()  # its holder removed it as we opened it: lock the file there now
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self):
        if self._handle is not None:
            if self.remove_on_release and _same_file(self._handle, self.path):
                self.path.unlink()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()


def _same_file(handle, path):
    """Whether the open file `handle` is the file at `path` (not one removed or replaced since)."""
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


LOCK_FILE = ".lock"


def lock_folder(folder):
    """make_output_folder(folder), then a FolderLock on it, held; raises FolderInUseError
    "<folder> is in use by pid <pid> on <host> (lock file <folder>/.lock)" when another
    process holds it."""
    return FolderLock(make_output_folder(folder)).acquire()


def output_lock_file(path):
    """The lock file of the output `path` (lock_output): `.<name>.lock` next to it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def lock_output(path):
    """A FolderLock on the output `path` (a file, or a folder written aside and renamed into
    place), held: the lock file is `.<name>.lock` next to it, in its folder (created if
    missing), as the output itself may not exist yet or be replaced whole; release() removes
    it (a killed holder leaves it, unheld). Raises FolderInUseError "<path> is in use by pid
    <pid> on <host> (lock file ...)" when another process holds it; OutputPathError when its
    folder cannot be made."""
    if not str(path) or not Path(path).name:
        raise OutputPathError(f"expected a file or folder to write, got {str(path)!r}")
    path = Path(path)
    make_output_folder(path.parent)
    return FolderLock(lock_file=output_lock_file(path), subject=path, remove_on_release=True).acquire()


def atomic_write(path, write):
    """Calls write(temporary path) in path's folder, then renames the file to `path`.

    The temporary name keeps path's suffix (writers such as Keras and numpy look
    at it); an interrupted write leaves `path` as it was and removes the
    temporary file. The file gets the usual permissions (umask).
    """
    _write_aside(path, write, aside_name(path), 0o666, os.unlink)


def atomic_folder(path, write):
    """Calls write(temporary folder path), then renames the folder to `path` (missing or empty).

    write() creates the folder; an interrupted write leaves `path` as it was and
    removes the temporary folder. The folder gets the usual permissions (umask).
    """
    _write_aside(path, write, aside_name(path, suffix=".partial"), 0o777, shutil.rmtree)


def _write_aside(path, write, partial, mode, remove):
    """write(partial), chmod to `mode` less the umask, rename to `path`; remove(partial) on failure."""
    try:
        write(partial)
        usual_permissions(partial, mode)
        os.replace(partial, path)
    finally:
        if partial.exists():
            remove(partial)


def usual_permissions(path, mode):
    """chmod path to `mode` less the process umask (what a plain open or mkdir would give).

    Some writers create private files (0o600, folders 0o700); a server running as
    another user (TF Serving, say) could not read them.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)
