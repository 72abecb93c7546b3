"""Downloading networks by URL into a local cache: atomic, resumable, retried, checked.

`cached_download(url)` returns the path of a complete local copy of `url`:

1. The cache root is `files.cache_root(cache_dir)` (`cache_dir`, else `$STYLEGAN2_CACHE`, else
   `$XDG_CACHE_HOME/stylegan2_tf`, else `~/.cache/stylegan2_tf`); a URL's file is
   `<root>/networks/<sha1(url)[:12]>-<file name>`, so different URLs never share a file and
   the name says what it holds.
2. A file already there is used without any network access (its sha256 is checked once per
   process when one is known; a copy that fails is removed and downloaded again).
3. Otherwise an exclusive lock (`<file>.lock`, fcntl) makes one process download while others
   wait for it. Bytes go to `<file>.partial`; a partial file left by an interrupted download
   is resumed with an HTTP Range request when the server answers 206, and restarted when it
   answers 200.
4. Connection errors, timeouts, dropped connections, HTTP 408/425/429 and 5xx are retried
   with exponential backoff, up to `retries` times in a row; an attempt that brought new bytes
   starts a new count, so a long download over a flaky connection keeps going while it
   advances. Other 4xx fail at once.
5. The result is checked (its size against Content-Length / Content-Range, its sha256 when
   the caller gives one or the URL is one of NVIDIA's networks with a cited digest, see
   `known_networks`), then renamed to its final name, so no partial file is ever taken for a
   complete one. A wrong digest removes the file and fails.

Failures raise `DownloadError` (an OSError and a ValueError) with one line: the URL, what
happened and what to do. Content is not inspected: an HTML page served with status 200 is
stored like any file, and the loader refuses it (unless a digest catches it here).
"""

import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from stylegan2_tf.files import CACHE_ENV, OutputPathError, cache_folder, cache_root, make_output_folder
from stylegan2_tf.known_networks import known_network

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock; the rename is still atomic.
    fcntl = None

CACHE_SUBFOLDER = "networks"  # of files.cache_root
_CHUNK = 1 << 20
_BACKOFF_S = 1.0  # first retry delay; doubles per failed attempt up to _MAX_BACKOFF_S
_MAX_BACKOFF_S = 30.0
_RETRIED_STATUS = {408, 425, 429}  # and every 5xx
_USER_AGENT = "stylegan2_tf-downloads"
_verified = set()  # (path, size, mtime_ns, sha256) of cached files whose digest was checked


class DownloadError(OSError, ValueError):
    """A download that failed; the message names the URL, what happened and what to do."""


class _Transient(Exception):
    """A failure worth retrying (the message says what happened)."""


class _LocalError(Exception):
    """Writing the cache failed (an OSError is its cause)."""


def is_url(source):
    """True for an http://, https:// or file:// URL string (not for paths or Path objects)."""
    if not isinstance(source, str):
        return False
    parts = urllib.parse.urlsplit(source.strip())
    return (parts.scheme.lower() in ("http", "https") and bool(parts.netloc)) or \
        parts.scheme.lower() == "file"


def cache_path(url, cache_dir=None):
    """Where cached_download(url, cache_dir) keeps url: `<root>/networks/<sha1(url)[:12]>-<file name>`."""
    url = url.strip()
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")[-80:] or "download"
    key = hashlib.sha1(url.encode("utf-8")).hexdigest()[:12]
    return cache_root(cache_dir) / CACHE_SUBFOLDER / f"{key}-{name}"


