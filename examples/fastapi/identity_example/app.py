"""The service: routes, the unit of work per request, bearer authentication.

Routes (each answers ``application/problem+json`` on error, see
:mod:`identity_store.fastapi`):

=======  ============================  ===================================================
POST     /users                        register (201, ``ETag``)
GET      /users/{id}                   the signed-in user itself (``ETag``)
PATCH    /users/{id}                   change e-mail or name; ``If-Match: "<version>"``
POST     /users/{id}/disable           disable, signing out every session
GET      /users/{id}/events            the user's events, page by page (``after_id``)
POST     /sessions                     sign in: a session token (bearer)
GET      /sessions/current             verify the bearer token
DELETE   /sessions/current             sign out
POST     /password-resets              record a reset request, mailed by a consumer (202)
POST     /password-resets/confirm      consume it and set a new password
GET      /events                       the event stream, page by page (``after`` cursor);
                                       an API key with scope ``events:read``
GET      /health                       whether the database answers
=======  ============================  ===================================================

A signed-in user sees and changes only itself: any other id answers 404, as an
unknown one does, so ids cannot be probed.

One unit of work per request: :func:`unit_of_work` is a dependency with
``scope="function"``, so the transaction commits when the endpoint returns and
*before* the response is sent; a failed commit becomes an error response, never a
200 for lost work. An exception from the endpoint rolls everything back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse

from identity_example.mail import RESET_REQUESTED, ConsoleMailer, Mailer, reset_mail_consumer
from identity_example.schemas import (
    EventOut,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterRequest,
    SessionInfo,
    SessionOut,
    SignInRequest,
    StreamPageOut,
    UpdateUserRequest,
    UserEventsOut,
    UserOut,
)
from identity_example.telemetry import Providers, instrument_app, instrument_service_pool
from identity_store import (
    InvalidInput,
    NewEvent,
    NewToken,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    Token,
    TokenInvalid,
    TokenKind,
    UnitOfWork,
    UserNotFound,
    UserStatus,
    UserUpdate,
    check_health,
    create_pool,
)
from identity_store.fastapi import add_error_handlers, problem, problem_responses

__all__ = ["Config", "ConsoleMailer", "Mailer", "create_app"]

STREAM_SCOPE = "events:read"
_SECRET_MAX_LENGTH = 200
_ETAG = re.compile(r'"(\d{1,10})"')


@dataclass(frozen=True)
class Config:
    """How the service runs. ``settings`` None: from the environment (DATABASE_URL).
    ``new_uow``: a unit-of-work factory to use instead of a pool (tests with fakes).
    ``mail_consumer`` False: the reset mail is sent by a consumer run elsewhere
    (:func:`identity_example.mail.run_reset_mail` in another process)."""

    settings: Settings | None = None
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    mailer: Mailer = field(default_factory=ConsoleMailer)
    session_ttl: timedelta = timedelta(hours=8)
    reset_ttl: timedelta = timedelta(minutes=15)
    retry_after: int = 1
    new_uow: Callable[[], UnitOfWork] | None = None
    telemetry: Providers | None = None  # OpenTelemetry; None: the global providers, if set
    mail_consumer: bool = True


class InvalidCredentialsError(Exception):
    """Wrong e-mail address or password (one error for both)."""


class AccessDeniedError(Exception):
    """Authenticated, but the token lacks the scope the route needs."""


class PreconditionRequiredError(Exception):
    """A change was sent without ``If-Match``."""


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """One transaction for the request: committed after the endpoint returns, rolled
    back if it raises."""
    new_uow: Callable[[], UnitOfWork] = request.app.state.new_uow
    async with new_uow() as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


async def _verify(
    uow: UnitOfWork, credentials: HTTPAuthorizationCredentials | None, kind: TokenKind
) -> Token:
    if credentials is None or len(credentials.credentials) > _SECRET_MAX_LENGTH:
        raise TokenInvalid()
    token = await uow.tokens.verify(credentials.credentials, kind=kind)
    if token is None:
        raise TokenInvalid()
    await uow.tokens.touch(token.id)
    return token


async def current_session(uow: Uow, credentials: Bearer) -> Token:
    """The live session token in ``Authorization: Bearer``, else 401."""
    return await _verify(uow, credentials, TokenKind.SESSION)


async def stream_reader(uow: Uow, credentials: Bearer) -> Token:
    """A live API key with scope ``events:read``: 401 without one, 403 without the scope."""
    token = await _verify(uow, credentials, TokenKind.API_KEY)
    if STREAM_SCOPE not in token.scopes:
        raise AccessDeniedError()
    return token


Session = Annotated[Token, Depends(current_session)]


def _own(session: Token, user_id: UUID) -> None:
    # Someone else's id answers exactly like an unknown one.
    if session.user_id != user_id:
        raise UserNotFound(user_id)


def _no_store(response: Response) -> None:
    # A response that carries a secret must not be kept by any cache (RFC 6749 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _etag(version: int) -> str:
    return f'"{version}"'


async def _hash(config: Config, password: str) -> str:
    # argon2 is deliberately slow: off the event loop.
    return await asyncio.to_thread(config.hasher.hash, password)


async def _password_matches(config: Config, encoded: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(config.hasher.verify, encoded, password)
    except (VerificationError, InvalidHashError):
        return False


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    config: Config = app.state.config
    if config.new_uow is not None:
        app.state.pool = None
        app.state.new_uow = config.new_uow
        yield
        return
    pool = await create_pool(config.settings)  # no connection is opened at import time
    instrument_service_pool(pool, config.telemetry)
    app.state.pool = pool
    app.state.new_uow = lambda: PostgresUnitOfWork(pool)
    try:
        if config.mail_consumer:  # the password-reset mail: identity_example/mail.py
            async with reset_mail_consumer(pool, config.mailer, config.reset_ttl):
                yield
        else:
            yield
    finally:
        await pool.close()


def create_app(config: Config | None = None) -> FastAPI:
    """Return the service; the pool is created when the application starts."""
    config = config or Config()
    # Every route needs the database: any of them may answer 503.
    app = FastAPI(title="identity example", lifespan=_lifespan, responses=problem_responses(503))
    app.state.config = config
    # Verified against when the address is unknown, so both cases cost one hash check.
    app.state.dummy_hash = config.hasher.hash("not-a-password-of-anyone")
    add_error_handlers(app, retry_after=config.retry_after)
    instrument_app(app, config.telemetry)

    @app.exception_handler(InvalidCredentialsError)
    async def _bad_credentials(request: Request, exc: Exception) -> JSONResponse:
        return problem(
            401, "wrong e-mail address or password", headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(AccessDeniedError)
    async def _denied(request: Request, exc: Exception) -> JSONResponse:
        return problem(403, "this token may not do that")

    @app.exception_handler(PreconditionRequiredError)
    async def _precondition(request: Request, exc: Exception) -> JSONResponse:
        return problem(428, 'send If-Match: "<version>" with the ETag you read')

    @app.post("/users", status_code=201, responses=problem_responses(409))
    async def register(body: RegisterRequest, uow: Uow, response: Response) -> UserOut:
        new = NewUser(
            email=body.email,
            display_name=body.display_name,
            password_hash=await _hash(config, body.password.get_secret_value()),
        )
        user = await uow.users.register(new)
        await uow.events.append(NewEvent(type="user.registered", user_id=user.id))
        response.headers["ETag"] = _etag(user.version)
        response.headers["Location"] = f"/users/{user.id}"
        return UserOut.of(user)

    @app.get("/users/{user_id}", responses=problem_responses(401, 404))
    async def get_user(user_id: UUID, session: Session, uow: Uow, response: Response) -> UserOut:
        _own(session, user_id)
        user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        response.headers["ETag"] = _etag(user.version)
        return UserOut.of(user)

    @app.patch("/users/{user_id}", responses=problem_responses(401, 404, 409, 412, 428))
    async def update_user(
        user_id: UUID,
        body: UpdateUserRequest,
        session: Session,
        uow: Uow,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> UserOut:
        _own(session, user_id)
        if if_match is None:
            raise PreconditionRequiredError()
        if if_match.strip() == "*":
            current = await uow.users.get(user_id)
            if current is None:
                raise UserNotFound(user_id)
            expected = current.version
        elif match := _ETAG.fullmatch(if_match.strip()):
            expected = int(match.group(1))
        else:
            raise InvalidInput("If-Match", 'must be an ETag such as "3", or *')
        changes = UserUpdate.model_validate(body.model_dump(exclude_unset=True))
        user = await uow.users.update(user_id, changes, expected_version=expected)
        fields = sorted(body.model_fields_set)
        await uow.events.append(
            NewEvent(type="user.updated", user_id=user.id, payload={"fields": fields})
        )
        response.headers["ETag"] = _etag(user.version)
        return UserOut.of(user)

    @app.post("/users/{user_id}/disable", responses=problem_responses(401, 404))
    async def disable_user(user_id: UUID, session: Session, uow: Uow) -> UserOut:
        _own(session, user_id)
        before = await uow.users.get(user_id)
        user = await uow.users.disable(user_id)
        revoked = await uow.tokens.revoke_all_for_user(user_id)
        if before is not None and before.status is UserStatus.ACTIVE:
            await uow.events.append(
                NewEvent(
                    type="user.disabled", user_id=user_id, payload={"sessions_revoked": revoked}
                )
            )
        return UserOut.of(user)

    @app.get("/users/{user_id}/events", responses=problem_responses(401, 404))
    async def user_events(
        user_id: UUID,
        session: Session,
        uow: Uow,
        after_id: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> UserEventsOut:
        _own(session, user_id)
        events = await uow.events.list_for_user(user_id, after_id=after_id, limit=limit + 1)
        page = events[:limit]
        more = len(events) > limit
        return UserEventsOut(
            events=[EventOut.of(e) for e in page],
            next_after_id=page[-1].id if more else None,
        )

    @app.post("/sessions", status_code=201, responses=problem_responses(401))
    async def sign_in(body: SignInRequest, uow: Uow, response: Response) -> SessionOut:
        password = body.password.get_secret_value()
        user = await uow.users.get_by_email(body.email)
        if user is None or user.password_hash is None:
            await _password_matches(config, app.state.dummy_hash, password)
            raise InvalidCredentialsError()
        stored = user.password_hash.get_secret_value()
        if not await _password_matches(config, stored, password):
            raise InvalidCredentialsError()
        if user.status is not UserStatus.ACTIVE:
            raise InvalidCredentialsError()
        if config.hasher.check_needs_rehash(stored):
            user = await uow.users.update(
                user.id,
                UserUpdate(password_hash=await _hash(config, password)),
                expected_version=user.version,
            )
        issued = await uow.tokens.issue(
            NewToken(
                user_id=user.id, kind=TokenKind.SESSION, ttl=config.session_ttl, scopes=("profile",)
            )
        )
        await uow.events.append(NewEvent(type="session.started", user_id=user.id))
        _no_store(response)
        return SessionOut(
            token=issued.secret.get_secret_value(), expires_at=issued.token.expires_at
        )

    @app.get("/sessions/current", responses=problem_responses(401))
    async def verify_session(session: Session) -> SessionInfo:
        return SessionInfo.of(session)

    @app.delete("/sessions/current", status_code=204, responses=problem_responses(401))
    async def sign_out(session: Session, uow: Uow) -> None:
        await uow.tokens.revoke(session.id)
        await uow.events.append(NewEvent(type="session.ended", user_id=session.user_id))

    @app.post("/password-resets", status_code=202)
    async def request_password_reset(body: PasswordResetRequest, uow: Uow) -> dict[str, str]:
        user = await uow.users.get_by_email(body.email)
        if user is not None and user.status is UserStatus.ACTIVE:
            # Only the intent: the mail consumer issues the token and mails it, so
            # neither the secret nor the address is in the event log.
            await uow.events.append(NewEvent(type=RESET_REQUESTED, user_id=user.id))
        # The same answer whether or not the address is registered.
        return {"detail": "if this address is registered, a reset message is on its way"}

    @app.post("/password-resets/confirm", status_code=204, responses=problem_responses(401))
    async def confirm_password_reset(body: PasswordResetConfirm, uow: Uow) -> None:
        token = await uow.tokens.consume(
            body.token.get_secret_value(), kind=TokenKind.PASSWORD_RESET
        )
        user = await uow.users.get(token.user_id)
        if user is None:
            raise TokenInvalid()
        await uow.users.update(
            user.id,
            UserUpdate(password_hash=await _hash(config, body.new_password.get_secret_value())),
            expected_version=user.version,
        )
        revoked = await uow.tokens.revoke_all_for_user(user.id)
        await uow.events.append(
            NewEvent(
                type="user.password_reset", user_id=user.id, payload={"sessions_revoked": revoked}
            )
        )

    @app.get("/events", responses=problem_responses(401, 403))
    async def read_stream(
        reader: Annotated[Token, Depends(stream_reader)],
        uow: Uow,
        after: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> StreamPageOut:
        page = await uow.events.read_stream(after=after, limit=limit)
        return StreamPageOut(
            events=[EventOut.of(e) for e in page.events], next_cursor=page.next_cursor
        )

    @app.get("/health")
    async def health(request: Request) -> Any:
        pool = request.app.state.pool
        if pool is not None and not await check_health(pool):
            return problem(503, "the database does not answer", headers={"Retry-After": "5"})
        return {"database": "ok"}

    return app
