"""How the local CLI proves to the server that it runs as the machine's owner: a per-home token file.

`$MLX_MANAGER_HOME/admin.token` holds 32 random bytes (hex), mode 0600, created on first use by
whichever of `mlxm serve` and the CLI comes first. The CLI sends it as `X-Mlxm-Local-Admin` to a
server on a loopback URL (never elsewhere); the server accepts it only on a connection from a
loopback address and then treats the request as the local admin. Reading the file needs the owner's
account, which can already edit the database, so the token grants nothing the owner lacks. A token
file readable by others is not trusted (and not sent) until its mode is 0600 again.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from pathlib import Path

TOKEN_FILE_NAME = "admin.token"
HEADER = "x-mlxm-local-admin"


def token_path(home: Path) -> Path:
    return Path(home) / TOKEN_FILE_NAME


def ensure_token(home: Path) -> str | None:
    """The home's token, created (atomically, 0600) if absent; None if the file is not private."""
    path = token_path(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{TOKEN_FILE_NAME}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temp, path)  # never a half-written token under the name; the first of two racers wins
            except FileExistsError:
                pass
        finally:
            os.unlink(temp)
    return read_token(home)


def read_token(home: Path) -> str | None:
    """The token if the file exists, belongs to this user and nobody else can read it."""
    path = token_path(home)
    try:
        info = path.stat()
        if info.st_mode & 0o077 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            return None
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token if len(token) >= 32 else None


def token_matches(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("latin-1", "replace"))
