"""A resumable, hashing HTTP GET into a partial file that mlxm owns.

Why not `hf_hub_download`: recent huggingface_hub writes one `*.incomplete` file per process
and deletes it on failure, so a killed pull starts over. mlxm keeps the partial bytes in its
staging area and asks for the rest with `Range: bytes=N-`.

While the bytes are written they are also hashed (sha256), and the digest is cached next to
the file in `<dest>.sha256` keyed by size and mtime, so verifying a 256 MB file does not read
it a second time. A stale or missing cache is simply recomputed by the verifier.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

from application.errors import DownloadCancelled, Forbidden, SourceError, Unauthorized
from application.hash_cache import read_hash_cache, write_hash_cache

CHUNK_BYTES = 1024 * 1024
HASH_READ_BYTES = 8 * 1024 * 1024


class TransientTransferError(SourceError):
    """A dropped connection or a 5xx: worth another attempt from the bytes on disk."""


def _hash_prefix(path: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_READ_BYTES):
            digest.update(block)
    return digest


def fetch_resumable(
    client,
    url: str,
    dest: Path,
    *,
    label: str,
    expected_size: int | None,
    progress: Callable[[str, int, int | None], None],
    headers: dict[str, str] | None = None,
    transport_errors: tuple[type[BaseException], ...] = (),
    retries: int = 3,
    backoff_seconds: float = 0.2,
) -> Path:
    """GET `url` into `dest`, appending to the bytes already there; retry transient failures.

    `client` is an httpx-compatible client (`client.stream("GET", url, headers=...)`).
    `progress(label, done, total)` is called per chunk; it may raise `DownloadCancelled`
    to stop the transfer, which keeps the partial bytes.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _fetch_once(client, url, dest, label=label, expected_size=expected_size, progress=progress,
                        headers=headers or {}, transport_errors=transport_errors)
            return dest
        except TransientTransferError:
            attempt += 1
            if attempt > retries:
                raise
            time.sleep(backoff_seconds * attempt)


def _fetch_once(client, url, dest: Path, *, label, expected_size, progress, headers, transport_errors) -> None:
    have = dest.stat().st_size if dest.exists() else 0
    if expected_size is not None and have > expected_size:
        dest.unlink()  # longer than the file can be: nothing in it is trustworthy
        have = 0
    if expected_size is not None and have == expected_size:
        progress(label, have, expected_size)
        if read_hash_cache(dest) is None:
            write_hash_cache(dest, _hash_prefix(dest).hexdigest())
        return
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    try:
        with client.stream("GET", url, headers=request_headers) as response:
            status = response.status_code
            if status == 416 and expected_size is not None and have == expected_size:
                return
            if status == 416:
                dest.unlink(missing_ok=True)  # our partial does not fit the remote file: start over
                raise TransientTransferError(f"{label}: range not satisfiable, restarting")
            _raise_for_status(status, label, url)
            if status == 206 and have:
                digest = _hash_prefix(dest)
                mode = "ab"
                done = have
            else:
                digest = hashlib.sha256()  # a 200 answers with the whole file: start from zero
                mode = "wb"
                done = 0
            total = expected_size
            if total is None:
                length = response.headers.get("Content-Length")
                total = (done + int(length)) if length and length.isdigit() else None
            progress(label, done, total)
            with open(dest, mode) as out:
                for chunk in response.iter_bytes():  # as received: a drop loses no buffered bytes
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(label, done, total)
                out.flush()
    except DownloadCancelled:
        raise
    except transport_errors as exc:
        raise TransientTransferError(f"{label}: connection failed after {_size(dest)} bytes: {exc}") from exc
    if expected_size is not None and done < expected_size:
        raise TransientTransferError(f"{label}: connection closed at {done} of {expected_size} bytes")
    write_hash_cache(dest, digest.hexdigest())


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _raise_for_status(status: int, label: str, url: str) -> None:
    if status in (200, 206):
        return
    if status == 401:
        raise Unauthorized(f"{label}: the source needs a token (HTTP 401); set HF_TOKEN")
    if status == 403:
        raise Forbidden(f"{label}: access denied by the source (HTTP 403)")
    if status == 404:
        raise SourceError(f"{label}: not found at {url} (HTTP 404)")
    if status == 429 or status >= 500:
        raise TransientTransferError(f"{label}: source answered HTTP {status}")
    raise SourceError(f"{label}: source answered HTTP {status}")
