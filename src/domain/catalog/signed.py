"""Rules for a signed remote catalog (issue 17): its header, rollback, expiry and immutable IDs.

A remote catalog has the embedded catalog's shape plus `sequence`, `issued_at`, `expires_at`
and `key_id`. Whether its signature verifies is the application's business (a port); this
module decides whether verified bytes may replace the catalog in use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

from domain.catalog.model import Catalog, CatalogModel, catalog_from_dict
from domain.enums import SourceKind
from domain.errors import DomainError, InvalidCatalog


class CatalogRefused(DomainError):
    """A remote (or cached) catalog that must not be used; `reason` is one line for the user."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"catalog refused: {reason}")


@dataclass(frozen=True)
class CatalogHeader:
    sequence: int
    issued_at: datetime
    expires_at: datetime
    key_id: str


@dataclass(frozen=True)
class SignedCatalog:
    header: CatalogHeader
    catalog: Catalog
    data: bytes  # the exact signed bytes


@dataclass(frozen=True)
class ModelIdentity:
    """What a canonical ID stands for: its repositories and revision. Never changes once accepted."""

    repos: tuple[str, ...]
    revision: str | None

    def to_dict(self) -> dict:
        return {"repos": list(self.repos), "revision": self.revision}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModelIdentity":
        return cls(tuple(data.get("repos", ())), data.get("revision"))

    def describe(self) -> str:
        return f"{', '.join(self.repos) or '-'}@{self.revision or 'default branch'}"


def identity_of(model: CatalogModel) -> ModelIdentity:
    # Mirrors are delivery, not identity: only the Hugging Face repositories (case-insensitive, as
    # the hub treats them) and the revision say which weights an ID means.
    repos = sorted({s.value.lower() for s in model.sources if s.kind is SourceKind.HUGGINGFACE_REPO})
    return ModelIdentity(tuple(repos), model.revision)


def identities(catalog: Catalog) -> dict[str, ModelIdentity]:
    return {m.id: identity_of(m) for m in catalog}


def _timestamp(data: Mapping, field: str) -> datetime:
    value = data.get(field)
    if not isinstance(value, str):
        raise CatalogRefused(f"{field} is missing or not an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CatalogRefused(f"{field} {value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise CatalogRefused(f"{field} {value!r} has no time zone")
    return parsed.astimezone(timezone.utc)


def parse_signed_catalog(data: bytes) -> SignedCatalog:
    """Header and catalog from the signed bytes; the embedded catalog's invariants apply."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CatalogRefused(f"not valid JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(document, dict):
        raise CatalogRefused("not a JSON object")
    sequence = document.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise CatalogRefused("sequence is missing or not a positive integer")
    key_id = document.get("key_id")
    if not isinstance(key_id, str) or not key_id:
        raise CatalogRefused("key_id is missing")
    issued_at = _timestamp(document, "issued_at")
    expires_at = _timestamp(document, "expires_at")
    if expires_at <= issued_at:
        raise CatalogRefused("expires_at is not after issued_at")
    try:
        catalog = catalog_from_dict(document)
    except InvalidCatalog as exc:
        raise CatalogRefused(f"breaks a catalog invariant: {exc}") from None
    except (KeyError, TypeError, ValueError, DomainError) as exc:
        raise CatalogRefused(f"malformed catalog entry: {type(exc).__name__}: {exc}") from None
    return SignedCatalog(CatalogHeader(sequence, issued_at, expires_at, key_id), catalog, bytes(data))


def check_acceptance(
    candidate: SignedCatalog,
    *,
    now: datetime,
    key_id: str,
    accepted_sequence: int | None,
    accepted_data: bytes | None,
    pins: Mapping[str, ModelIdentity],
    key_name: str = "MLX_CATALOG_PUBKEY",
) -> None:
    """Raise `CatalogRefused` unless `candidate` may replace the accepted catalog.

    `accepted_sequence`/`accepted_data`: the newest catalog accepted before (None: none yet).
    `pins`: the identity of every canonical ID any accepted catalog (or the embedded one) had.
    """
    header = candidate.header
    if header.key_id != key_id:
        raise CatalogRefused(f"it names key {header.key_id}, but {key_name} is key {key_id}")
    if now >= header.expires_at:
        raise CatalogRefused(f"expired at {header.expires_at.isoformat()} (sequence {header.sequence})")
    if accepted_sequence is not None:
        if header.sequence < accepted_sequence:
            raise CatalogRefused(
                f"rollback: sequence {header.sequence} is lower than the accepted sequence {accepted_sequence}")
        if header.sequence == accepted_sequence and accepted_data is not None and candidate.data != accepted_data:
            raise CatalogRefused(f"sequence {header.sequence} was already accepted with different content")
    changed = []
    for model_id, identity in identities(candidate.catalog).items():
        before = pins.get(model_id)
        if before is not None and before != identity:
            changed.append(f"{model_id} was {before.describe()}, now {identity.describe()}")
    if changed:
        raise CatalogRefused(
            "canonical IDs are immutable (a new repo or revision needs a new ID): " + "; ".join(changed))


def merge_pins(pins: Mapping[str, ModelIdentity], catalogs: Iterable[Catalog]) -> dict[str, ModelIdentity]:
    """Pins after accepting `catalogs`: earlier pins win (they are never rewritten)."""
    merged = dict(pins)
    for catalog in catalogs:
        for model_id, identity in identities(catalog).items():
            merged.setdefault(model_id, identity)
    return merged


def version_of(model_id: str) -> tuple[str, int]:
    """`qwen3-4b-v2` -> (`qwen3-4b`, 2): canonical IDs end in `-v<N>`."""
    stem, _, number = model_id.rpartition("-v")
    return stem, int(number)


def newer_ids(catalog: Catalog, installed_id: str) -> list[str]:
    """Catalog IDs that are newer versions of `installed_id`: same family and either the same stem with
    a higher `-v<N>`, or declaring `supersedes` it. Suggestions only: a new ID is a new model."""
    installed = catalog.get(installed_id)
    try:
        stem, number = version_of(installed_id)
    except ValueError:
        return [m.id for m in catalog.superseded_by(installed_id)]
    found = []
    for model in catalog:
        if model.id == installed_id:
            continue
        if installed_id in model.supersedes:
            found.append(model.id)
            continue
        if installed is not None and model.family != installed.family:
            continue
        try:
            other_stem, other_number = version_of(model.id)
        except ValueError:
            continue
        if other_stem == stem and other_number > number:
            found.append(model.id)
    return found
