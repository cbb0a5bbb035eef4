"""Remote image URLs: the SSRF guard and the size/time bounds, against loopback servers only."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.stdlib_http.remote_images import GuardedImageFetcher, refusal
from application.errors import InvalidRequest
from application.inference.images import ImagePolicy, ImageResolver
from application.inference.ports import ImageInput

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path == "/cat.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif self.path == "/big.png":  # no Content-Length: the reader must stop by itself
            self.send_response(200)
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 10_000)
        elif self.path == "/slow.png":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture(scope="module")
def loopback():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()


@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.10", "private"),
    ("172.16.5.4", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("100.64.0.1", "non-public"), ("fc00::1", "private"),
])
def test_internal_addresses_are_refused(address, kind):
    assert refusal(address) == kind


def test_public_addresses_pass_the_check():
    assert refusal("93.184.216.34") is None and refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_a_loopback_server_is_refused_before_any_request(loopback):
    url, server = loopback
    fetcher = GuardedImageFetcher()
    with pytest.raises(InvalidRequest, match="loopback address"):
        fetcher.fetch(f"{url}/cat.png", max_bytes=10_000, timeout=5)
    # `localhost` resolves to loopback too: every address is checked, not only the first.
    with pytest.raises(InvalidRequest, match="loopback"):
        fetcher.fetch(f"http://localhost:{server.server_address[1]}/cat.png", max_bytes=10_000, timeout=5)


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    def resolve(host, port, type=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    with pytest.raises(InvalidRequest, match="private address"):
        GuardedImageFetcher(resolve=resolve).fetch("http://images.example/cat.png", max_bytes=10, timeout=1)


def test_only_http_urls_are_fetched():
    for url in ("file:///etc/passwd", "ftp://example.com/x.png", "gopher://x"):
        with pytest.raises(InvalidRequest, match="only http"):
            GuardedImageFetcher().fetch(url, max_bytes=10, timeout=1)


def allow_all(address):  # the bounds tests reach the loopback server only with the guard swapped out
    return None


def test_fetch_size_and_time_bounds(loopback):
    url, _ = loopback
    fetcher = GuardedImageFetcher(refuse=allow_all)
    image = fetcher.fetch(f"{url}/cat.png", max_bytes=10_000, timeout=5)
    assert image.data == PNG and image.media_type == "image/png"
    assert fetcher.fetch(f"{url}/redirect", max_bytes=10_000, timeout=5).data == PNG
    with pytest.raises(InvalidRequest, match="larger than 50 bytes"):
        fetcher.fetch(f"{url}/cat.png", max_bytes=50, timeout=5)  # refused by Content-Length
    with pytest.raises(InvalidRequest, match="larger than 100000 bytes"):
        fetcher.fetch(f"{url}/big.png", max_bytes=100_000, timeout=5)  # refused while reading
    with pytest.raises(InvalidRequest, match="took too long"):  # 50 bytes, 0.1 s apart: the deadline ends it
        fetcher.fetch(f"{url}/slow.png", max_bytes=100_000, timeout=1.0)
    with pytest.raises(InvalidRequest, match="HTTP 404"):
        fetcher.fetch(f"{url}/missing.png", max_bytes=100, timeout=5)


def test_redirects_to_internal_addresses_are_refused(loopback):
    url, _ = loopback
    calls = []

    def first_hop_only(address):  # the first hop passes; the redirect target must be vetted again
        calls.append(address)
        return None if len(calls) == 1 else "loopback"

    with pytest.raises(InvalidRequest, match="loopback"):
        GuardedImageFetcher(refuse=first_hop_only).fetch(f"{url}/redirect", max_bytes=10_000, timeout=5)
    assert len(calls) == 2


def test_the_resolver_fetches_only_when_remote_images_are_allowed(loopback):
    url, _ = loopback
    off = ImageResolver(ImagePolicy(allow_remote=False), GuardedImageFetcher(refuse=allow_all))
    with pytest.raises(InvalidRequest, match="MLX_SERVER_ALLOW_REMOTE_IMAGES"):
        off.resolve(ImageInput(url=f"{url}/cat.png"))
    on = ImageResolver(ImagePolicy(allow_remote=True), GuardedImageFetcher(refuse=allow_all))
    assert on.resolve(ImageInput(url=f"{url}/cat.png")).data == PNG
    guarded = ImageResolver(ImagePolicy(allow_remote=True), GuardedImageFetcher())
    with pytest.raises(InvalidRequest, match="loopback"):
        guarded.resolve(ImageInput(url=f"{url}/cat.png"))
    with pytest.raises(InvalidRequest, match="larger than"):
        ImageResolver(ImagePolicy(max_bytes=10)).resolve(ImageInput(data=PNG))