def cached_download(url, cache_dir=None, sha256=None, progress=True, retries=3, timeout=30):
    """The path of a complete local copy of url (http, https or file), downloading it if needed.

    Args:
      url: str, the URL. A file:// URL returns its local path (checked, never copied).
      cache_dir: str or Path, the cache root (files.cache_root: default $STYLEGAN2_CACHE, else
        $XDG_CACHE_HOME/stylegan2_tf or ~/.cache/stylegan2_tf); files go in its networks/.
      sha256: str, 64 hex digits the file must hash to; default: the digest of the NVIDIA
        network at this URL where one is known (`known_networks`), else none.
      progress: bool, show a tqdm progress bar (bytes) on stderr while downloading.
      retries: int >= 0, retries after failed attempts in a row (0: none); an attempt that
        received new bytes starts a new count.
      timeout: float, seconds to wait for the connection and for each read.

    Returns:
      pathlib.Path of the file in the cache (or of the file:// target).

    Raises:
      ValueError: url is not a URL, or sha256 is malformed.
      DownloadError: the download failed, the digest did not match, or the cache is not writable.
    """
    if not is_url(url):
        raise ValueError(f"expected an http://, https:// or file:// URL, got {url!r}")
    url = url.strip()
    expected, source = _expected_digest(url, sha256)
    if urllib.parse.urlsplit(url).scheme.lower() == "file":
        return _local_file(url, expected, source)
    _make_cache_folder(cache_dir)
    target = cache_path(url, cache_dir)
    if target.is_file() and _cached_copy_ok(url, target, expected, source):
        return target
    with _locked(target, progress):
        if target.is_file() and _cached_copy_ok(url, target, expected, source):
            return target  # another process finished it while we waited
        _download(url, target, expected, source, progress, int(retries), timeout)
    return target


def _expected_digest(url, sha256):
    """(lower-case hex digest or None, where it comes from)."""
    if sha256 is not None:
        digest = str(sha256).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
        return digest, "the sha256 given"
    network = known_network(url)
    if network is not None and network.sha256:
        return network.sha256, f"the digest of NVIDIA's {network.name} from {network.sha256_source}"
    return None, None


def _local_file(url, expected, source):
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{url}: a file:// URL must name a local file (file:///path), "
                         f"not one on host {parts.netloc!r}")
    path = Path(urllib.request.url2pathname(parts.path))
    if not path.is_file():
        raise DownloadError(f"{url}: {path} does not exist or is not a file")
    if expected:
        actual = _sha256(path)
        if actual != expected:
            raise DownloadError(f"{url}: the file has sha256 {actual}, but {source} is {expected}; "
                                "it was left as it is: check the file and the digest")
    return path


def _make_cache_folder(cache_dir):
    try:
        make_output_folder(cache_folder(cache_dir, CACHE_SUBFOLDER))
    except OutputPathError as error:
        raise DownloadError(f"download cache: {error}; set ${CACHE_ENV} or --cache_dir to a "
                            "writable folder") from error


def _cached_copy_ok(url, target, expected, source):
    """True when target may be used; a copy whose digest is wrong is removed (False)."""
    if not expected:
        return True
    try:
        stat = target.stat()
        key = (str(target), stat.st_size, stat.st_mtime_ns, expected)
        if key in _verified:
            return True
        actual = _sha256(target)
    except FileNotFoundError:  # removed by another process meanwhile
        return False
    if actual == expected:
        _verified.add(key)
        return True
    print(f"{target}: the cached copy of {url} has sha256 {actual}, but {source} is {expected}; "
          "removing it and downloading again", file=sys.stderr)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    return False


