"""Users and API keys: registration, approval by an admin, key creation, revocation, authentication."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Callable

from application.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from application.ports import Clock
from application.ports import UnitOfWork
from domain.identity.model import (
    MAX_KEY_NAME_LENGTH,
    ApiKey,
    Principal,
    User,
    new_email,
    normalise_email,
    validate_key_name,
)
from domain.enums import UserStatus
from domain.errors import InvalidParameter

API_KEY_PREFIX = "mlxm-"
PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
MIN_PASSWORD_LENGTH = 8
LOCAL_ADMIN_EMAIL = "admin@localhost"
# The caller when auth is off: the server is only reachable from this machine.
LOCAL_PRINCIPAL = Principal(user_id=None, email="local", is_admin=True)


class ScryptPasswordHasher:
    """Salted scrypt from the standard library; the parameters travel inside the stored hash."""

    def __init__(self, n: int = 2**14, r: int = 8, p: int = 1) -> None:
        self.n, self.r, self.p = n, r, p
        self._dummy: str | None = None

    def dummy_hash(self) -> str:
        """A hash of a random password with this hasher's work factor, to verify against when there is no
        real one: a login for an unknown account then costs as much as one for a real account."""
        if self._dummy is None:
            self._dummy = self.hash(secrets.token_urlsafe(16))
        return self._dummy

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=self.n, r=self.r, p=self.p, dklen=32)
        return f"scrypt${self.n}${self.r}${self.p}${salt.hex()}${digest.hex()}"

    def verify(self, password: str, stored: str | None) -> bool:
        try:
            scheme, n, r, p, salt, expected = (stored or "").split("$")
            if scheme != "scrypt":
                return False
            digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                    dklen=len(expected) // 2)
        except ValueError:
            return False
        return hmac.compare_digest(digest.hex(), expected)


def hash_api_key(raw_key: str) -> str:
    # The key has 256 bits of entropy: a plain sha256 cannot be brute-forced, and lookups stay O(1).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CreatedKey:
    """The only moment the raw key exists: show `secret` once, store only `key`."""

    key: ApiKey
    secret: str


UowFactory = Callable[[], UnitOfWork]


MAX_ROW_ID = 2**63 - 1  # SQL integer ids are 64-bit: a larger number names no row (and must not overflow)


def _find_user(uow, ref: int | str) -> User:
    user = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isascii() and ref.isdigit()):
        if 0 < int(ref) <= MAX_ROW_ID:
            user = uow.users.get(int(ref))
    elif isinstance(ref, str) and "@" in ref:
        user = uow.users.get_by_email(normalise_email(ref))
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


class UserService:
    """Register users (pending), approve or disable them (admins), log them in."""

    def __init__(self, uow: UowFactory, clock: Clock, hasher: ScryptPasswordHasher | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._hasher = hasher or ScryptPasswordHasher()

    def register(self, email: str, password: str | None, *, is_admin: bool = False, approved: bool = False) -> User:
        """A new user starts `pending` unless an admin creates it approved."""
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequest(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        email = new_email(email)
        password_hash = self._hasher.hash(password) if password is not None else None
        now = self._clock.now()
        with self._uow() as uow:
            if uow.users.get_by_email(email) is not None:
                raise Conflict(f"user {email} already exists")
            user = uow.users.add(User(
                email=email, password_hash=password_hash, is_admin=is_admin,
                status=UserStatus.APPROVED if approved else UserStatus.PENDING,
                created_at=now, approved_at=now if approved else None,
            ))
            uow.commit()
            return user

    def approve(self, ref: int | str, by: Principal = LOCAL_PRINCIPAL) -> User:
        return self._set_status(ref, UserStatus.APPROVED, by)

    def disable(self, ref: int | str, by: Principal = LOCAL_PRINCIPAL) -> User:
        """A disabled user's keys stop working at once (authentication checks the user)."""
        return self._set_status(ref, UserStatus.DISABLED, by)

    def set_admin(self, ref: int | str, is_admin: bool, by: Principal = LOCAL_PRINCIPAL) -> User:
        _require_admin(by)
        with self._uow() as uow:
            user = _find_user(uow, ref)
            user.is_admin = is_admin
            user = uow.users.add(user)
            uow.commit()
            return user

    def _set_status(self, ref: int | str, status: UserStatus, by: Principal) -> User:
        _require_admin(by)
        with self._uow() as uow:
            user = _find_user(uow, ref)
            if by.user_id is not None and user.id == by.user_id and status is UserStatus.DISABLED:
                raise Conflict("an admin cannot disable themselves")
            user.status = status
            if status is UserStatus.APPROVED:
                user.approved_at, user.approved_by = self._clock.now(), by.user_id
            user = uow.users.add(user)
            uow.commit()
            return user

    def get(self, ref: int | str) -> User:
        with self._uow() as uow:
            return _find_user(uow, ref)

    def list(self, status: UserStatus | None = None) -> list[User]:
        with self._uow() as uow:
            return [user for user in uow.users.list() if status is None or user.status is status]

    def ensure_local_admin(self) -> User:
        """The machine owner's account, used by the CLI: approved admin, no password."""
        with self._uow() as uow:
            user = uow.users.get_by_email(LOCAL_ADMIN_EMAIL)
            if user is not None:
                return user
        return self.register(LOCAL_ADMIN_EMAIL, None, is_admin=True, approved=True)

    def verify_password(self, email: str, password: str) -> User:
        """Approved users with the right password; one vague error otherwise (no account probing)."""
        with self._uow() as uow:
            user = uow.users.get_by_email(normalise_email(email))
        # Always run one scrypt: answering faster for unknown accounts would reveal which ones exist.
        stored = user.password_hash if user is not None and user.password_hash else self._hasher.dummy_hash()
        password_ok = self._hasher.verify(password, stored)
        if user is None or not user.password_hash or not password_ok:
            raise Unauthorized("wrong email or password")
        if not user.is_active:
            # The same 401 as a wrong password: the status code never tells a guesser which accounts exist
            # or are pending; only a caller who knows the password learns the account's state.
            raise Unauthorized(f"account is {user.status.value}: an admin must approve it")
        return user


