"""`mlxm catalog keygen | sign | verify | refresh | status` end to end, with a loopback catalog server."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.catalog_server import CatalogServer, catalog_document, encode, team_model
from tests.support.full_disk import FillingDisk


def mlxm(env: dict, *args: str):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_publish_refresh_status_and_a_tampered_catalog(tmp_path) -> None:
    home = tmp_path / "home"
    base = {"MLX_MANAGER_HOME": str(home)}
    key = str(tmp_path / "team.key")
    generated = mlxm(base, "catalog", "keygen", key, "--json")
    assert generated.exit_code == 0, generated.output
    pair = json.loads(generated.output)
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert mlxm(base, "catalog", "keygen", key).exit_code == 2  # never overwrites a key

    catalog_file = tmp_path / "catalog.json"
    models = [team_model("team-tiny-v1", "org/tiny", aliases=["tiny"])]
    catalog_file.write_bytes(encode(catalog_document(sequence=1, key_id=pair["key_id"], models=models)))
    signed = mlxm(base, "catalog", "sign", str(catalog_file), "--key", key)
    assert signed.exit_code == 0 and "sequence 1" in signed.output, signed.output
    verified = mlxm(base, "catalog", "verify", str(catalog_file), "--pubkey", pair["public_key_path"])
    assert verified.exit_code == 0 and verified.output.startswith("ok:"), verified.output

    with CatalogServer() as server:
        server.put("/catalog.json", catalog_file.read_bytes())
        server.put("/catalog.json.sig", (tmp_path / "catalog.json.sig").read_bytes())
        env = {**base, "MLX_CATALOG_URL": server.url + "/catalog.json", "MLX_CATALOG_PUBKEY": pair["public_key"]}
        refreshed = mlxm(env, "catalog", "refresh")
        assert refreshed.exit_code == 0 and "catalog accepted: sequence 1" in refreshed.output, refreshed.output
        status = json.loads(mlxm(env, "catalog", "status", "--json").output)
        assert (status["source"], status["sequence"], status["key_id"]) == ("cache", 1, pair["key_id"])
        assert json.loads(mlxm(env, "catalog", "show", "tiny", "--json").output)["id"] == "team-tiny-v1"

        # Tampered: the publisher's file changed after signing (a new model slipped in).
        tampered = catalog_document(sequence=2, key_id=pair["key_id"],
                                    models=models + [team_model("team-evil-v1", "org/evil")])
        server.put("/catalog.json", encode(tampered))
        refused = mlxm(env, "catalog", "refresh")
        assert refused.exit_code == 6
        assert one_error_line(refused) == (
            f"Error: catalog refused: the signature does not verify over these bytes with key {pair['key_id']}")
        status = json.loads(mlxm(env, "catalog", "status", "--json").output)
        assert status["sequence"] == 1  # the last good catalog is still in use
        assert mlxm(env, "catalog", "verify", str(catalog_file), "--pubkey", pair["public_key"]).exit_code == 0


def test_without_the_variables_status_is_the_embedded_catalog_and_refresh_is_a_usage_error(tmp_path) -> None:
    env = {"MLX_MANAGER_HOME": str(tmp_path / "home"), "MLX_CATALOG_URL": None, "MLX_CATALOG_PUBKEY": None}
    status = json.loads(mlxm(env, "catalog", "status", "--json").output)
    assert status["source"] == "embedded" and status["sequence"] is None
    refresh = mlxm(env, "catalog", "refresh")
    assert refresh.exit_code == 2 and "MLX_CATALOG_URL is not set" in refresh.output
    assert not (tmp_path / "home" / "catalog").exists()


def test_a_url_without_a_public_key_never_uses_the_remote_catalog(tmp_path) -> None:
    env = {"MLX_MANAGER_HOME": str(tmp_path / "home"), "MLX_CATALOG_URL": "http://127.0.0.1:9/catalog.json",
           "MLX_CATALOG_PUBKEY": None}
    status = json.loads(mlxm(env, "catalog", "status", "--json").output)
    assert status["source"] == "embedded" and "MLX_CATALOG_PUBKEY is not" in status["problem"]
    assert "unsigned catalog is never used" in one_error_line(mlxm(env, "catalog", "refresh"))


def test_signing_with_a_key_readable_by_others_is_refused(tmp_path) -> None:
    base = {"MLX_MANAGER_HOME": str(tmp_path / "home")}
    key = str(tmp_path / "team.key")
    pair = json.loads(mlxm(base, "catalog", "keygen", key, "--json").output)
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_bytes(encode(catalog_document(sequence=1, key_id=pair["key_id"])))
    os.chmod(key, 0o640)
    line = one_error_line(mlxm(base, "catalog", "sign", str(catalog_file), "--key", key))
    assert "is readable by others (mode 0o640)" in line and "chmod 600" in line
    assert not (tmp_path / "catalog.json.sig").exists()


def test_sign_refuses_a_catalog_clients_would_refuse(tmp_path) -> None:
    base = {"MLX_MANAGER_HOME": str(tmp_path / "home")}
    key = str(tmp_path / "team.key")
    json.loads(mlxm(base, "catalog", "keygen", key, "--json").output)
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_bytes(encode(catalog_document(sequence=1, key_id="0000000000000000")))
    line = one_error_line(mlxm(base, "catalog", "sign", str(catalog_file), "--key", key))
    assert "it names key 0000000000000000, but the signing key is key" in line


def test_a_sign_that_fails_midway_leaves_the_previous_signature_untouched(tmp_path, monkeypatch) -> None:
    import io

    base = {"MLX_MANAGER_HOME": str(tmp_path / "home")}
    key = str(tmp_path / "team.key")
    pair = json.loads(mlxm(base, "catalog", "keygen", key, "--json").output)
    published = tmp_path / "site"
    published.mkdir()
    catalog_file = published / "catalog.json"
    catalog_file.write_bytes(encode(catalog_document(sequence=1, key_id=pair["key_id"])))
    assert mlxm(base, "catalog", "sign", str(catalog_file), "--key", key).exit_code == 0
    sig = published / "catalog.json.sig"
    os.chmod(sig, 0o644)
    good = sig.read_bytes()

    disk = FillingDisk(10, sig.name)  # the temp `.catalog.json.sig.<random>.tmp` takes 10 bytes, then ENOSPC
    catalog_file.write_bytes(encode(catalog_document(sequence=2, key_id=pair["key_id"])))
    monkeypatch.setattr(io, "open", disk)  # write_atomic writes the temp file through os.fdopen -> io.open
    failed = mlxm(base, "catalog", "sign", str(catalog_file), "--key", key)
    monkeypatch.undo()
    assert disk.refused == 1  # the write under test did fail, halfway
    assert failed.exit_code != 0 and "No space left on device" in one_error_line(failed)
    assert sig.read_bytes() == good, "the previous signature is untouched"
    assert sorted(p.name for p in published.iterdir()) == ["catalog.json", "catalog.json.sig"], "no temp file left"

    assert mlxm(base, "catalog", "sign", str(catalog_file), "--key", key).exit_code == 0
    assert sig.read_bytes() != good and os.stat(sig).st_mode & 0o777 == 0o644  # the file keeps its permissions
    assert mlxm(base, "catalog", "verify", str(catalog_file), "--pubkey", pair["public_key_path"]).exit_code == 0
    # An --output that is a link stays a link: the file it names is what gets replaced.
    linked = tmp_path / "linked.sig"
    linked.symlink_to(sig)
    assert mlxm(base, "catalog", "sign", str(catalog_file), "--key", key, "--output", str(linked)).exit_code == 0
    assert linked.is_symlink() and linked.read_bytes() == sig.read_bytes()
