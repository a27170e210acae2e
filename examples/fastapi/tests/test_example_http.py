"""The example as a client meets it: uvicorn in its own process on loopback, requests
sent as bytes over TCP, on a fresh database per test."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from conftest import LiveServer

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
# JSON's escape for a lone surrogate: valid JSON, but no UTF-8 text.
LONE_SURROGATE = "ab\\ud800cdefgh12"


def _email() -> str:
    return f"user.{uuid.uuid4().hex[:10]}@example.com"


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and isinstance(body["detail"], str)
    return body


def _client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/users", '"email":"x@y.example.com","display_name":"X","password":"{}"'),
        ("/sessions", '"email":"x@y.example.com","password":"{}"'),
        ("/password-resets/confirm", '"token":"abc","new_password":"{}"'),
        ("/password-resets/confirm", '"token":"{}","new_password":"long enough"'),
    ],
)
def test_a_secret_with_a_lone_surrogate_is_422_not_a_server_error(
    live_server: LiveServer, path: str, fields: str
) -> None:
    raw = "{" + fields.replace("{}", LONE_SURROGATE) + "}"
    with _client(live_server) as client:
        response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    body = _problem(response, 422)
    assert "surrogate" in json.dumps(body)
    assert "Traceback" not in live_server.log_text()


def test_a_session_token_is_never_cached(live_server: LiveServer) -> None:
    email = _email()
    with _client(live_server) as client:
        registered = client.post(
            "/users", json={"email": email, "display_name": "Ada", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        response = client.post("/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    assert "token" in response.json()
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff", id="not UTF-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested 100000 deep"),
        pytest.param(b'{"email": ' + b"9" * 5000 + b"}", id="a 5000-digit integer"),
    ],
)
def test_a_body_that_cannot_be_parsed_is_a_400_problem(live_server: LiveServer, raw: bytes) -> None:
    with _client(live_server) as client:
        response = client.post("/users", content=raw, headers={"Content-Type": "application/json"})
    _problem(response, 400)


def test_an_unknown_route_and_an_unknown_method_are_problems_too(
    live_server: LiveServer,
) -> None:
    with _client(live_server) as client:
        missing = client.get("/no-such-route")
        not_allowed = client.put("/sessions")
    _problem(missing, 404)
    _problem(not_allowed, 405)
    assert not_allowed.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("path", "methods"),
    [("/sessions/current", {"GET", "DELETE"}), (f"/users/{uuid.uuid4()}", {"GET", "PATCH"})],
)
def test_a_method_not_allowed_lists_every_method_the_path_serves(
    live_server: LiveServer, path: str, methods: set[str]
) -> None:
    with _client(live_server) as client:
        response = client.options(path)
    _problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods
