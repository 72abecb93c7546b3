"""Writing files and folders so that readers never see a partial one."""

import os
import shutil
import uuid
from pathlib import Path


def aside_name(path, suffix=None):
    """A unique hidden sibling of `path`, `.<stem>.<random><suffix>` (default: path's suffix).

    Only a name: nothing is created, so a writer that names its temporary file
    before creating it, inside its try block, leaves nothing behind whenever it
    is interrupted (SIGTERM and Ctrl-C arrive between any two Python steps).
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}"
                          f"{path.suffix if suffix is None else suffix}")


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
