"""The key file that encrypts cloud credentials at rest: created whole, private, and never guessable."""

from __future__ import annotations

import stat
import threading

import pytest

from adapters.fernet.secrets import KEY_FILE_NAME, FernetSecretCipher, load_or_create_key_file
from application.errors import SecretUnreadable


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_many_processes_starting_at_once_share_one_complete_key(tmp_path):
    barrier, keys, errors = threading.Barrier(8), [], []

    def start():
        barrier.wait()
        try:
            keys.append(load_or_create_key_file(tmp_path))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(keys) == 8 and len(set(keys)) == 1
    assert len(keys[0]) == 44  # a urlsafe-base64 Fernet key
    key_file = tmp_path / KEY_FILE_NAME
    assert _mode(key_file) == 0o600 and key_file.read_bytes().strip() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]  # no temp files left behind


@pytest.mark.parametrize("contents", [b"", b"\n", b"half-written", b"QUJD"])
def test_an_empty_or_damaged_key_file_is_refused_not_used_as_a_passphrase(tmp_path, contents):
    # The loser of the old O_EXCL race read an empty file and encrypted with sha256(b""): a public key.
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_bytes(contents)
    key_file.chmod(0o600)
    with pytest.raises(SecretUnreadable, match="valid key"):
        load_or_create_key_file(tmp_path)
    with pytest.raises(SecretUnreadable):
        FernetSecretCipher(home=tmp_path).encrypt("sk-secret")
    assert key_file.read_bytes() == contents  # a damaged key is reported, never replaced


def test_a_key_file_readable_by_others_is_made_private(tmp_path):
    first = load_or_create_key_file(tmp_path)
    key_file = tmp_path / KEY_FILE_NAME
    key_file.chmod(0o644)
    assert load_or_create_key_file(tmp_path) == first
    assert _mode(key_file) == 0o600


def test_credentials_survive_a_new_cipher_on_the_same_key_file(tmp_path):
    token = FernetSecretCipher(home=tmp_path).encrypt("sk-secret")
    assert "sk-secret" not in token
    assert FernetSecretCipher(home=tmp_path).decrypt(token) == "sk-secret"
