"""identity_store.fastapi: one status per domain error, and no rejected input in bodies."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI, Header
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr

import identity_store
from identity_store import NewUser
from identity_store.domain import errors
from identity_store.fastapi import ERROR_STATUS, add_error_handlers, problem_responses

pytestmark = pytest.mark.unit

SECRET = "hunter2-do-not-echo"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr = Field(min_length=30)


def _app(raise_it: Callable[[], None]) -> FastAPI:
    app = FastAPI()
    add_error_handlers(app, retry_after=7)

    @app.post("/boom")
    async def boom(if_match: str | None = Header(default=None)) -> None:
        raise_it()

    @app.post("/body")
    async def body(payload: Body) -> None:
        return None

    @app.post("/model")
    async def model() -> None:
        NewUser(email="ada@example.com", display_name="Ada", password_hash=f"has space {SECRET}")

    return app


async def _post(app: FastAPI, path: str, **kwargs: object) -> tuple[int, dict[str, str], str]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(path, **kwargs)  # type: ignore[arg-type]
    return response.status_code, dict(response.headers), response.text


def test_every_public_error_has_its_own_entry() -> None:
    public = {
        obj
        for name in identity_store.__all__
        if inspect.isclass(obj := getattr(identity_store, name))
        and issubclass(obj, errors.IdentityStoreError)
    }
    defined = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, errors.IdentityStoreError)
    }
    assert public | defined <= set(ERROR_STATUS), sorted(
        cls.__name__ for cls in (public | defined) - set(ERROR_STATUS)
    )


def test_subclasses_come_before_their_bases() -> None:
    order = list(ERROR_STATUS)
    for i, cls in enumerate(order):
        for later in order[i + 1 :]:
            assert not issubclass(later, cls) or later is cls, (later, cls)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.EmailAlreadyRegistered("ada@example.com"), 409),
        (errors.EventKeyConflict(), 409),
        (errors.ConcurrencyConflict(uuid.uuid4(), expected=1, actual=2), 409),
        (errors.UserNotFound(uuid.uuid4()), 404),
        (errors.TokenInvalid(), 401),
        (errors.InvalidInput("after", "is not a cursor"), 422),
        (errors.ConstraintViolation("users_x"), 422),
        (errors.TransactionConflict("40001"), 503),
        (errors.DatabaseTimeout("the statement timed out", reason="statement"), 503),
        (errors.CommitOutcomeUnknown("the connection broke during COMMIT"), 503),
        (errors.DatabaseUnavailable("postgresql://app:***@db/x: cannot connect"), 503),
        (errors.DatabaseError("boom", sqlstate="XX000"), 500),
        (errors.UnitOfWorkError("nested"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
async def test_each_error_maps_to_its_status(error: Exception, status: int) -> None:
    def raise_it() -> None:
        raise error

    code, headers, text = await _post(_app(raise_it), "/boom")
    assert code == status
    assert headers["content-type"] == "application/problem+json"
    assert "ada@example.com" not in text
    if status == 503:
        assert headers["retry-after"] == "7"
        assert "postgresql" not in text
    if status == 401:
        assert headers["www-authenticate"].startswith("Bearer")
    if status == 500:
        assert '"detail":"internal error"' in text


async def test_a_concurrency_conflict_under_if_match_is_412() -> None:
    def raise_it() -> None:
        raise errors.ConcurrencyConflict(uuid.uuid4(), expected=1, actual=2)

    code, _, _ = await _post(_app(raise_it), "/boom", headers={"If-Match": '"1"'})
    assert code == 412


async def test_request_validation_does_not_echo_the_input() -> None:
    code, _, text = await _post(_app(lambda: None), "/body", json={"password": SECRET})
    assert code == 422
    assert SECRET not in text
    assert '"loc":["body","password"]' in text


async def test_domain_model_validation_in_an_endpoint_is_422_without_the_input() -> None:
    code, _, text = await _post(_app(lambda: None), "/model")
    assert code == 422
    assert SECRET not in text
    assert '"loc":["password_hash"]' in text


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"[" * 100_000 + b"]" * 100_000, b'{"password": ' + b"9" * 5000 + b"}"],
    ids=["not UTF-8", "nested 100000 deep", "a 5000-digit integer"],
)
async def test_a_body_that_cannot_be_parsed_is_a_400_problem(raw: bytes) -> None:
    code, headers, text = await _post(
        _app(lambda: None), "/body", content=raw, headers={"Content-Type": "application/json"}
    )
    assert code == 400
    assert headers["content-type"] == "application/problem+json"
    assert '"status":400' in text


async def test_no_route_and_no_method_are_problems_and_allow_names_every_route() -> None:
    app = _app(lambda: None)

    @app.get("/thing")
    async def read() -> None: ...

    @app.delete("/thing")
    async def remove() -> None: ...

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        missing = await client.get("/nothing")
        not_allowed = await client.put("/thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert not_allowed.status_code == 405
    assert not_allowed.headers["content-type"] == "application/problem+json"
    assert not_allowed.headers["allow"] == "DELETE, GET"


def test_the_openapi_document_gives_every_error_as_problem_json() -> None:
    app = _app(lambda: None)

    @app.get("/thing/{thing_id}", responses=problem_responses(404))
    async def read(thing_id: int) -> None: ...

    document = app.openapi()
    problem_body = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    read_responses = document["paths"]["/thing/{thing_id}"]["get"]["responses"]
    assert {s: r["content"] for s, r in read_responses.items() if s != "200"} == {
        "404": problem_body,
        "422": problem_body,  # FastAPI documents its own validation array here
    }
    body_responses = document["paths"]["/body"]["post"]["responses"]
    assert body_responses["400"]["content"] == body_responses["422"]["content"] == problem_body
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail"]
