"""Fetch a catalog (or its signature) over HTTP with httpx: bounded time, bounded size.

httpx decodes `Content-Encoding: gzip` (and `zstd` when `zstandard` is installed); the size cap
applies to the decoded bytes, so a small compressed body cannot expand without bound either.
"""

from __future__ import annotations

import time

from application.catalog.ports import CatalogFetchFailed

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class HttpxCatalogFetcher:
    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES,
                 transport=None) -> None:
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes
        self._transport = transport

    def fetch(self, url: str) -> bytes:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise CatalogFetchFailed(f"only http(s) URLs are supported, not {url!r}")
        # httpx's timeout bounds each connect/read; the deadline bounds the whole transfer, so a
        # server that drips one byte per second cannot hold a refresh forever.
        deadline = time.monotonic() + self._timeout
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=True, transport=self._transport) as client:
                with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise CatalogFetchFailed(f"HTTP {response.status_code}")
                    declared = response.headers.get("content-length")
                    encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
                    if declared and declared.isdigit() and not encoded and int(declared) > self._max_bytes:
                        raise CatalogFetchFailed(
                            f"body of {int(declared)} bytes is over the {self._max_bytes}-byte cap")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise CatalogFetchFailed(f"body is over the {self._max_bytes}-byte cap")
                        if time.monotonic() > deadline:
                            raise CatalogFetchFailed(f"timed out after {self._timeout:g} s")
                    return bytes(body)
        except httpx.TimeoutException:
            raise CatalogFetchFailed(f"timed out after {self._timeout:g} s") from None
        except httpx.DecodingError as exc:
            raise CatalogFetchFailed(f"undecodable body ({exc})") from None
        except httpx.HTTPError as exc:
            raise CatalogFetchFailed(f"{type(exc).__name__}: {exc}") from None
