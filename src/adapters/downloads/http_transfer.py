"""A resumable, hashing HTTP GET into a partial file that mlxm owns.

Why not `hf_hub_download`: recent huggingface_hub writes one `*.incomplete` file per process
and deletes it on failure, so a killed pull starts over. mlxm keeps the partial bytes in its
staging area and asks for the rest with `Range: bytes=N-`.

While the bytes are written they are also hashed (sha256), and the digest is cached next to
the file in `<dest>.sha256` keyed by size and mtime, so verifying a 256 MB file does not read
it a second time. A stale or missing cache is simply recomputed by the verifier.

The transports (`StdlibHttp`, `HttpxHttp`) are in `http_transports.py`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from application.errors import (NO_SPACE_ERRNOS, DownloadCancelled, Forbidden, IntegrityError, InvalidRequest,
                                OutOfSpace, SourceError, Unauthorized, is_out_of_space)
from adapters.downloads.http_transports import accepted_encodings
from adapters.downloads.writeback import WRITEBACK_EVERY_BYTES, EarlyWriteback
from adapters.filesystem.hash_cache import drop_hash_cache, read_hash_cache, write_hash_cache

HASH_READ_BYTES = 8 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class TransferLimits:
    """Deadlines of every hub call (`MLX_MANAGER_DOWNLOAD_*`): a source that stops answering or
    drips bytes costs a bounded time, then a retry from the bytes on disk (Range), then the next source.

    - connect / read: the socket may wait this long to connect, and for each read;
    - stall: fewer than `stall_bytes` arriving in `stall_seconds` counts as a dropped connection;
    - retries: attempts after the first, `backoff_seconds` * 2**n apart (at most 30 s);
    - writeback: every `writeback_bytes` received, a background fdatasync starts (0: none; see writeback.py);
    - receive_buffer_bytes: SO_RCVBUF of each connection (0: the OS's autotuning; see notes/pull.md).
    """

    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    stall_seconds: float = 30.0
    stall_bytes: int = 64 * 1024
    retries: int = 3
    backoff_seconds: float = 0.5
    writeback_bytes: int = WRITEBACK_EVERY_BYTES
    receive_buffer_bytes: int = 0

    def backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** max(0, attempt - 1))


class TransientTransferError(SourceError):
    """A dropped connection or a 5xx: worth another attempt from the bytes on disk."""


# --------------------------------------------------------------------------- the transfer


def _hash_prefix(path: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_READ_BYTES):
            digest.update(block)
    return digest


def fetch_resumable(
    transport,
    url: str,
    dest: Path,
    *,
    label: str,
    expected_size: int | None,
    progress: Callable[[str, int, int | None], None],
    headers: dict[str, str] | None = None,
    retries: int | None = None,
    backoff_seconds: float | None = None,
    limits: TransferLimits | None = None,
) -> Path:
    """GET `url` into `dest`, appending to the bytes already there; retry transient failures.

    `transport` is a `StdlibHttp` or `HttpxHttp`. `progress(label, done, total)` is called per
    chunk; it may raise `DownloadCancelled` to stop the transfer, which keeps the partial bytes.
    A transfer that stalls (see TransferLimits) is a transient failure like a dropped connection.
    """
    limits = limits or TransferLimits()
    retries = limits.retries if retries is None else retries
    if backoff_seconds is not None:
        limits = replace(limits, backoff_seconds=backoff_seconds)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        try:
            _fetch_once(transport, url, dest, label=label, expected_size=expected_size, progress=progress,
                        headers=headers or {}, limits=limits)
            return dest
        except TransientTransferError as exc:
            attempt += 1
            if attempt > retries:
                raise TransientTransferError(f"{exc} (gave up after {attempt} attempts)") from exc
            time.sleep(limits.backoff(attempt))


class _StallWatch:
    """Fewer than `stall_bytes` in any `stall_seconds` window: the source is dripping, not sending."""

    def __init__(self, limits: TransferLimits, label: str) -> None:
        self.limits, self.label = limits, label
        self.window_start = time.monotonic()
        self.window_bytes = 0

    def add(self, n: int) -> None:
        self.window_bytes += n
        now = time.monotonic()
        if now - self.window_start >= self.limits.stall_seconds:
            if self.window_bytes < self.limits.stall_bytes:
                raise TransientTransferError(
                    f"{self.label}: stalled ({self.window_bytes} bytes in {now - self.window_start:.0f} s)")
            self.window_start, self.window_bytes = now, 0


def _fetch_once(transport, url, dest: Path, *, label, expected_size, progress, headers,
                limits: TransferLimits | None = None) -> None:
    limits = limits or TransferLimits()
    stall = _StallWatch(limits, label)
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
    # Compressed in transit only from the first byte: a resumed Range is asked for as identity, so the
    # partial (always decoded bytes) and the server's byte offsets mean the same thing.
    request_headers.setdefault("Accept-Encoding", "identity" if have else accepted_encodings())
    done = 0
    try:
        with transport.get(url, request_headers) as response:
            status = response.status
            if status == 416:
                dest.unlink(missing_ok=True)  # our partial does not fit the remote file: start over
                raise TransientTransferError(f"{label}: range not satisfiable, restarting")
            _raise_for_status(status, label, url)
            encoded = (response.header("Content-Encoding") or "identity").strip().lower() not in ("", "identity")
            if status == 206 and encoded:
                _discard(dest)  # a range of an encoded body: its offsets are not our file's
                raise TransientTransferError(f"{label}: the server compressed a range; restarting")
            if status == 206 and have:
                match = _CONTENT_RANGE.match(response.header("Content-Range") or "")
                if match is None or int(match.group(1)) != have:
                    dest.unlink(missing_ok=True)
                    raise TransientTransferError(f"{label}: the server answered another range; restarting")
                if expected_size is not None and match.group(3) != "*" and int(match.group(3)) != expected_size:
                    _discard(dest)
                    raise IntegrityError(label, f"{expected_size} bytes", f"{match.group(3)} bytes (Content-Range)")
                digest = _hash_prefix(dest)
                mode = "ab"
                done = have
            else:
                digest = hashlib.sha256()  # a 200 answers with the whole file: start from zero
                mode = "wb"
            total = expected_size
            length = response.header("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if encoded:
                length = None  # it counts compressed bytes; the body is decoded: judge the decoded bytes
            if total is None:
                total = (done + length) if length is not None else None
            elif length is not None and done + length != total:
                # Checked before writing: the announced body cannot be the listed file.
                _discard(dest)
                raise IntegrityError(label, f"{total} bytes", f"{done + length} bytes (Content-Length)")
            progress(label, done, total)
            with open(dest, mode) as out, EarlyWriteback(out, limits.writeback_bytes) as writeback:
                for chunk in response.chunks():
                    if expected_size is not None and done + len(chunk) > expected_size:
                        writeback.wait()  # no flush may outlive the descriptor
                        out.close()
                        _discard(dest)  # more bytes than the file has: none of them is trustworthy
                        raise IntegrityError(label, f"{expected_size} bytes", f"more than {expected_size} bytes")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(label, done, total)
                    stall.add(len(chunk))
                    writeback.wrote(len(chunk))
    except (DownloadCancelled, SourceError, Unauthorized, Forbidden):
        raise
    except transport.errors as exc:
        if isinstance(exc, OSError) and exc.errno in _LOCAL_WRITE_ERRNOS:
            # Our disk, not the source: retrying (or the next source) cannot help, and "connection failed"
            # would send the user to look at the network. The bytes written so far stay for a resume.
            # Name the partial file itself (not its scratch folder): it is what the user can inspect, and
            # its size is the bytes a resume will not fetch again.
            message = (f"{label}: cannot write the partial file {dest}: {exc.strerror} "
                       f"({_size(dest)} bytes kept; free space, then resume)")
            if is_out_of_space(exc):
                raise OutOfSpace(message, path=str(dest)) from exc  # a full disk: 507 / its own exit code
            raise InvalidRequest(message) from exc
        raise TransientTransferError(f"{label}: connection failed after {_size(dest)} bytes: {exc}") from exc
    if expected_size is not None and done < expected_size:
        raise TransientTransferError(f"{label}: connection closed at {done} of {expected_size} bytes")
    write_hash_cache(dest, digest.hexdigest())


_LOCAL_WRITE_ERRNOS = NO_SPACE_ERRNOS | {errno.EROFS, errno.EFBIG}


def _discard(dest: Path) -> None:
    dest.unlink(missing_ok=True)
    drop_hash_cache(dest)


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
