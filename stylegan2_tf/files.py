"""Writing files so that readers never see a partial one."""

import os
import tempfile
from pathlib import Path


def atomic_write(path, write):
    """Calls write(temporary path) in path's folder, then renames the file to `path`.

    The temporary name keeps path's suffix (writers such as Keras and numpy look
    at it); an interrupted write leaves `path` as it was and removes the
    temporary file. The file gets the usual permissions (umask).
    """
    path = Path(path)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(partial)
        usual_permissions(partial, 0o666)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def usual_permissions(path, mode):
    """chmod path to `mode` less the process umask (what a plain open or mkdir would give).

    Files from tempfile are private (0o600, folders 0o700); a server running as
    another user (TF Serving, say) could not read them.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)
