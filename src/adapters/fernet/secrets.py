"""Encryption at rest for cloud credentials: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from `MLX_MANAGER_SECRET_KEY`, or from `<MLX_MANAGER_HOME>/secret.key`, which is
created with mode 0600 on first use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from pathlib import Path

import structlog

from application.errors import SecretUnreadable

KEY_FILE_NAME = "secret.key"
log = structlog.get_logger("mlxm.secrets")


def _is_fernet_key(raw: bytes) -> bool:
    try:
        return len(base64.urlsafe_b64decode(raw)) == 32
    except (ValueError, TypeError, binascii.Error):
        return False


def _fernet_key(material: str | bytes) -> bytes:
    """Accept a real Fernet key, or derive one from any passphrase (sha256 -> 32 bytes)."""
    raw = material.encode() if isinstance(material, str) else material
    raw = raw.strip()
    if _is_fernet_key(raw):
        return raw
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_or_create_key_file(home: Path) -> bytes:
    """Read the key file, creating it atomically with mode 0600 if it does not exist."""
    path = home / KEY_FILE_NAME
    home.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    # The complete key goes into a private temp file which is then hard-linked into place: the name
    # never points at a half-written (or empty) key, and of two processes starting at once the first
    # link wins while the other reads the winner's key.
    from cryptography.fernet import Fernet

    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE_NAME}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        os.unlink(temp)


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        # Anyone who can read this file can decrypt every stored credential.
        try:
            os.chmod(path, 0o600)
            log.warning("secret key file was readable by others; its mode is now 0600", path=str(path),
                        was=oct(mode))
        except OSError as exc:
            log.warning("secret key file is readable by others and cannot be made private", path=str(path),
                        mode=oct(mode), error=str(exc))
    raw = path.read_bytes().strip()
    if not _is_fernet_key(raw):
        # Never fall back to a key derived from the contents: from an empty file that is sha256(b""), public.
        raise SecretUnreadable(
            f"{path} does not hold a valid key: restore it from a backup, or set MLX_MANAGER_SECRET_KEY"
        )
    return raw


class FernetSecretCipher:
    def __init__(self, key: str | bytes | None = None, home: Path | None = None) -> None:
        """`key` (e.g. MLX_MANAGER_SECRET_KEY) wins; otherwise the key file under `home` is used."""
        if key is None and home is None:
            raise ValueError("FernetSecretCipher needs a key or a home directory")
        self._key_material = key
        self._home = home
        self._fernet = None

    def _get(self):
        # Lazy: the key file is only created when a credential is first stored or read.
        if self._fernet is None:
            from cryptography.fernet import Fernet

            material = self._key_material if self._key_material else load_or_create_key_file(self._home)
            self._fernet = Fernet(_fernet_key(material))
        return self._fernet

    def encrypt(self, plaintext: str) -> str:
        return self._get().encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._get().decrypt(token.encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretUnreadable(
                "a stored credential cannot be decrypted: MLX_MANAGER_SECRET_KEY or the key file changed"
            ) from exc

    def __repr__(self) -> str:
        return "FernetSecretCipher(<key hidden>)"
