"""Encryption at rest for cloud credentials: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from `MLX_MANAGER_SECRET_KEY`, or from `<MLX_MANAGER_HOME>/secret.key`, which is
created with mode 0600 on first use.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from application.errors import SecretUnreadable

KEY_FILE_NAME = "secret.key"


def _fernet_key(material: str | bytes) -> bytes:
    """Accept a real Fernet key, or derive one from any passphrase (sha256 -> 32 bytes)."""
    raw = material.encode() if isinstance(material, str) else material
    raw = raw.strip()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_or_create_key_file(home: Path) -> bytes:
    """Read the key file, creating it atomically with mode 0600 if it does not exist."""
    from cryptography.fernet import Fernet

    path = home / KEY_FILE_NAME
    home.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once never overwrite each other's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    return path.read_bytes()


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