@contextlib.contextmanager
def _locked(target, progress):
    """Holds an exclusive lock on `<target>.lock` (kept afterwards: removing it would race)."""
    if fcntl is None:
        yield
        return
    lock_path = target.with_name(target.name + ".lock")
    try:
        lock_path.touch()
    except OSError as error:
        raise DownloadError(f"cannot create the lock file {lock_path} ({error.strerror or error}); "
                            f"set ${CACHE_ENV} or --cache_dir to a writable folder") from error
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"waiting for another process downloading {target.name} ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(url, target, expected, source, progress, retries, timeout):
    """Downloads url to target through `<target>.partial`, retrying; call with the lock held."""
    partial = target.with_name(target.name + ".partial")
    failures = 0
    restarted_after_mismatch = False
    while True:
        before = _size(partial)
        retry_after = 0.0
        try:
            resumed = _fetch(url, partial, timeout, progress, target.name)
        except _LocalError as error:
            cause = error.__cause__
            raise DownloadError(f"cannot write {partial} ({getattr(cause, 'strerror', None) or cause}); "
                                f"free some space or set ${CACHE_ENV} or --cache_dir to another "
                                "folder") from cause
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 416 and before:  # the partial file is not a prefix of this file
                partial.unlink()
                continue
            if error.code not in _RETRIED_STATUS and error.code < 500:
                raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}; "
                                    "check the URL") from None
            problem = f"HTTP {error.code} {error.reason}"
            retry_after = _retry_after(error.headers)
        except (_Transient, OSError, http.client.HTTPException) as error:
            problem = _describe(error)
        else:
            if expected:
                actual = _sha256(partial)
                if actual != expected:
                    partial.unlink()
                    if resumed and not restarted_after_mismatch:
                        # The partial file may have come from an older version: once from scratch.
                        restarted_after_mismatch = True
                        continue
                    raise DownloadError(
                        f"{url}: the downloaded file has sha256 {actual}, but {source} is {expected}; "
                        "the file was removed: check the URL and the digest")
            os.replace(partial, target)
            if expected:
                stat = target.stat()
                _verified.add((str(target), stat.st_size, stat.st_mtime_ns, expected))
            return
        failures = 1 if _size(partial) > before else failures + 1  # new bytes: a new count
        if failures > retries:
            kept = _size(partial)
            keep = (f"; the {kept} bytes received are kept in {partial} and resumed next time"
                    if kept else "")
            raise DownloadError(f"cannot download {url}: {problem} ({failures} failed attempts in a "
                                f"row); check the connection and run again{keep}")
        delay = max(min(_BACKOFF_S * 2 ** (failures - 1), _MAX_BACKOFF_S), retry_after)
        if progress:
            print(f"{url}: {problem}; retrying in {delay:.0f} s", file=sys.stderr)
        time.sleep(delay)


def _fetch(url, partial, timeout, progress, label):
    """One attempt: appends to (206) or rewrites (200) partial. True when it resumed."""
    offset = _size(partial)
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        length = _int_header(response.headers, "Content-Length")
        if offset and response.status == 206:
            start, total = _content_range(response.headers)
            if start != offset:
                partial.unlink()
                raise _Transient(f"the server resumed at byte {start} instead of {offset}")
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
        elif response.status in (200, 206):  # a 206 to a request without Range is a full answer
            offset, total, mode = 0, length, "wb"
        else:
            raise _Transient(f"unexpected HTTP status {response.status} {response.reason}")
        with tqdm(total=total, initial=offset, desc=label, unit="B", unit_scale=True,
                  unit_divisor=1024, disable=not progress, leave=False) as bar:
            try:
                with open(partial, mode):  # creates, or truncates for a restart
                    pass
            except OSError as error:
                raise _LocalError() from error
            with open(partial, "ab") as file:
                while chunk := response.read1(_CHUNK):  # what has arrived, for the bar
                    try:
                        file.write(chunk)
                    except OSError as error:
                        raise _LocalError() from error
                    bar.update(len(chunk))
                try:
                    file.flush()
                    os.fsync(file.fileno())
                except OSError as error:
                    raise _LocalError() from error
    size = _size(partial)
    if total is not None and size != total:
        raise _Transient(f"the connection closed after {size} of {total} bytes")
    if not size:
        raise _Transient("the server sent no data")
    return offset > 0


def _content_range(headers):
    """(first byte, total size or None) of `Content-Range: bytes first-last/total`."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", headers.get("Content-Range") or "")
    if not match:
        raise _Transient(f"the server resumed with an unreadable Content-Range "
                         f"{headers.get('Content-Range')!r}")
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _int_header(headers, name):
    value = headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def _retry_after(headers):
    """Seconds asked by a Retry-After header (at most the backoff ceiling), else 0."""
    value = _int_header(headers or {}, "Retry-After")
    return min(float(value), _MAX_BACKOFF_S) if value is not None else 0.0


def _describe(error):
    if isinstance(error, urllib.error.URLError):
        error = error.reason
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "timed out"
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed after {len(error.partial)} more bytes"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(error, http.client.HTTPException):
        return f"the server's answer is not valid HTTP ({type(error).__name__}: {error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
