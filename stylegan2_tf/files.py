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
    path = Path(path)
    partial = aside_name(path)
    try:
        write(partial)
        usual_permissions(partial, 0o666)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


def atomic_folder(path, write):
    """Calls write(temporary folder path), then renames the folder to `path` (missing or empty).

    write() creates the folder; an interrupted write leaves `path` as it was and
    removes the temporary folder. The folder gets the usual permissions (umask).
    """
    path = Path(path)
    partial = aside_name(path, suffix=".partial")
    try:
        write(partial)
        usual_permissions(partial, 0o777)
        os.replace(partial, path)
    finally:
        if partial.exists():
            shutil.rmtree(partial)


def usual_permissions(path, mode):
    """chmod path to `mode` less the process umask (what a plain open or mkdir would give).

    Some writers create private files (0o600, folders 0o700); a server running as
    another user (TF Serving, say) could not read them.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)
