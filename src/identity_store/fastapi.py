"""FastAPI glue: one mapping of identity-store's errors to HTTP responses.

Install ``identity-store[fastapi]`` and call :func:`add_error_handlers` once::

    from identity_store.fastapi import add_error_handlers

    app = FastAPI(lifespan=lifespan)
    add_error_handlers(app)

Every response is ``application/problem+json`` (RFC 9457) with ``status``, ``title``
and ``detail``. The mapping (:data:`ERROR_STATUS`, most specific class first):

=========================================================  ===============================
error                                                      response
=========================================================  ===============================
``EmailAlreadyRegistered``, ``EventKeyConflict``,          409
``SubscriptionExists``, ``SubscriptionStopped``,
``SubscriptionBehindRetention``
``ConcurrencyConflict``                                    412 when the request carried
                                                           ``If-Match``, else 409
``UserNotFound``, ``SubscriptionNotFound``                 404
``TokenInvalid``                                           401, ``WWW-Authenticate: Bearer``
``InvalidInput``, ``ConstraintViolation``, request or      422, naming the field, never
domain-model validation errors                             echoing the rejected value
``DatabaseTimeout``, ``TransactionConflict``,              503 with ``Retry-After``
``DatabaseUnavailable`` (and ``CommitOutcomeUnknown``)
anything else from identity-store                          500 with a generic detail
``HTTPException`` (FastAPI's, Starlette's): a body that    its own status, detail and
is not UTF-8 or JSON too deep or too large to parse (400), headers
no such route (404), method not allowed (405), ...
=========================================================  ===============================

The OpenAPI document says the same: every error response an operation documents
(``responses=problem_responses(404, ...)``, or on the app) is a :class:`Problem` in
``application/problem+json``, the 422 included, and an operation with a body also
documents 400.

Why in the library rather than in each application: the errors are the library's, so
the library keeps this table complete when it adds one (a test fails on an error
class without an entry), and the 422 handler replaces FastAPI's default, which echoes
the rejected input (a password, a token) in the response body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from identity_store.domain import errors

__all__ = [
    "ERROR_STATUS",
    "PROBLEM_JSON",
    "Problem",
    "add_error_handlers",
    "error_response",
    "problem",
    "problem_responses",
    "validation_problem",
]

PROBLEM_JSON = "application/problem+json"

ERROR_STATUS: Mapping[type[errors.IdentityStoreError], int] = {
    errors.EmailAlreadyRegistered: 409,
    errors.EventKeyConflict: 409,
    errors.SubscriptionExists: 409,
    errors.SubscriptionStopped: 409,
    errors.SubscriptionBehindRetention: 409,
    errors.ConcurrencyConflict: 409,
    errors.UserNotFound: 404,
    errors.SubscriptionNotFound: 404,
    errors.TokenInvalid: 401,
    errors.InvalidInput: 422,
    errors.ConstraintViolation: 422,
    errors.DatabaseTimeout: 503,
    errors.TransactionConflict: 503,
    errors.CommitOutcomeUnknown: 503,
    errors.DatabaseUnavailable: 503,
    errors.DatabaseConfigError: 500,
    errors.DatabaseError: 500,
    errors.UnitOfWorkError: 500,
    errors.IdentityStoreError: 500,
}
"""Status for each error class; the first class the error is an instance of wins."""

_TITLES = {
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemError(BaseModel):
    """Where and why one part of a request was refused (never the refused value)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457); ``errors`` on a 422 only."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return FastAPI ``responses=`` documenting ``statuses`` as :class:`Problem`
    bodies (:func:`add_error_handlers` files them under ``application/problem+json``)."""
    return {status: {"model": Problem, "description": _title(status)} for status in statuses}


def _title(status: int) -> str:
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Return an ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": _title(status), "status": status}
    body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _status_for(exc: errors.IdentityStoreError) -> int:
    for cls, status in ERROR_STATUS.items():
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    exc: errors.IdentityStoreError, request: Request, *, retry_after: int = 1
) -> JSONResponse:
    """Return the response for ``exc`` (see the table in the module docstring)."""
    status = _status_for(exc)
    headers: dict[str, str] = {}
    detail = str(exc)
    if isinstance(exc, errors.ConcurrencyConflict) and "if-match" in request.headers:
        status = 412
        detail = "the resource changed since the version in If-Match: fetch it again"
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif status == 503:
        headers["Retry-After"] = str(retry_after)
        if isinstance(exc, errors.TransactionConflict):
            detail = "the request lost a race with another one: retry it"
        elif isinstance(exc, errors.DatabaseTimeout):
            detail = "the database did not answer in time: retry later"
        elif isinstance(exc, errors.CommitOutcomeUnknown):
            detail = "the change may or may not have been saved: read it back before retrying"
        else:
            detail = "the database is unavailable: retry later"
    elif status == 500:
        detail = "internal error"
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.InvalidInput):
        extra["errors"] = [{"loc": [exc.field], "msg": exc.problem, "type": "invalid_input"}]
    return problem(status, detail, headers=headers, **extra)


def validation_problem(raw_errors: Sequence[Any]) -> JSONResponse:
    """Return a 422 listing where and why, without the rejected input.

    pydantic's error entries carry the offending value in ``input`` (and sometimes in
    ``ctx``); only ``loc``, ``msg`` and ``type`` are kept.
    """
    cleaned = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "invalid")),
            "type": str(error.get("type", "value_error")),
        }
        for error in raw_errors
        if isinstance(error, Mapping)
    ]
    return problem(422, "the request is not valid", errors=cleaned)


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's 405 names the methods of the first route on the path only: GET and
    # DELETE of one path as two routes would answer "Allow: GET".
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def add_error_handlers(app: FastAPI, *, retry_after: int = 1) -> None:
    """Install the handlers: identity-store errors, request validation, pydantic
    validation errors raised while building domain models in an endpoint, and HTTP
    errors (so FastAPI's default ``{"detail": ...}`` bodies become problem+json too).

    ``retry_after`` is the ``Retry-After`` value, in seconds, of 503 responses.
    """

    async def on_store_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.IdentityStoreError)
        return error_response(exc, request, retry_after=retry_after)

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc.errors())

    async def on_model_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        return validation_problem(exc.errors(include_input=False, include_url=False))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code < 400:  # not an error (a 304 has no body at all)
            return await http_exception_handler(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, detail, headers=headers)

    _document_problems(app)
    app.add_exception_handler(errors.IdentityStoreError, on_store_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_model_validation)


def _document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the error bodies these handlers send."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        definition = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(definition.pop("$defs", {}))
        schemas[Problem.__name__] = definition
        body = {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}}
        for path in document.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": _title(400)})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = dict(body)
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body
            kept = schemas.pop(unused, None)
            if kept is not None and f'/{unused}"' in json.dumps(document):
                schemas[unused] = kept  # the application's own model of that name
        return document

    app.openapi = openapi  # type: ignore[method-assign]
