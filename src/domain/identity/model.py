"""Users and API keys: who may call the server, and with what rights."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from domain.enums import UserStatus
from domain.errors import InvalidParameter

MAX_EMAIL_LENGTH = 254
MAX_KEY_NAME_LENGTH = 64
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively; a plain shape check catches typos like a missing '@'."""
    if not isinstance(email, str):
        raise InvalidParameter("email", "must be a string")
    value = email.strip().lower()
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value):
        raise InvalidParameter("email", f"not a valid address: {email!r}")
    return value


def new_email(email: str) -> str:
    """The address of a new account: `normalise_email`, and no control character (Unicode Cc) anywhere.

    Checked when an account is made, not when one is loaded or looked up: a row stored before this rule
    still lists, and an admin can still find and disable it.
    """
    value = normalise_email(email)
    control = next((char for char in value if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        raise InvalidParameter("email", f"must not contain control characters (found U+{ord(control):04X})")
    return value


def validate_key_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("name", "must be a non-empty string")
    name = name.strip()
    if len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidParameter("name", f"longer than {MAX_KEY_NAME_LENGTH} characters")
    return name


@dataclass
class User:
    email: str
    password_hash: str | None = None  # None: the user cannot log in with a password (e.g. the local admin)
    is_admin: bool = False
    status: UserStatus = UserStatus.PENDING
    created_at: datetime | None = None
    approved_at: datetime | None = None
    approved_by: int | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        self.email = normalise_email(self.email)
        self.status = UserStatus.parse(self.status) if isinstance(self.status, str) else UserStatus(self.status)

    @property
    def is_active(self) -> bool:
        return self.status is UserStatus.APPROVED


@dataclass
class ApiKey:
    """Only the sha256 of the key is kept; `prefix` lets people recognise a key in listings."""

    name: str
    user_id: int
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    id: int | None = None
    # Made by the machine owner (CLI) or by an admin: only such keys let `serve` expose the server.
    trusted: bool = False

    def __post_init__(self) -> None:
        self.name = validate_key_name(self.name)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int | None
    email: str
    is_admin: bool
    key_id: int | None = None
    # Authenticated with a trusted key (made by the owner's CLI or a trusted admin): what this caller makes
    # is trusted too. The local owner (user_id None: the CLI, the CLI token) is trusted by definition.
    trusted: bool = False
