"""Every route of the example, its success and each error status, over HTTP (httpx on
the ASGI app) against a real, freshly migrated database per test."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient, Response

from identity_store import NewToken, PostgresUnitOfWork, Settings, TokenKind
from identity_store.infrastructure.settings import parse_database_url

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def _email() -> str:
    return f"user.{uuid.uuid4().hex[:10]}@example.com"


async def register(client: AsyncClient, email: str | None = None, **extra: Any) -> Response:
    body = {"email": email or _email(), "display_name": "Ada", "password": PASSWORD, **extra}
    return await client.post("/users", json=body)


async def signed_in(client: AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    """Register a user and sign in; return the user and the Authorization header."""
    email = _email()
    user = (await register(client, email)).json()
    response = await client.post("/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return user, {"Authorization": f"Bearer {response.json()['token']}"}


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _stored_hash(settings: Settings, user_id: str) -> str | None:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        value: str | None = await conn.fetchval(
            "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user_id)
        )
        return value
    finally:
        await conn.close()


# --- POST /users ----------------------------------------------------------------------


async def test_register_answers_201_with_etag_and_never_a_hash(
    client: AsyncClient, identity_store_settings: Settings
) -> None:
    response = await register(client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/users/{body['id']}"
    assert body["version"] == 1 and body["status"] == "active"
    assert "password" not in response.text and "hash" not in response.text
    stored = await _stored_hash(identity_store_settings, body["id"])
    assert stored is not None and stored.startswith("$argon2id$")


async def test_register_refuses_a_client_supplied_password_hash(
    client: AsyncClient, identity_store_settings: Settings
) -> None:
    email = _email()
    response = await register(client, email, password_hash="x")
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {
            "loc": ["body", "password_hash"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    # Nothing was stored: the address is still free.
    assert (await register(client, email)).status_code == 201


async def test_register_twice_in_any_case_answers_409(client: AsyncClient) -> None:
    email = _email()
    assert (await register(client, email)).status_code == 201
    body = assert_problem(await register(client, email.upper()), 409)
    assert email not in body["detail"] and email.upper() not in body["detail"]


async def test_register_rejects_a_short_password_without_echoing_it(client: AsyncClient) -> None:
    secret = "s3cr3t!"
    response = await client.post(
        "/users", json={"email": _email(), "display_name": "Ada", "password": secret}
    )
    body = assert_problem(response, 422)
    assert secret not in response.text
    assert body["errors"][0]["loc"] == ["body", "password"]


async def test_register_rejects_a_bad_address_naming_the_field(client: AsyncClient) -> None:
    response = await client.post(
        "/users", json={"email": "not-an-address", "display_name": "Ada", "password": PASSWORD}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "email"]
    assert "not-an-address" not in response.text and PASSWORD not in response.text


# --- POST /sessions, GET and DELETE /sessions/current -------------------------------------


async def test_sign_in_issues_a_token_that_verifies(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    response = await client.get("/sessions/current", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == user["id"]
    assert response.json()["scopes"] == ["profile"]


async def test_sign_in_with_a_wrong_password_or_unknown_address_answers_401(
    client: AsyncClient,
) -> None:
    email = _email()
    await register(client, email)
    wrong = await client.post("/sessions", json={"email": email, "password": "wrong password"})
    unknown = await client.post("/sessions", json={"email": _email(), "password": PASSWORD})
    for response in (wrong, unknown):
        body = assert_problem(response, 401)
        assert body["detail"] == "wrong e-mail address or password"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_sign_in_without_a_password_answers_422(client: AsyncClient) -> None:
    assert_problem(await client.post("/sessions", json={"email": _email()}), 422)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}],
    ids=["missing", "unknown", "not-bearer"],
)
async def test_verify_without_a_valid_bearer_token_answers_401(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/sessions/current", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_sign_out_revokes_the_token(client: AsyncClient) -> None:
    _, auth = await signed_in(client)
    assert (await client.delete("/sessions/current", headers=auth)).status_code == 204
    assert_problem(await client.get("/sessions/current", headers=auth), 401)
    assert_problem(await client.delete("/sessions/current", headers=auth), 401)


# --- GET /users/{id} ----------------------------------------------------------------------


async def test_get_user_answers_200_with_etag(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    response = await client.get(f"/users/{user['id']}", headers=auth)
    assert response.status_code == 200
    assert response.json()["email"] == user["email"]
    assert response.headers["etag"] == '"1"'


async def test_get_another_or_unknown_user_answers_404(client: AsyncClient) -> None:
    _, auth = await signed_in(client)
    other, _ = await signed_in(client)
    for user_id in (other["id"], str(uuid.uuid4())):
        assert_problem(await client.get(f"/users/{user_id}", headers=auth), 404)


async def test_get_user_without_a_token_answers_401(client: AsyncClient) -> None:
    user, _ = await signed_in(client)
    assert_problem(await client.get(f"/users/{user['id']}"), 401)


# --- PATCH /users/{id} ----------------------------------------------------------------------


async def test_update_with_the_current_etag_answers_200_and_the_next_etag(
    client: AsyncClient,
) -> None:
    user, auth = await signed_in(client)
    response = await client.patch(
        f"/users/{user['id']}",
        json={"display_name": "Ada Lovelace"},
        headers={**auth, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "Ada Lovelace"
    assert response.headers["etag"] == '"2"'


async def test_update_with_a_stale_etag_answers_412(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    first = await client.patch(
        f"/users/{user['id']}", json={"display_name": "B"}, headers={**auth, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    stale = await client.patch(
        f"/users/{user['id']}", json={"display_name": "C"}, headers={**auth, "If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    current = await client.get(f"/users/{user['id']}", headers=auth)
    assert current.json()["display_name"] == "B"


async def test_update_without_if_match_answers_428(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    response = await client.patch(f"/users/{user['id']}", json={"display_name": "B"}, headers=auth)
    assert_problem(response, 428)


async def test_update_to_a_taken_address_answers_409(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    other, _ = await signed_in(client)
    response = await client.patch(
        f"/users/{user['id']}",
        json={"email": other["email"].upper()},
        headers={**auth, "If-Match": '"1"'},
    )
    assert_problem(response, 409)


@pytest.mark.parametrize(
    ("body", "if_match", "loc"),
    [
        ({"display_name": " "}, '"1"', ["display_name"]),
        ({"display_name": "B"}, "1", ["If-Match"]),
        ({}, '"1"', []),
    ],
    ids=["blank-name", "unquoted-etag", "no-change"],
)
async def test_update_with_invalid_input_answers_422(
    client: AsyncClient, body: dict[str, Any], if_match: str, loc: list[str]
) -> None:
    user, auth = await signed_in(client)
    response = await client.patch(
        f"/users/{user['id']}", json=body, headers={**auth, "If-Match": if_match}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == loc


async def test_update_of_another_user_answers_404(client: AsyncClient) -> None:
    _, auth = await signed_in(client)
    other, _ = await signed_in(client)
    response = await client.patch(
        f"/users/{other['id']}", json={"display_name": "B"}, headers={**auth, "If-Match": '"1"'}
    )
    assert_problem(response, 404)


# --- POST /users/{id}/disable ---------------------------------------------------------------


async def test_disable_signs_out_and_refuses_sign_in(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    response = await client.post(f"/users/{user['id']}/disable", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "disabled"
    assert_problem(await client.get("/sessions/current", headers=auth), 401)
    again = await client.post("/sessions", json={"email": user["email"], "password": PASSWORD})
    assert_problem(again, 401)


async def test_disable_another_user_answers_404(client: AsyncClient) -> None:
    _, auth = await signed_in(client)
    other, _ = await signed_in(client)
    assert_problem(await client.post(f"/users/{other['id']}/disable", headers=auth), 404)


# --- GET /users/{id}/events --------------------------------------------------------------


async def test_user_events_come_page_by_page(client: AsyncClient) -> None:
    user, auth = await signed_in(client)
    first = await client.get(f"/users/{user['id']}/events", params={"limit": 1}, headers=auth)
    assert first.status_code == 200
    assert [e["type"] for e in first.json()["events"]] == ["user.registered"]
    after = first.json()["next_after_id"]
    second = await client.get(
        f"/users/{user['id']}/events", params={"after_id": after, "limit": 10}, headers=auth
    )
    assert [e["type"] for e in second.json()["events"]] == ["session.started"]
    assert second.json()["next_after_id"] is None


async def test_user_events_with_a_bad_limit_answer_422_and_of_others_404(
    client: AsyncClient,
) -> None:
    user, auth = await signed_in(client)
    other, _ = await signed_in(client)
    bad = await client.get(f"/users/{user['id']}/events", params={"limit": 0}, headers=auth)
    assert_problem(bad, 422)
    assert_problem(await client.get(f"/users/{other['id']}/events", headers=auth), 404)


# --- POST /password-resets, /password-resets/confirm -------------------------------------


async def test_password_reset_sets_the_new_password_once(client: AsyncClient, mailer: Any) -> None:
    user, auth = await signed_in(client)
    unknown = await client.post("/password-resets", json={"email": _email()})
    known = await client.post("/password-resets", json={"email": user["email"]})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    await mailer.wait_for(1)
    assert [email for email, _ in mailer.sent] == [user["email"]]
    secret = mailer.sent[0][1]

    new_password = "a brand new passphrase"
    confirm = {"token": secret, "new_password": new_password}
    assert (await client.post("/password-resets/confirm", json=confirm)).status_code == 204
    assert_problem(await client.get("/sessions/current", headers=auth), 401)
    old = await client.post("/sessions", json={"email": user["email"], "password": PASSWORD})
    assert_problem(old, 401)
    new = await client.post("/sessions", json={"email": user["email"], "password": new_password})
    assert new.status_code == 201
    assert_problem(await client.post("/password-resets/confirm", json=confirm), 401)


async def test_password_reset_with_a_short_password_answers_422_without_echo(
    client: AsyncClient, mailer: Any
) -> None:
    user, _ = await signed_in(client)
    await client.post("/password-resets", json={"email": user["email"]})
    await mailer.wait_for(1)
    secret = mailer.sent[0][1]
    response = await client.post(
        "/password-resets/confirm", json={"token": secret, "new_password": "Zq9#xw"}
    )
    assert_problem(response, 422)
    assert "Zq9#xw" not in response.text and secret not in response.text
    # The token was not used up by the refused request.
    ok = await client.post(
        "/password-resets/confirm", json={"token": secret, "new_password": "long enough now"}
    )
    assert ok.status_code == 204


async def test_password_reset_request_without_an_address_answers_422(client: AsyncClient) -> None:
    assert_problem(await client.post("/password-resets", json={}), 422)


# --- GET /events ----------------------------------------------------------------------------


async def _api_key(settings: Settings, user_id: str, scopes: tuple[str, ...]) -> dict[str, str]:
    from identity_store import create_pool

    pool = await create_pool(settings)
    try:
        async with PostgresUnitOfWork(pool) as uow:
            issued = await uow.tokens.issue(
                NewToken(
                    user_id=uuid.UUID(user_id),
                    kind=TokenKind.API_KEY,
                    ttl=timedelta(days=1),
                    scopes=scopes,
                )
            )
    finally:
        await pool.close()
    return {"Authorization": f"Bearer {issued.secret.get_secret_value()}"}


async def test_event_stream_is_read_page_by_page(
    client: AsyncClient, identity_store_settings: Settings
) -> None:
    user, _ = await signed_in(client)
    key = await _api_key(identity_store_settings, user["id"], ("events:read",))
    seen: list[str] = []
    cursor: str | None = None
    # The stream holds back events while any older transaction on the server still
    # runs, so a read may come back empty for a moment: poll, boundedly.
    for _ in range(200):
        params: dict[str, Any] = {"limit": 1} | ({"after": cursor} if cursor else {})
        response = await client.get("/events", params=params, headers=key)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["events"]) <= 1
        if page["events"]:
            seen += [e["type"] for e in page["events"]]
            assert page["next_cursor"] != cursor
        elif cursor is not None:
            assert page["next_cursor"] == cursor
        cursor = page["next_cursor"]
        if len(seen) == 2:
            break
        if not page["events"]:
            await asyncio.sleep(0.05)
    assert seen == ["user.registered", "session.started"]
    again = await client.get("/events", params={"after": cursor}, headers=key)
    assert again.json() == {"events": [], "next_cursor": cursor}


async def test_event_stream_needs_an_api_key_with_its_scope(
    client: AsyncClient, identity_store_settings: Settings
) -> None:
    user, session = await signed_in(client)
    assert_problem(await client.get("/events"), 401)
    assert_problem(await client.get("/events", headers=session), 401)
    narrow = await _api_key(identity_store_settings, user["id"], ("profile",))
    assert_problem(await client.get("/events", headers=narrow), 403)


async def test_event_stream_with_a_garbage_cursor_answers_422(
    client: AsyncClient, identity_store_settings: Settings
) -> None:
    user, _ = await signed_in(client)
    key = await _api_key(identity_store_settings, user["id"], ("events:read",))
    body = assert_problem(
        await client.get("/events", params={"after": "garbage"}, headers=key), 422
    )
    assert body["errors"][0]["loc"] == ["after"]


# --- the database going away -------------------------------------------------------------


def _maintenance_url(url: str) -> str:
    return parse_database_url(url).with_database("postgres").render()


async def test_an_unavailable_database_answers_503_with_retry_after(
    client: AsyncClient, identity_store_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="identity_store")
    url = identity_store_settings.database_url.get_secret_value()
    assert (await client.get("/health")).status_code == 200
    conn = await asyncpg.connect(_maintenance_url(url))
    try:
        name = identity_store_settings.parsed_url.database
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    response = await register(client)
    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "unavailable" in body["detail"]
    # The outage is logged when it begins, not once per failed request. While the
    # DROP terminates the backends one by one, the app's mail consumer may finish a
    # statement on a backend not yet terminated: that truly ends the outage for a
    # moment ("recovered", then "lost" again). After the first 503 every backend is
    # gone, so nothing more may be logged however many requests fail.
    logged = len(_outage_records(caplog))
    for _ in range(3):
        assert_problem(await client.get("/health"), 503)
        assert_problem(await register(client), 503)
    outage = _outage_records(caplog)
    assert len(outage) == logged
    assert [m.split(" ")[2] for m in outage] == ["lost", "recovered"] * (logged // 2) + ["lost"]


def _outage_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = (r.getMessage() for r in caplog.records if r.name == "identity_store")
    return [m for m in messages if m.startswith("database connection ")]


async def test_a_lock_wait_past_lock_timeout_answers_503_with_retry_after(
    identity_store_settings: Settings, serve: Any
) -> None:
    url = identity_store_settings.database_url.get_secret_value()
    name = identity_store_settings.parsed_url.database
    admin = await asyncpg.connect(_maintenance_url(url))
    try:
        await admin.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '200ms'")
    finally:
        await admin.close()
    async with serve(identity_store_settings) as client:
        user, auth = await signed_in(client)
        holder = await asyncpg.connect(url)
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", uuid.UUID(user["id"])
                )
                response = await client.patch(
                    f"/users/{user['id']}",
                    json={"display_name": "B"},
                    headers={**auth, "If-Match": '"1"'},
                )
        finally:
            await holder.close()
        body = assert_problem(response, 503)
        assert response.headers["retry-after"] == "1"
        assert "in time" in body["detail"]
        after = await client.get(f"/users/{user['id']}", headers=auth)
        assert after.json()["display_name"] == "Ada" and after.headers["etag"] == '"1"'


# --- what the library logs while serving ----------------------------------------------


async def test_no_log_record_of_a_whole_session_holds_a_secret_or_personal_data(
    identity_store_settings: Settings,
    serve: Any,
    mailer: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Every statement counts as slow, so every one of them is logged.
    settings = identity_store_settings.model_copy(update={"slow_statement_seconds": 1e-9})
    email = _email()
    async with serve(settings) as client:
        user = (await register(client, email)).json()
        token = (
            await client.post("/sessions", json={"email": email, "password": PASSWORD})
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        await client.patch(
            f"/users/{user['id']}",
            json={"display_name": "Ada L."},
            headers={**auth, "If-Match": '"1"'},
        )
        await client.post("/password-resets", json={"email": email})
        await mailer.wait_for(1)
        reset = mailer.sent[0][1]
        await client.post(
            "/password-resets/confirm", json={"token": reset, "new_password": "another passphrase"}
        )
    stored = await _stored_hash(identity_store_settings, user["id"])
    assert stored is not None

    ours = [r for r in caplog.records if r.name.split(".")[0] == "identity_store"]
    assert any("slow statement CreateUser" in r.getMessage() for r in ours)
    everything = "\n".join(
        " ".join([r.getMessage(), *(repr(v) for v in vars(r).values())]) for r in caplog.records
    )
    url = settings.database_url.get_secret_value()
    for private in (email, PASSWORD, "another passphrase", token, reset, stored, "Ada L."):
        assert private not in everything
    assert str(parse_database_url(url).password) not in everything


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/{id}"),
        ("PATCH", "/users/{id}"),
        ("POST", "/users/{id}/disable"),
        ("GET", "/users/{id}/events"),
        ("GET", "/sessions/current"),
        ("DELETE", "/sessions/current"),
        ("GET", "/events"),
    ],
)
async def test_every_protected_route_answers_401_without_a_token(
    client: AsyncClient, method: str, path: str
) -> None:
    user, _ = await signed_in(client)
    response = await client.request(
        method,
        path.format(id=user["id"]),
        json={"display_name": "B"} if method == "PATCH" else None,
        headers={"If-Match": '"1"'} if method == "PATCH" else {},
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
