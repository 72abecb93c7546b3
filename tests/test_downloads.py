"""cached_download against local HTTP servers on 127.0.0.1 (normal, dropping, 503, 404, garbage,
stalling, without Range support), the cache layout, locking, and the known-network table."""

import hashlib
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stylegan2_tf
from stylegan2_tf import downloads
from stylegan2_tf.downloads import DownloadError, cache_path, cached_download, is_url
from stylegan2_tf.known_networks import FORMATS, KNOWN_NETWORKS, KnownNetwork, known_network

DATA = bytes(range(256)) * 1200  # 300 KiB, no repeating 1 MiB chunk boundary effects
DATA_SHA256 = hashlib.sha256(DATA).hexdigest()
HTML = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>\n"

# A child process that imports only the downloader (the package __init__ would load TensorFlow).
_CHILD = """
import sys, types
package = types.ModuleType("stylegan2_tf")
package.__path__ = [sys.argv[1]]
sys.modules["stylegan2_tf"] = package
from stylegan2_tf import downloads
downloads._BACKOFF_S = 0
print(downloads.cached_download(sys.argv[2], cache_dir=sys.argv[3], progress=False))
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.files; the next entries of server.plan change what a request gets."""

    def do_GET(self):
        owner = self.server.owner
        with owner.lock:
            owner.requests.append({"path": self.path, "range": self.headers.get("Range")})
            action = owner.plan.pop(0) if owner.plan else ("serve",)
        kind = action[0]
        if kind == "status":
            self.send_response(action[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "garbage":  # not HTTP at all
            self.wfile.write(b"this is not HTTP\r\n\r\n")
        elif self.path == "/redirect.pkl":  # as NGC's API answers, to a signed storage URL
            self.send_response(302)
            self.send_header("Location", "/nets/network.pkl")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path not in owner.files:
            self.send_error(404)
        else:
            self._serve(owner, owner.files[self.path], *action[1:])

    def _serve(self, owner, data, stop_after=None, then="drop"):
        start = 0
        requested = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if requested and owner.range_support:
            start = int(requested.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = len(body) if stop_after is None else stop_after
        for offset in range(0, limit, 65536):
            self.wfile.write(body[offset:min(offset + 65536, limit)])
            self.wfile.flush()
            time.sleep(owner.chunk_delay)
        if stop_after is not None and then == "stall":
            owner.release.wait(30)  # until the test ends
        # "drop": return; the server closes the connection short of Content-Length.

    def log_message(self, *args):
        pass


class LocalServer:
    """An HTTP server on 127.0.0.1 (port 0) in a thread, with a per-request plan."""

    def __init__(self):
        self.files = {"/nets/network.pkl": DATA, "/page.pkl": HTML}
        self.plan = []
        self.requests = []
        self.range_support = True
        self.chunk_delay = 0.0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.httpd.handle_error = lambda request, address: None  # clients hanging up are expected
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.running = True

    def url(self, path="/nets/network.pkl"):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self):
        if self.running:
            self.running = False
            self.release.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(10)


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(downloads, "_BACKOFF_S", 0.0)
    local = LocalServer()
    yield local
    local.stop()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _partial(path):
    return path.with_name(path.name + ".partial")


def _child_env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["no_proxy"] = "127.0.0.1,localhost"
    return env


def _start_child(url, cache):
    package_dir = str(Path(stylegan2_tf.__file__).parent)
    return subprocess.Popen([sys.executable, "-c", _CHILD, package_dir, url, str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env())


def test_download_then_cache_hit_without_network(server, cache):
    url = server.url()
    path = cached_download(url, cache_dir=cache, progress=False)
    assert path == cache_path(url, cache)
    assert path.parent == cache / "networks"
    assert re.fullmatch(r"[0-9a-f]{12}-network\.pkl", path.name)
    assert path.read_bytes() == DATA
    assert not _partial(path).exists()
    assert len(server.requests) == 1 and server.requests[0]["range"] is None
    server.stop()
    assert cached_download(url, cache_dir=cache, progress=False) == path
    assert cached_download(url, cache_dir=cache, sha256=DATA_SHA256, progress=False) == path


def test_progress_bar_on_stderr(server, cache, capsys):
    cached_download(server.url(), cache_dir=cache, progress=True)
    assert "network.pkl" in capsys.readouterr().err


def test_dropped_connection_resumes_with_range(server, cache):
    url = server.url()
    server.plan = [("serve", 100_000)]  # 100000 bytes, then the connection closes
    with pytest.raises(DownloadError) as failure:
        cached_download(url, cache_dir=cache, progress=False, retries=0)
    message = str(failure.value)
    assert url in message and "closed after 100000 of 307200 bytes" in message
    assert "kept in" in message and "\n" not in message
    target = cache_path(url, cache)
    assert not target.exists() and _partial(target).stat().st_size == 100_000
    assert cached_download(url, cache_dir=cache, progress=False) == target
    assert server.requests[-1]["range"] == "bytes=100000-"
    assert target.read_bytes() == DATA and not _partial(target).exists()


def test_drop_midway_is_retried_and_resumed_in_one_call(server, cache):
    server.plan = [("serve", 65536), ("serve", 65536)]
    path = cached_download(server.url(), cache_dir=cache, sha256=DATA_SHA256, progress=False, retries=1)
    assert path.read_bytes() == DATA
    assert [r["range"] for r in server.requests] == [None, "bytes=65536-", "bytes=131072-"]


def test_redirect_is_followed_and_resumed(server, cache):
    server.plan = [("serve",), ("serve", 100_000)]  # the redirect, then a dropped transfer
    url = server.url("/redirect.pkl")
    path = cached_download(url, cache_dir=cache, progress=False, retries=1)
    assert path.name.endswith("-redirect.pkl") and path.read_bytes() == DATA
    assert [(r["path"], r["range"]) for r in server.requests] == [
        ("/redirect.pkl", None), ("/nets/network.pkl", None),
        ("/redirect.pkl", "bytes=100000-"), ("/nets/network.pkl", "bytes=100000-")]


def test_server_without_range_support_restarts(server, cache):
    server.range_support = False
    server.plan = [("serve", 100_000)]
    path = cached_download(server.url(), cache_dir=cache, progress=False, retries=2)
    assert path.read_bytes() == DATA  # not the first 100000 bytes twice
    assert [r["range"] for r in server.requests] == [None, "bytes=100000-"]


def test_partial_longer_than_the_file_restarts(server, cache):
    url = server.url()
    target = cache_path(url, cache)
    target.parent.mkdir(parents=True)
    _partial(target).write_bytes(b"x" * (len(DATA) + 10))  # 416 for its Range
    assert cached_download(url, cache_dir=cache, progress=False).read_bytes() == DATA
    assert [r["range"] for r in server.requests] == [f"bytes={len(DATA) + 10}-", None]


def test_503_is_retried(server, cache):
    server.plan = [("status", 503), ("status", 503)]
    assert cached_download(server.url(), cache_dir=cache, progress=False, retries=3).read_bytes() == DATA
    assert len(server.requests) == 3


def test_503_gives_up_after_the_retries(server, cache):
    server.plan = [("status", 503)] * 3
    with pytest.raises(DownloadError, match=r"HTTP 503 .*\(2 failed attempts in a row\); check the "
                                            r"connection and run again$"):
        cached_download(server.url(), cache_dir=cache, progress=False, retries=1)
    assert len(server.requests) == 2
    assert not any(cache.rglob("*.pkl"))


def test_404_fails_at_once(server, cache):
    url = server.url("/nets/missing.pkl")
    with pytest.raises(DownloadError) as failure:
        cached_download(url, cache_dir=cache, progress=False, retries=3)
    assert str(failure.value) == f"cannot download {url}: HTTP 404 Not Found; check the URL"
    assert isinstance(failure.value, OSError) and isinstance(failure.value, ValueError)
    assert len(server.requests) == 1
    assert not any(cache.rglob("*.pkl")) and not any(cache.rglob("*.partial"))


def test_garbage_instead_of_http_fails_after_retries(server, cache):
    server.plan = [("garbage",)] * 2
    with pytest.raises(DownloadError, match="not valid HTTP"):
        cached_download(server.url(), cache_dir=cache, progress=False, retries=1)
    assert len(server.requests) == 2


def test_stalled_server_times_out(server, cache):
    server.plan = [("serve", 1000, "stall")]
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        cached_download(server.url(), cache_dir=cache, progress=False, retries=0, timeout=0.5)
    assert time.monotonic() - start < 10


def test_html_page_is_stored_and_the_loader_refuses_it(server, cache):
    path = cached_download(server.url("/page.pkl"), cache_dir=cache, progress=False)
    assert path.read_bytes() == HTML
    from stylegan2_tf.network_io import load_network

    with pytest.raises(ValueError):
        load_network(path)


def test_wrong_digest_removes_the_file(server, cache):
    url = server.url()
    wrong = "0" * 64
    with pytest.raises(DownloadError) as failure:
        cached_download(url, cache_dir=cache, sha256=wrong, progress=False)
    message = str(failure.value)
    assert message.startswith(f"{url}: the downloaded file has sha256 {DATA_SHA256}, but the sha256 "
                              f"given is {wrong}; the file was removed")
    target = cache_path(url, cache)
    assert not target.exists() and not _partial(target).exists()


def test_known_network_digest_is_checked(server, cache, monkeypatch):
    entry = KnownNetwork("test-net", server.url(), "tf1", 32, "a test", "1" * 64, "a test table")
    monkeypatch.setattr(downloads, "known_network", lambda url: entry if url == entry.url else None)
    with pytest.raises(DownloadError, match="but the digest of NVIDIA's test-net from a test table is 1111"):
        cached_download(server.url(), cache_dir=cache, progress=False)
    # The caller's digest wins over the table's.
    assert cached_download(server.url(), cache_dir=cache, sha256=DATA_SHA256.upper(),
                           progress=False).read_bytes() == DATA


def test_resumed_download_with_wrong_digest_restarts_once(server, cache):
    url = server.url()
    target = cache_path(url, cache)
    target.parent.mkdir(parents=True)
    _partial(target).write_bytes(b"stale bytes of an older file")
    assert cached_download(url, cache_dir=cache, sha256=DATA_SHA256, progress=False).read_bytes() == DATA
    assert [r["range"] for r in server.requests] == ["bytes=28-", None]


def test_corrupt_cached_copy_is_downloaded_again(server, cache, capsys):
    url = server.url()
    path = cached_download(url, cache_dir=cache, sha256=DATA_SHA256, progress=False)
    path.write_bytes(b"damaged")
    assert cached_download(url, cache_dir=cache, sha256=DATA_SHA256, progress=False).read_bytes() == DATA
    assert "removing it and downloading again" in capsys.readouterr().err
    assert len(server.requests) == 2


def test_two_threads_download_once(server, cache):
    server.chunk_delay = 0.05
    results, errors = [], []

    def fetch():
        try:
            results.append(cached_download(server.url(), cache_dir=cache, progress=False))
        except (OSError, ValueError) as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert results[0].read_bytes() == DATA
    assert len(server.requests) == 1
    assert sorted(p.name[13:] for p in (cache / "networks").iterdir()) == ["network.pkl", "network.pkl.lock"]


def test_two_processes_download_once(server, cache):
    server.chunk_delay = 0.05
    children = [_start_child(server.url(), cache) for _ in range(2)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(cache_path(server.url(), cache))}
    assert cache_path(server.url(), cache).read_bytes() == DATA
    assert len(server.requests) == 1


def test_killed_download_leaves_no_final_file_and_resumes(server, cache):
    url = server.url()
    target = cache_path(url, cache)
    server.plan = [("serve", 131072, "stall")]
    child = _start_child(url, cache)
    try:
        deadline = time.monotonic() + 60
        while (not _partial(target).exists() or _partial(target).stat().st_size < 131072) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.communicate(timeout=30)
    assert not target.exists()
    assert _partial(target).stat().st_size == 131072
    assert cached_download(url, cache_dir=cache, progress=False).read_bytes() == DATA
    assert server.requests[-1]["range"] == "bytes=131072-"


def test_cache_folder_from_flag_or_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN2_CACHE", str(tmp_path / "env"))
    url = server.url()
    assert cache_path(url).parent == tmp_path / "env" / "networks"
    assert cached_download(url, progress=False) == cache_path(url)
    assert cached_download(url, cache_dir=tmp_path / "flag", progress=False).parent == \
        tmp_path / "flag" / "networks"


def test_cache_names_never_collide_and_stay_readable(tmp_path):
    a = cache_path("https://a.example/nets/ffhq.pkl", tmp_path)
    b = cache_path("https://b.example/nets/ffhq.pkl", tmp_path)
    assert a != b and a.name.endswith("-ffhq.pkl") and b.name.endswith("-ffhq.pkl")
    assert cache_path("https://x.example/a%20b/..%2F..%2Fevil.pkl?sig=1", tmp_path).name.endswith(
        "-_.._evil.pkl")
    assert cache_path("https://x.example/", tmp_path).name.endswith("-download")
    assert cache_path("https://x.example/.hidden", tmp_path).name.endswith("-hidden")


def test_unwritable_cache_is_one_clear_line(server, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(DownloadError, match=r"^download cache: .*a_file is not a folder, so .* cannot be "
                                            r"created; set \$STYLEGAN2_CACHE or --cache_dir to a writable folder$"):
        cached_download(server.url(), cache_dir=blocker / "cache", progress=False)


def test_is_url_and_bad_arguments(tmp_path):
    assert is_url("https://nvlabs-fi-cdn.nvidia.com/x.pkl") and is_url("HTTP://host/x")
    assert is_url(" http://host/x ") and is_url("file:///tmp/x.pkl")
    for not_url in ("net.pkl", "/abs/net.pkl", "runs/mine/network", "http://", "ftp://host/x",
                    "ffhq-config-f", tmp_path, None):
        assert not is_url(not_url), not_url
    with pytest.raises(ValueError, match="expected an http://, https:// or file:// URL"):
        cached_download("net.pkl", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="sha256 must be 64 hexadecimal digits"):
        cached_download("http://127.0.0.1:9/x.pkl", cache_dir=tmp_path, sha256="abc")


def test_file_url_is_checked_not_copied(tmp_path):
    local = tmp_path / "net.pkl"
    local.write_bytes(DATA)
    assert cached_download(local.as_uri(), cache_dir=tmp_path / "cache", sha256=DATA_SHA256) == local
    with pytest.raises(DownloadError, match="it was left as it is"):
        cached_download(local.as_uri(), sha256="2" * 64)
    assert local.read_bytes() == DATA and not (tmp_path / "cache").exists()
    with pytest.raises(DownloadError, match="does not exist"):
        cached_download((tmp_path / "missing.pkl").as_uri())


def test_known_networks_table():
    names = [network.name.lower() for network in KNOWN_NETWORKS]
    urls = [network.url for network in KNOWN_NETWORKS]
    assert len(set(names)) == len(names) and len(set(urls)) == len(urls)
    assert {network.format for network in KNOWN_NETWORKS} == set(FORMATS)
    for network in KNOWN_NETWORKS:
        assert network.url.startswith("https://") and network.url.endswith(".pkl"), network
        assert network.resolution in (32, 256, 512, 1024), network
        assert (network.sha256 is None) == (network.sha256_source is None), network
        assert network.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", network.sha256), network
        assert known_network(network.name) is network and known_network(network.url) is network
    cited = {network.name for network in KNOWN_NETWORKS if network.sha256}
    assert cited == {"ffhq-config-f", "car-config-f", "cat-config-f", "church-config-f", "horse-config-f"}


def test_known_network_lookup():
    ffhq = known_network("ffhq-config-f")
    assert ffhq.url == "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl"
    assert ffhq.format == "tf1" and ffhq.resolution == 1024
    assert known_network("FFHQ-Config-F") is ffhq
    assert known_network(" http://d36zk2xti64re0.cloudfront.net/stylegan2/networks/stylegan2-ffhq-config-f.pkl") \
        is ffhq
    assert known_network("HTTPS://NVLABS-FI-CDN.NVIDIA.COM/stylegan2/networks/stylegan2-ffhq-config-f.pkl") is ffhq
    assert known_network("ada-pytorch-metfaces").url.endswith("/stylegan2-ada-pytorch/pretrained/metfaces.pkl")
    assert known_network("ngc-ffhq-256x256").format == "stylegan3-stylegan2"
    for unknown in ("ffhq", "https://example.com/stylegan2-ffhq-config-f.pkl", "", None, Path("x")):
        assert known_network(unknown) is None
