"""`mlxm catalog keygen|sign|verify|status|refresh`: the signed remote catalog (issue 17)."""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.cli.base import INPUT_FILE, echo_json, get_container


def _remote(container):
    """The remote catalog service, or None when the embedded catalog is in use by configuration."""
    provider = container.catalog_provider()
    return provider if hasattr(provider, "refresh") and hasattr(provider, "status") else None


@click.command("keygen")
@click.argument("private_key", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def keygen(ctx: click.Context, private_key: str, as_json: bool) -> None:
    """Write a new Ed25519 private key (mode 0600) to PRIVATE_KEY and its public key to PRIVATE_KEY.pub."""
    if Path(private_key).exists() or Path(private_key + ".pub").exists():
        raise click.UsageError(f"{private_key} or {private_key}.pub already exists; mlxm never overwrites a key")
    pair = get_container(ctx).catalog_publisher().keygen(private_key)
    if as_json:
        echo_json(pair.__dict__)
        return
    click.echo(f"private key: {pair.private_key_path} (mode 0600; keep it secret)")
    click.echo(f"public key:  {pair.public_key_path}")
    click.echo(f"key id:      {pair.key_id}")
    click.echo(f"clients set: MLX_CATALOG_PUBKEY={pair.public_key}")


@click.command("sign")
@click.argument("catalog_file", type=INPUT_FILE)
@click.option("--key", "private_key", required=True, type=INPUT_FILE,
              help="The Ed25519 private key (PEM) from `mlxm catalog keygen`.")
@click.option("--output", type=click.Path(dir_okay=False), help="Signature file (default CATALOG_FILE.sig).")
@click.pass_context
def sign(ctx: click.Context, catalog_file: str, private_key: str, output: str | None) -> None:
    """Sign CATALOG_FILE's exact bytes; refuses a catalog clients would refuse (invariants, expiry, key id)."""
    data = Path(catalog_file).read_bytes()
    signature, signed = get_container(ctx).catalog_publisher().sign(data, private_key)
    target = Path(output or catalog_file + ".sig")
    _write_signature(target, signature)
    click.echo(f"signed {catalog_file} (sequence {signed.header.sequence}, key {signed.header.key_id}, "
               f"{len(signed.catalog)} models, expires {signed.header.expires_at.isoformat()}) -> {target}")


def _write_signature(path: Path, data: bytes) -> None:
    import os

    from adapters.filesystem.durability import write_atomic

    if path.exists() and not path.is_file():
        # /dev/stdout, a FIFO: written into as a shell redirect would (a rename would replace the device).
        with open(path, "wb") as stream:
            stream.write(data)
        return
    real = Path(os.path.realpath(path))  # a link to the .sig stays a link; the file it names is replaced
    # Never a half-written .sig under the name: a failure leaves the previous signature as it was.
    write_atomic(real, data, user_file=True)  # an existing .sig keeps its permissions


@click.command("verify")
@click.argument("catalog_file", type=INPUT_FILE)
@click.option("--pubkey", required=True, help="Base64 Ed25519 public key, or a file holding it (KEY.pub or PEM).")
@click.option("--signature", "signature_file", type=click.Path(dir_okay=False),
              help="Signature file (default CATALOG_FILE.sig).")
@click.pass_context
def verify(ctx: click.Context, catalog_file: str, pubkey: str, signature_file: str | None) -> None:
    """Check CATALOG_FILE as a client would: signature, key, expiry, catalog invariants."""
    sig_path = Path(signature_file or catalog_file + ".sig")
    if not sig_path.is_file():
        from domain.catalog.signed import CatalogRefused

        raise CatalogRefused(f"no signature file {sig_path}")
    signed = get_container(ctx).catalog_publisher().verify(
        Path(catalog_file).read_bytes(), sig_path.read_bytes(), pubkey)
    click.echo(f"ok: {catalog_file} sequence {signed.header.sequence}, key {signed.header.key_id}, "
               f"{len(signed.catalog)} models, expires {signed.header.expires_at.isoformat()}")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{s // 60}m {s % 60}s"
    return f"{s}s"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Which catalog is in use: source, sequence, age, key id."""
    container = get_container(ctx)
    remote = _remote(container)
    now = container.clock().now()
    if remote is None:
        catalog = container.catalog_provider().load_catalog()
        data = {"source": "embedded", "url": None, "key_id": None, "sequence": None, "issued_at": None,
                "expires_at": None, "fetched_at": None, "age_seconds": None, "models": len(catalog),
                "problem": None}
    else:
        data = remote.status().to_dict(now)
    if as_json:
        echo_json(data)
        return
    click.echo(f"source:   {data['source']}" + (f" ({data['url']})" if data["url"] else ""))
    click.echo(f"models:   {data['models']}")
    if data["sequence"] is not None:
        click.echo(f"sequence: {data['sequence']}")
        click.echo(f"key id:   {data['key_id']}")
        click.echo(f"issued:   {data['issued_at']}  expires: {data['expires_at']}")
        click.echo(f"fetched:  {data['fetched_at'] or '-'} (age {_age(data['age_seconds'])})")
    elif data["key_id"]:
        click.echo(f"key id:   {data['key_id']}")
    if data["problem"]:
        click.echo(f"problem:  {data['problem']}")


@click.command("refresh")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def refresh(ctx: click.Context, as_json: bool) -> None:
    """Fetch and verify the remote catalog now; a refusal keeps the catalog in use and exits non-zero."""
    remote = _remote(get_container(ctx))
    if remote is None:
        raise click.UsageError("MLX_CATALOG_URL is not set: the embedded catalog is in use")
    remote.fetch_when_stale = False  # this command is the fetch; do not fetch twice
    result = remote.refresh()
    if as_json:
        echo_json(result.__dict__)
        return
    what = "accepted" if result.changed else "unchanged"
    click.echo(f"catalog {what}: sequence {result.sequence} (was {result.previous_sequence or '-'}), "
               f"{result.models} models")


COMMANDS = [keygen, sign, verify, status, refresh]


def catalog_group_with_remote() -> click.Group:
    """`mlxm catalog` with the publisher and refresh commands (keygen, sign, verify, status, refresh)."""
    from entrypoints.cli.catalog.commands import catalog_group

    for command in COMMANDS:
        if command.name not in catalog_group.commands:
            catalog_group.add_command(command)
    return catalog_group
