"""Ed25519 detached signatures for catalog files, through `cryptography`.

Formats (also in the README):
* private key: PEM, PKCS#8, unencrypted (`-----BEGIN PRIVATE KEY-----`), file mode 0600;
* public key (`MLX_CATALOG_PUBKEY`): the 32 raw key bytes in standard base64 (44 characters), or
  the path of a file holding that text or a PEM `PUBLIC KEY`;
* key id: the first 16 hex digits of sha256 over the 32 raw public key bytes;
* signature file (`<catalog>.sig`): one JSON object
  `{"algorithm": "ed25519", "key_id": "<key id>", "signature": "<base64 of 64 bytes>"}`,
  the signature being over the exact bytes of the catalog file (no canonicalisation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from application.catalog.ports import KeyFileRefused, KeyPair, SignatureRejected

ALGORITHM = "ed25519"


def key_id_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def _raw_public(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(text: str):
    """`MLX_CATALOG_PUBKEY`: base64 of the raw 32 bytes, or a file with that text or a PEM public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    value = text.strip()
    raw = _b64_32(value)
    if raw is None:
        path = Path(value).expanduser()
        if not path.is_file():
            raise KeyFileRefused("MLX_CATALOG_PUBKEY is neither a base64 Ed25519 public key nor a key file")
        content = path.read_bytes().strip()
        if content.startswith(b"-----BEGIN"):
            try:
                key = serialization.load_pem_public_key(content)
            except ValueError as exc:
                raise KeyFileRefused(f"{path}: not a PEM public key ({exc})") from None
            if not isinstance(key, Ed25519PublicKey):
                raise KeyFileRefused(f"{path}: not an Ed25519 public key")
            return key
        raw = _b64_32(content.decode("ascii", "replace"))
        if raw is None:
            raise KeyFileRefused(f"{path}: not a base64 Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def _b64_32(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


class Ed25519SignatureVerifier:
    """Verifies signature files against the one trusted public key."""

    def __init__(self, public_key_text: str) -> None:
        self._key = load_public_key(public_key_text)
        self._key_id = key_id_of(_raw_public(self._key))

    @property
    def key_id(self) -> str:
        return self._key_id

    def verify(self, data: bytes, signature: bytes) -> None:
        from cryptography.exceptions import InvalidSignature

        if not signature.strip():
            raise SignatureRejected("the signature file is empty")
        try:
            envelope = json.loads(signature.decode("utf-8"))
            algorithm, key_id, sig_b64 = envelope["algorithm"], envelope["key_id"], envelope["signature"]
            raw = base64.b64decode(sig_b64, validate=True)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
            raise SignatureRejected("the signature file is not an mlxm signature (JSON with algorithm, "
                                    "key_id, signature)") from None
        if algorithm != ALGORITHM:
            raise SignatureRejected(f"signature algorithm {algorithm!r} is not {ALGORITHM}")
        if key_id != self._key_id:
            raise SignatureRejected(f"signed with key {key_id}, not with MLX_CATALOG_PUBKEY (key {self._key_id})")
        try:
            self._key.verify(raw, data)
        except InvalidSignature:
            raise SignatureRejected(
                f"the signature does not verify over these bytes with key {self._key_id}") from None


class Ed25519CatalogSigner:
    """The publisher's tools: key generation and signing."""

    def generate(self, private_key_path: str) -> KeyPair:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        raw = _raw_public(key.public_key())
        public_text = base64.b64encode(raw).decode("ascii")
        private_path = Path(private_key_path).expanduser()
        public_path = private_path.with_name(private_path.name + ".pub")
        # O_EXCL: never overwrite a key; 0600 from the first byte (no window where others can read it).
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.chmod(private_path, 0o600)  # whatever the umask did
        public_path.write_text(public_text + "\n", encoding="ascii")
        return KeyPair(str(private_path), str(public_path), public_text, key_id_of(raw))

    def _private_key(self, private_key_path: str):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = Path(private_key_path).expanduser()
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            # Anyone who can read this key can publish catalogs every client trusts.
            raise KeyFileRefused(f"private key {path} is readable by others (mode {oct(mode)}); "
                                 f"run `chmod 600 {path}` (and consider the key leaked if others read it)")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileRefused(f"{path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileRefused(f"{path}: not an Ed25519 private key")
        return key

    def public_key_id(self, private_key_path: str) -> str:
        return key_id_of(_raw_public(self._private_key(private_key_path).public_key()))

    def sign(self, private_key_path: str, data: bytes) -> bytes:
        key = self._private_key(private_key_path)
        envelope = {"algorithm": ALGORITHM, "key_id": key_id_of(_raw_public(key.public_key())),
                    "signature": base64.b64encode(key.sign(data)).decode("ascii")}
        return (json.dumps(envelope) + "\n").encode("ascii")