def _refers_to(ref: int | str, principal: Principal) -> bool:
    """Whether a user reference (id or email) names `principal` itself, without a lookup."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        return principal.user_id is not None and int(ref) == principal.user_id
    try:
        return normalise_email(str(ref)) == normalise_email(principal.email)
    except InvalidParameter:
        return False


def _free_name(name: str, taken: set[str]) -> str:
    suffix = 2
    while True:
        tail = f"-{suffix}"
        candidate = name[: MAX_KEY_NAME_LENGTH - len(tail)] + tail
        if candidate not in taken:
            return candidate
        suffix += 1


def _makes_trusted_keys(by: Principal) -> bool:
    """The owner (CLI), or an admin who authenticated with a trusted key. A login is an account minting
    its own key: it proves nothing about who made the account, so its key is not trusted."""
    return by.user_id is None or (by.is_admin and by.trusted)


def _require_admin(by: Principal) -> None:
    if not by.is_admin:
        raise Forbidden("this needs an admin")


class ApiKeyService:
    """API keys belong to a user and are stored hashed; the raw key is returned once, at creation."""

    def __init__(self, uow: UowFactory, clock: Clock, users: UserService) -> None:
        self._uow = uow
        self._clock = clock
        self._users = users

    def create(self, name: str, user: int | str | None = None, by: Principal = LOCAL_PRINCIPAL, *,
               unique_name: bool = False) -> CreatedKey:
        """Without `user`, the key belongs to the caller (the local admin for the CLI).

        Names are unique among a user's active keys; with `unique_name` a taken name gets a `-2`, `-3`... suffix.
        """
        # Rights first: a non-admin must not learn from a 404 which other users exist.
        if user is not None and not by.is_admin and not _refers_to(user, by):
            raise Forbidden("only an admin can create keys for other users")
        if user is None:
            owner_id = by.user_id if by.user_id is not None else self._users.ensure_local_admin().id
        else:
            owner_id = self._users.get(user).id
        if owner_id != by.user_id and not by.is_admin:
            raise Forbidden("only an admin can create keys for other users")
        secret = new_api_key()
        with self._uow() as uow:
            owner = uow.users.get(owner_id)
            if owner is None:
                raise NotFound(f"no user {owner_id}")
            taken = {k.name for k in uow.api_keys.list(owner.id) if k.is_active}
            name = validate_key_name(name)
            if name in taken:
                if not unique_name:
                    raise Conflict(f"you already have an active key named {name!r}")
                name = _free_name(name, taken)
            key = uow.api_keys.add(ApiKey(
                name=name, user_id=owner.id, key_hash=hash_api_key(secret), prefix=secret[:PREFIX_LENGTH],
                created_at=self._clock.now(), trusted=_makes_trusted_keys(by),
            ))
            uow.commit()
            return CreatedKey(key=key, secret=secret)

    def login(self, email: str, password: str, key_name: str) -> CreatedKey:
        """Exchange an approved user's password for a new API key (each login gets its own key name)."""
        user = self._users.verify_password(email, password)
        return self.create(key_name, user.id, by=Principal(user.id, user.email, user.is_admin), unique_name=True)

    def list(self, by: Principal = LOCAL_PRINCIPAL, include_revoked: bool = True) -> list[ApiKey]:
        """Admins see every key; other users their own."""
        with self._uow() as uow:
            keys = uow.api_keys.list(None if by.is_admin else by.user_id)
        return [k for k in keys if include_revoked or k.is_active]

    def revoke(self, ref: int | str, by: Principal = LOCAL_PRINCIPAL) -> ApiKey:
        """`ref` is a key id, its name or its prefix (a non-admin's names and prefixes: among their own keys)."""
        with self._uow() as uow:
            key = self._find(uow, ref, None if by.is_admin else by.user_id)
            if not by.is_admin and key.user_id != by.user_id:
                raise Forbidden("this key belongs to another user")
            if key.revoked_at is None:
                key = uow.api_keys.add(replace(key, revoked_at=self._clock.now()))
                uow.commit()
            return key

    @staticmethod
    def _find(uow, ref: int | str, owner_id: int | None = None) -> ApiKey:
        keys = uow.api_keys.list()
        if isinstance(ref, int) or str(ref).isdigit():
            found = [k for k in keys if k.id == int(ref)]
        else:
            if owner_id is not None:  # names are unique per user only
                keys = [k for k in keys if k.user_id == owner_id]
            found = [k for k in keys if k.name == ref and k.is_active] or [
                k for k in keys if k.prefix == ref or (len(ref) >= PREFIX_LENGTH and ref.startswith(k.prefix))
            ] or [k for k in keys if k.name == ref]
        if not found:
            raise NotFound(f"no API key {ref!r}")
        if len(found) > 1:
            raise Conflict(f"{ref!r} names several keys; use the key id")
        return found[0]

    def count_active(self, trusted_only: bool = False) -> int:
        """Keys somebody can use: not revoked, and owned by an approved user (pending or disabled users'
        keys do not count, or `serve` would expose a server nobody can call). `trusted_only`: only keys
        made by the owner's CLI or by an admin, not ones minted while the server was open."""
        with self._uow() as uow:
            active_users = {u.id for u in uow.users.list() if u.is_active}
            return sum(1 for k in uow.api_keys.list()
                       if k.is_active and k.user_id in active_users and (k.trusted or not trusted_only))

    def authenticate(self, raw_key: str | None) -> Principal:
        """The caller behind a raw key; Unauthorized for a missing, unknown or revoked key or inactive user."""
        if not raw_key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        with self._uow() as uow:
            key = uow.api_keys.get_by_hash(hash_api_key(raw_key))
            if key is None or not key.is_active:
                raise Unauthorized("invalid or revoked API key")
            user = uow.users.get(key.user_id)
            if user is None or not user.is_active:
                raise Unauthorized("the key's user is not active")
            return Principal(user_id=user.id, email=user.email, is_admin=user.is_admin, key_id=key.id,
                             trusted=key.trusted)
