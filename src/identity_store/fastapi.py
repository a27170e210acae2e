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
``SubscriptionExists``, ``SubscriptionStopped``
``ConcurrencyConflict``                                    412 when the request carried
                                                           ``If-Match``, else 409
``UserNotFound``, ``SubscriptionNotFound``                 404
``TokenInvalid``                                           401, ``WWW-Authenticate: Bearer``
``InvalidInput``, ``ConstraintViolation``, request or      422, naming the field, never
domain-model validation errors                             echoing the rejected value
``DatabaseTimeout``, ``TransactionConflict``,              503 with ``Retry-After``
``DatabaseUnavailable`` (and ``CommitOutcomeUnknown``)
anything else from identity-store                          500 with a generic detail
=========================================================  ===============================

Why in the library rather than in each application: the errors are the library's, so
the library keeps this table complete when it adds one (a test fails on an error
class without an entry), and the 422 handler replaces FastAPI's default, which echoes
the rejected input (a password, a token) in the response body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from identity_store.domain import errors

__all__ = [
    "ERROR_STATUS",
    "PROBLEM_JSON",
    "add_error_handlers",
    "error_response",
    "problem",
    "validation_problem",
]

PROBLEM_JSON = "application/problem+json"

ERROR_STATUS: Mapping[type[errors.IdentityStoreError], int] = {
    errors.EmailAlreadyRegistered: 409,
    errors.EventKeyConflict: 409,
    errors.SubscriptionExists: 409,
    errors.SubscriptionStopped: 409,
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


def problem(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Return an ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status}
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


def add_error_handlers(app: FastAPI, *, retry_after: int = 1) -> None:
    """Install the handlers: identity-store errors, request validation, and pydantic
    validation errors raised while building domain models in an endpoint.

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

    app.add_exception_handler(errors.IdentityStoreError, on_store_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
