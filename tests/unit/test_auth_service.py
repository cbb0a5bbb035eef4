"""Users, approval and API keys on the in-memory unit of work."""

import pytest

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.identity.service import (
    LOCAL_ADMIN_EMAIL,
    ApiKeyService,
    ScryptPasswordHasher,
    UserService,
    hash_api_key,
)
from application.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from domain.identity.model import Principal
from domain.enums import UserStatus
from domain.errors import InvalidParameter

FAST = ScryptPasswordHasher(n=2**8)  # same algorithm, cheaper work factor for tests


@pytest.fixture
def services():
    uow = InMemoryUnitOfWork()
    clock = FakeClock()
    users = UserService(lambda: uow, clock, FAST)
    return uow, users, ApiKeyService(lambda: uow, clock, users)


def test_password_hash_is_salted_and_verifies():
    first, second = FAST.hash("correct horse"), FAST.hash("correct horse")
    assert first != second and "correct horse" not in first
    assert FAST.verify("correct horse", first) and not FAST.verify("wrong horse", first)
    assert not FAST.verify("x", None) and not FAST.verify("x", "garbage")


def test_new_users_are_pending_until_an_admin_approves(services):
    uow, users, keys = services
    user = users.register("Alice@Example.com", "s3cret-pass")
    assert user.email == "alice@example.com" and user.status is UserStatus.PENDING
    assert uow.users.get(user.id).password_hash != "s3cret-pass"
    # 401 like a wrong password (issue 12: no account-state oracle); the message names the state.
    with pytest.raises(Unauthorized, match="pending"):
        keys.login("alice@example.com", "s3cret-pass", "laptop")
    with pytest.raises(Forbidden):
        users.approve(user.id, by=Principal(user.id, user.email, is_admin=False))
    admin = users.register("root@example.com", "admin-pass", is_admin=True, approved=True)
    approved = users.approve("alice@example.com", by=Principal(admin.id, admin.email, True))
    assert approved.status is UserStatus.APPROVED and approved.approved_by == admin.id
    created = keys.login("alice@example.com", "s3cret-pass", "laptop")
    assert keys.authenticate(created.secret).user_id == user.id
    with pytest.raises(Unauthorized):
        keys.login("alice@example.com", "wrong-pass", "laptop2")


def test_bad_registrations_are_rejected(services):
    _, users, _ = services
    users.register("bob@example.com", "long-enough")
    with pytest.raises(Conflict):
        users.register("BOB@example.com", "long-enough")
    with pytest.raises(InvalidRequest):
        users.register("carol@example.com", "short")
    with pytest.raises(InvalidParameter):
        users.register("not-an-email", "long-enough")


def test_key_is_shown_once_stored_hashed_and_authenticates(services):
    uow, users, keys = services
    created = keys.create("ci")
    assert created.secret.startswith("mlxm-") and len(created.secret) > 40
    stored = uow.api_keys.get(created.key.id)
    assert stored.key_hash == hash_api_key(created.secret) and created.secret not in repr(stored)
    assert created.secret.startswith(stored.prefix) and len(stored.prefix) < len(created.secret) // 2
    principal = keys.authenticate(created.secret)
    owner = uow.users.get(principal.user_id)
    assert owner.email == LOCAL_ADMIN_EMAIL and principal.is_admin
    with pytest.raises(Conflict):
        keys.create("ci")


def test_wrong_missing_revoked_keys_and_disabled_users_fail(services):
    _, users, keys = services
    with pytest.raises(Unauthorized):
        keys.authenticate(None)
    with pytest.raises(Unauthorized):
        keys.authenticate("mlxm-not-a-real-key")
    bob = users.register("bob@example.com", "long-enough", approved=True)
    created = keys.create("bob-key", user="bob@example.com")
    assert keys.authenticate(created.secret).is_admin is False
    users.disable(bob.id)
    with pytest.raises(Unauthorized):
        keys.authenticate(created.secret)
    users.approve(bob.id)
    keys.authenticate(created.secret)
    revoked = keys.revoke("bob-key")
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthorized):
        keys.authenticate(created.secret)
    assert keys.count_active() == 0
    # A revoked key's name can be reused.
    keys.create("bob-key", user=bob.id)


def test_non_admins_see_and_revoke_only_their_own_keys(services):
    _, users, keys = services
    alice = users.register("alice@example.com", "long-enough", approved=True)
    bob = users.register("bob@example.com", "long-enough", approved=True)
    as_alice = Principal(alice.id, alice.email, False)
    as_bob = Principal(bob.id, bob.email, False)
    a = keys.create("a", by=as_alice)
    keys.create("b", user=bob.id)
    assert [k.name for k in keys.list(by=as_alice)] == ["a"]
    assert {k.name for k in keys.list()} == {"a", "b"}
    with pytest.raises(Forbidden):
        keys.revoke(a.key.id, by=as_bob)
    with pytest.raises(Forbidden):
        keys.create("for-bob", user=bob.id, by=as_alice)
    keys.revoke(a.key.prefix, by=as_alice)
    with pytest.raises(NotFound):
        keys.revoke("nope")


