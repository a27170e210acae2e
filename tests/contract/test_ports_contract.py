"""What every implementation of the ports does: the fakes of identity_store.dev and
the PostgreSQL adapters pass the same tests (see conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from identity_store.domain.errors import (
    ConcurrencyConflict,
    EmailAlreadyRegistered,
    EventKeyConflict,
    InvalidInput,
    TokenInvalid,
    UnitOfWorkError,
    UserNotFound,
)
from identity_store.domain.models import (
    NewEvent,
    NewToken,
    NewUser,
    TokenKind,
    User,
    UserStatus,
    UserUpdate,
)
from identity_store.domain.pagination import encode_user_cursor
from tests.contract.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.contract]

HOUR = timedelta(hours=1)


def new_user(name: str = "Ada") -> NewUser:
    return NewUser(email=f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.test", display_name=name)


async def registered(backend: Backend, new: NewUser | None = None) -> User:
    async with backend.uow() as uow:
        return await uow.users.register(new or new_user())


# --- users ---------------------------------------------------------------------------


async def test_a_registered_user_is_active_at_version_one_and_found_by_id_and_address(
    backend: Backend,
) -> None:
    new = new_user()
    user = await registered(backend, new)

    assert (user.status, user.version) == (UserStatus.ACTIVE, 1)
    assert user.created_at == user.updated_at == backend.clock()
    async with backend.uow() as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.get_by_email(new.email.upper()) == user
        assert await uow.users.get(uuid.uuid4()) is None
        assert await uow.users.get_by_email("nobody-" + new.email) is None


async def test_an_address_is_taken_whatever_its_case(backend: Backend) -> None:
    new = new_user()
    await registered(backend, new)

    with pytest.raises(EmailAlreadyRegistered):
        await registered(backend, new.model_copy(update={"email": new.email.upper()}))


async def test_an_update_needs_the_current_version_and_raises_it_by_one(backend: Backend) -> None:
    user = await registered(backend)
    backend.clock.advance(HOUR)

    async with backend.uow() as uow:
        changed = await uow.users.update(
            user.id, UserUpdate(display_name="Grace"), expected_version=1
        )
        with pytest.raises(ConcurrencyConflict) as caught:
            await uow.users.update(user.id, UserUpdate(display_name="Old"), expected_version=1)
        with pytest.raises(UserNotFound):
            await uow.users.update(uuid.uuid4(), UserUpdate(display_name="X"), expected_version=1)

    assert (changed.display_name, changed.version, changed.email) == ("Grace", 2, user.email)
    assert changed.updated_at == user.created_at + HOUR
    assert (caught.value.expected, caught.value.actual) == (1, 2)


async def test_an_update_never_moves_updated_at_back(backend: Backend) -> None:
    user = await registered(backend)
    backend.clock.advance(-HOUR)  # a host whose clock is behind

    async with backend.uow() as uow:
        changed = await uow.users.update(user.id, UserUpdate(display_name="B"), expected_version=1)

    assert changed.updated_at == user.updated_at


async def test_an_update_to_a_taken_address_is_refused(backend: Backend) -> None:
    first, second = await registered(backend), await registered(backend)

    with pytest.raises(EmailAlreadyRegistered):
        async with backend.uow() as uow:
            await uow.users.update(
                second.id, UserUpdate(email=first.email.upper()), expected_version=1
            )
    async with backend.uow() as uow:
        same = await uow.users.update(
            second.id, UserUpdate(email=second.email.upper()), expected_version=1
        )
    assert same.email == second.email.upper()


async def test_disabling_is_a_change_once_and_a_no_op_after(backend: Backend) -> None:
    user = await registered(backend)

    async with backend.uow() as uow:
        disabled = await uow.users.disable(user.id)
        again = await uow.users.disable(user.id)
        with pytest.raises(UserNotFound):
            await uow.users.disable(uuid.uuid4())

    assert (disabled.status, disabled.version) == (UserStatus.DISABLED, 2)
    assert again == disabled


async def test_deleting_a_user_takes_its_tokens_and_leaves_its_events(backend: Backend) -> None:
    user = await registered(backend)
    async with backend.uow() as uow:
        issued = await uow.tokens.issue(NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=HOUR))
        event = await uow.events.append(NewEvent(type="user.registered", user_id=user.id))

    async with backend.uow() as uow:
        assert await uow.users.delete(user.id) is True
        assert await uow.users.delete(user.id) is False
        assert await uow.tokens.get(issued.token.id) is None
        kept = await uow.events.get(event.id)

    assert kept is not None and kept.user_id is None and kept.event_key == event.event_key


async def test_pages_of_users_follow_creation_order_without_repeats(backend: Backend) -> None:
    # Far in the future, so that on the shared contract database no one else is later.
    backend.clock.now = datetime(9999, 1, 1, tzinfo=UTC) + timedelta(
        seconds=uuid.uuid4().int % 10**6
    )
    start = backend.clock()
    mine = []
    for _ in range(5):
        mine.append(await registered(backend))
        backend.clock.advance(timedelta(seconds=1))

    seen: list[User] = []
    cursor: str | None = encode_user_cursor(start - timedelta(microseconds=1), uuid.UUID(int=0))
    async with backend.uow() as uow:
        for _ in range(10):  # bounded
            page = await uow.users.list_page(limit=2, cursor=cursor)
            seen.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        with pytest.raises(InvalidInput):
            await uow.users.list_page(limit=0)
        with pytest.raises(InvalidInput):
            await uow.users.list_page(cursor="not a cursor")

    assert seen == mine


# --- tokens --------------------------------------------------------------------------


async def test_an_issued_token_verifies_until_it_expires(backend: Backend) -> None:
    user = await registered(backend)
    async with backend.uow() as uow:
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=HOUR, scopes=("read",))
        )
    secret = issued.secret.get_secret_value()

    async with backend.uow() as uow:
        assert await uow.tokens.verify(secret) == issued.token
        assert await uow.tokens.verify(secret, kind=TokenKind.SESSION) == issued.token
        assert await uow.tokens.verify(secret, kind="session") == issued.token  # type: ignore[arg-type]
        assert await uow.tokens.verify(secret, kind=TokenKind.API_KEY) is None
        assert await uow.tokens.verify(secret + "x") is None
    backend.clock.advance(HOUR)
    async with backend.uow() as uow:
        assert await uow.tokens.verify(secret) is None
        assert await uow.tokens.get(issued.token.id) == issued.token
    assert issued.token.expires_at == issued.token.created_at + HOUR
    assert issued.token.scopes == ("read",)


async def test_a_token_for_a_missing_user_is_refused(backend: Backend) -> None:
    async with backend.uow() as uow:
        with pytest.raises(UserNotFound):
            await uow.tokens.issue(NewToken(user_id=uuid.uuid4(), kind=TokenKind.SESSION, ttl=HOUR))


async def test_a_single_use_token_is_consumed_once(backend: Backend) -> None:
    user = await registered(backend)
    async with backend.uow() as uow:
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.PASSWORD_RESET, ttl=HOUR)
        )
    secret = issued.secret.get_secret_value()

    async with backend.uow() as uow:
        with pytest.raises(TokenInvalid):
            await uow.tokens.consume(secret, kind=TokenKind.EMAIL_VERIFICATION)
        used = await uow.tokens.consume(secret, kind="password_reset")  # type: ignore[arg-type]
        with pytest.raises(TokenInvalid):
            await uow.tokens.consume(secret, kind=TokenKind.PASSWORD_RESET)
        with pytest.raises(InvalidInput) as caught:
            await uow.tokens.consume(secret, kind=TokenKind.SESSION)

    assert used.revoked_at == used.last_used_at == backend.clock()
    assert caught.value.field == "kind"


async def test_a_secret_that_is_not_text_is_refused_as_invalid_input(backend: Backend) -> None:
    # A lone surrogate (JSON's "\ud800") cannot be encoded as UTF-8: no secret ever
    # issued, so the caller gets a domain error naming the field, not a None or 401.
    async with backend.uow() as uow:
        with pytest.raises(InvalidInput) as verified:
            await uow.tokens.verify("ab\ud800cd")
        with pytest.raises(InvalidInput) as consumed:
            await uow.tokens.consume("ab\ud800cd", kind=TokenKind.PASSWORD_RESET)

    assert verified.value.field == consumed.value.field == "secret"
    assert "\ud800" not in str(verified.value)


async def test_revoking_counts_only_what_was_live(backend: Backend) -> None:
    user = await registered(backend)
    tokens = []
    for ttl in (HOUR, 2 * HOUR, 3 * HOUR):
        async with backend.uow() as uow:
            tokens.append(
                await uow.tokens.issue(NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=ttl))
            )
        backend.clock.advance(timedelta(seconds=1))  # "oldest first" is then well defined
    backend.clock.advance(timedelta(minutes=90))  # the first has expired

    async with backend.uow() as uow:
        live = await uow.tokens.list_live_for_user(user.id)
        assert await uow.tokens.revoke(tokens[1].token.id) is True
        assert await uow.tokens.revoke(tokens[1].token.id) is False
        assert await uow.tokens.revoke(uuid.uuid4()) is False
        assert await uow.tokens.revoke_all_for_user(user.id) == 1
        assert await uow.tokens.list_live_for_user(user.id) == []

    assert [t.id for t in live] == [tokens[1].token.id, tokens[2].token.id]


async def test_touching_records_the_latest_use(backend: Backend) -> None:
    user = await registered(backend)
    async with backend.uow() as uow:
        issued = await uow.tokens.issue(NewToken(user_id=user.id, kind=TokenKind.API_KEY, ttl=HOUR))
    backend.clock.advance(timedelta(minutes=10))
    async with backend.uow() as uow:
        assert await uow.tokens.touch(issued.token.id) is True
    backend.clock.advance(timedelta(minutes=-5))
    async with backend.uow() as uow:
        assert await uow.tokens.touch(issued.token.id) is True
        assert await uow.tokens.touch(uuid.uuid4()) is False
        touched = await uow.tokens.get(issued.token.id)

    assert touched is not None
    assert touched.last_used_at == issued.token.created_at + timedelta(minutes=10)


async def test_purging_deletes_expired_tokens_in_bounded_batches(backend: Backend) -> None:
    # Far in the future, so that everything expired by then includes ours.
    user = await registered(backend)
    async with backend.uow() as uow:
        mine = [
            await uow.tokens.issue(NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=HOUR))
            for _ in range(3)
        ]
        keep = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(days=3650))
        )
    backend.clock.advance(2 * HOUR)

    async with backend.uow() as uow:
        with pytest.raises(InvalidInput):
            await uow.tokens.purge_expired(batch_size=0)
        purged = await uow.tokens.purge_expired(batch_size=1000, max_batches=100)
        assert all([await uow.tokens.get(t.token.id) is None for t in mine])
        assert await uow.tokens.get(keep.token.id) is not None
    assert purged >= 3


# --- events --------------------------------------------------------------------------


async def test_an_append_is_idempotent_by_event_key(backend: Backend) -> None:
    user = await registered(backend)
    new = NewEvent(type="user.registered", user_id=user.id, payload={"via": ["web", 1]})

    async with backend.uow() as uow:
        first = await uow.events.append(new)
        again = await uow.events.append(new)
        with pytest.raises(EventKeyConflict):
            await uow.events.append(new.model_copy(update={"payload": {"via": "api"}}))
        with pytest.raises(UserNotFound):
            await uow.events.append(NewEvent(type="user.registered", user_id=uuid.uuid4()))

    assert again == first
    assert (first.payload, first.occurred_at, first.recorded_at) == (
        {"via": ["web", 1]},
        backend.clock(),
        backend.clock(),
    )


async def test_append_many_is_all_or_nothing_and_takes_any_iterable(backend: Backend) -> None:
    user = await registered(backend)
    kind = f"contract.t{uuid.uuid4().hex[:8]}"
    recorded = NewEvent(type=kind, user_id=user.id)

    async with backend.uow() as uow:
        assert (
            await uow.events.append_many(NewEvent(type=kind, user_id=user.id) for _ in range(3))
            == 3
        )
        assert await uow.events.append_many([]) == 0
        await uow.events.append(recorded)
    async with backend.uow() as uow:
        with pytest.raises(EventKeyConflict):
            await uow.events.append_many([NewEvent(type=kind), recorded])
    async with backend.uow() as uow:
        with pytest.raises(InvalidInput):
            await uow.events.append_many([NewEvent(type=kind)] * 2)
        with pytest.raises(UserNotFound):
            await uow.events.append_many([NewEvent(type=kind, user_id=uuid.uuid4())])
    async with backend.uow() as uow:
        assert await uow.events.count_by_type([kind]) == {kind: 4}


async def test_a_users_events_come_in_order_after_a_position(backend: Backend) -> None:
    user = await registered(backend)
    async with backend.uow() as uow:
        appended = [
            await uow.events.append(NewEvent(type="user.seen", user_id=user.id, payload={"n": n}))
            for n in range(4)
        ]
        first_two = await uow.events.list_for_user(user.id, limit=2)
        rest = await uow.events.list_for_user(user.id, after_id=first_two[-1].id)
        assert await uow.events.list_for_user(uuid.uuid4()) == []

    assert first_two + rest == appended
    assert [e.id for e in appended] == sorted(e.id for e in appended)


async def test_the_stream_delivers_each_committed_event_once(backend: Backend) -> None:
    async with backend.uow() as uow:
        cursor = None
        for _ in range(1000):  # bounded: read to the current end
            page = await uow.events.read_stream(after=cursor, limit=1000)
            cursor = page.next_cursor
            if not page.events:
                break
    user = await registered(backend)
    async with backend.uow() as uow:
        mine = [
            await uow.events.append(NewEvent(type="user.seen", user_id=user.id)) for _ in range(5)
        ]
    with pytest.raises(RuntimeError):
        async with backend.uow() as uow:
            await uow.events.append(NewEvent(type="user.seen", user_id=user.id))
            raise RuntimeError("rolled back: never delivered")

    seen = []
    async with backend.uow() as uow:
        for _ in range(20):  # bounded
            page = await uow.events.read_stream(after=cursor, limit=2)
            seen.extend(e for e in page.events if e.user_id == user.id)
            if not page.events:
                assert page.next_cursor == cursor
                break
            cursor = page.next_cursor
        with pytest.raises(InvalidInput):
            await uow.events.read_stream(after="bogus")

    assert seen == mine


async def test_events_are_counted_by_type(backend: Backend) -> None:
    a, b = f"contract.a{uuid.uuid4().hex[:8]}", f"contract.b{uuid.uuid4().hex[:8]}"
    async with backend.uow() as uow:
        await uow.events.append_many([NewEvent(type=a), NewEvent(type=b), NewEvent(type=b)])
        assert await uow.events.count_by_type([b, a, "no.such"]) == {a: 1, b: 2}
        assert list(await uow.events.count_by_type([b, a])) == [a, b]
        with pytest.raises(InvalidInput):
            await uow.events.count_by_type(a)


# --- units of work -------------------------------------------------------------------


async def test_a_failed_unit_of_work_leaves_nothing_behind(backend: Backend) -> None:
    new = new_user()
    with pytest.raises(RuntimeError):
        async with backend.uow() as uow:
            user = await uow.users.register(new)
            await uow.events.append(NewEvent(type="user.registered", user_id=user.id))
            raise RuntimeError("application failure")

    async with backend.uow() as uow:
        assert await uow.users.get_by_email(new.email) is None


async def test_a_unit_of_work_refuses_nesting_and_use_outside_its_block(backend: Backend) -> None:
    uow = backend.uow()
    with pytest.raises(UnitOfWorkError):
        _ = uow.users
    async with uow:
        with pytest.raises(UnitOfWorkError):
            async with uow:
                pass
    with pytest.raises(UnitOfWorkError):
        _ = uow.events


@pytest.mark.parametrize("refused", ["duplicate address", "token of a missing user"])
async def test_an_error_the_database_raises_aborts_the_unit_of_work(
    backend: Backend, refused: str
) -> None:
    taken = await registered(backend)
    new = new_user()

    async with backend.uow() as uow:
        await uow.users.register(new)
        with pytest.raises((EmailAlreadyRegistered, UserNotFound)):
            if refused == "duplicate address":
                await uow.users.register(new_user().model_copy(update={"email": taken.email}))
            else:
                await uow.tokens.issue(
                    NewToken(user_id=uuid.uuid4(), kind=TokenKind.SESSION, ttl=HOUR)
                )
        with pytest.raises(UnitOfWorkError, match="aborted"):
            await uow.users.get(taken.id)
        # Leaving normally (as an endpoint answering 409 does) rolls back.

    async with backend.uow() as after:
        assert await after.users.get_by_email(new.email) is None
        assert await after.users.get(taken.id) == taken


async def test_errors_found_before_any_write_leave_the_unit_of_work_usable(
    backend: Backend,
) -> None:
    user = await registered(backend)

    async with backend.uow() as uow:
        with pytest.raises(ConcurrencyConflict):
            await uow.users.update(user.id, UserUpdate(display_name="X"), expected_version=7)
        with pytest.raises(InvalidInput):
            await uow.events.list_for_user(user.id, limit=0)
        with pytest.raises(EventKeyConflict):
            event = await uow.events.append(NewEvent(type="user.seen", user_id=user.id))
            await uow.events.append(
                event_copy := NewEvent(
                    type="user.other", user_id=user.id, event_key=event.event_key
                )
            )
        changed = await uow.users.update(user.id, UserUpdate(display_name="Y"), expected_version=1)

    assert changed.version == 2
    async with backend.uow() as uow:
        assert await uow.users.get(user.id) == changed
        assert await uow.events.get(event.id) is not None
    assert event_copy.event_key == event.event_key