def test_uncommitted_changes_vanish(services):
    uow, users, _ = services
    with uow:
        from domain.identity.model import User

        uow.users.add(User(email="ghost@example.com"))
    assert uow.users.get_by_email("ghost@example.com") is None


class RecordingHasher(ScryptPasswordHasher):
    """The real hasher (cheap work factor) noting which stored hash each verify ran against."""

    def __init__(self) -> None:
        super().__init__(n=2**8)
        self.verified: list[str | None] = []

    def verify(self, password, stored):
        self.verified.append(stored)
        return super().verify(password, stored)


def test_login_for_a_missing_or_passwordless_account_still_runs_one_scrypt():
    uow, hasher = InMemoryUnitOfWork(), RecordingHasher()
    users = UserService(lambda: uow, FakeClock(), hasher)
    alice = users.register("alice@example.com", "long-enough", approved=True)
    users.ensure_local_admin()  # an account without a password
    for email in ("nobody@example.com", LOCAL_ADMIN_EMAIL):
        hasher.verified.clear()
        with pytest.raises(Unauthorized, match="wrong email or password"):
            users.verify_password(email, "long-enough")
        # Exactly one verify, against a real scrypt hash of this hasher's cost (not a quick no-op on None).
        assert hasher.verified == [hasher.dummy_hash()]
        assert hasher.verified[0].startswith(f"scrypt${hasher.n}$") and hasher.verified[0] != alice.password_hash
    hasher.verified.clear()
    with pytest.raises(Unauthorized):
        users.verify_password("alice@example.com", "wrong-password")
    assert hasher.verified == [alice.password_hash]
    # The dummy never logs anybody in, whatever password is tried.
    assert not hasher.verify("long-enough", hasher.dummy_hash())


def test_each_login_gets_its_own_key_and_names_are_unique_per_user(services):
    _, users, keys = services
    alice = users.register("alice@example.com", "long-enough", approved=True)
    bob = users.register("bob@example.com", "long-enough", approved=True)
    first = keys.login("alice@example.com", "long-enough", "login")
    second = keys.login("alice@example.com", "long-enough", "login")
    assert (first.key.name, second.key.name) == ("login", "login-2")
    assert keys.authenticate(first.secret).user_id == keys.authenticate(second.secret).user_id == alice.id
    # Another user may use the same names.
    assert keys.login("bob@example.com", "long-enough", "login").key.name == "login"
    as_alice, as_bob = Principal(alice.id, alice.email, False), Principal(bob.id, bob.email, False)
    keys.create("laptop", by=as_alice)
    keys.create("laptop", user="bob@example.com", by=as_bob)
    with pytest.raises(Conflict):
        keys.create("laptop", by=as_alice)
    # A name is looked up among the caller's own keys: alice revokes her laptop key, not bob's.
    revoked = keys.revoke("laptop", by=as_alice)
    assert revoked.user_id == alice.id
    assert [k.name for k in keys.list(by=as_bob) if k.is_active] == ["login", "laptop"]
    # An admin naming a key several users share is asked for the id.
    with pytest.raises(Conflict):
        keys.revoke("login")


def test_a_non_admin_cannot_probe_for_users_through_key_creation(services):
    _, users, keys = services
    alice = users.register("alice@example.com", "long-enough", approved=True)
    users.register("bob@example.com", "long-enough", approved=True)
    as_alice = Principal(alice.id, alice.email, False)
    for other in ("bob@example.com", "nobody@example.com", 999, "999"):
        with pytest.raises(Forbidden):  # the same answer whether the user exists or not
            keys.create("x", user=other, by=as_alice)
    assert keys.create("mine", user="ALICE@example.com", by=as_alice).key.user_id == alice.id
    assert keys.create("mine-too", user=str(alice.id), by=as_alice).key.user_id == alice.id


def test_only_keys_of_approved_users_count_as_active(services):
    _, users, keys = services
    pending = users.register("pending@example.com", "long-enough")
    keys.create("p", user=pending.id)
    assert keys.count_active() == 0  # a pending user's key cannot authenticate
    bob = users.register("bob@example.com", "long-enough", approved=True)
    keys.create("b", user=bob.id)
    assert keys.count_active() == 1
    users.disable(bob.id)
    assert keys.count_active() == 0
    users.approve(pending.id)
    assert keys.count_active() == 1
