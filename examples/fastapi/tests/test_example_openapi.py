"""The OpenAPI document tells the truth: a schema-driven fuzzer (schemathesis) sends
what the document allows, and what it forbids, to the service over HTTP."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer
from identity_example import Config, create_app
from identity_example.schemas import PASSWORD_MIN_LENGTH

from identity_store.dev import FakeUnitOfWork, Store
from identity_store.domain import validation as limits

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def _session_token(server: LiveServer) -> str:
    email = f"fuzz.{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        registered = client.post(
            "/users", json={"email": email, "display_name": "Fuzz", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        signed_in = client.post("/sessions", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 201, signed_in.text
    token: str = signed_in.json()["token"]
    return token


def test_a_schema_driven_fuzzer_finds_no_server_error_and_no_schema_violation(
    live_server: LiveServer, tmp_path: Path
) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "run",
        f"{live_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "5",
        "--seed",
        "20",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        # Another user's id answers 404 by design (ids cannot be probed), and the
        # fuzzer's one session is not the owner of the users it creates.
        "--exclude-checks",
        "ensure_resource_availability",
        # Signing out would revoke the session the other operations are sent with.
        "--exclude-operation-id",
        "sign_out_sessions_current_delete",
        "--header",
        f"Authorization: Bearer {_session_token(live_server)}",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    assert "Traceback" not in live_server.log_text()


def test_the_document_names_every_error_as_problem_json_and_the_limits() -> None:
    document = create_app(Config(new_uow=lambda: FakeUnitOfWork(Store()))).openapi()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths = document["paths"]
    expected = {
        ("/users", "post"): {"400", "409", "422", "503"},
        ("/users/{user_id}", "patch"): {"400", "401", "404", "409", "412", "422", "428", "503"},
        ("/sessions", "post"): {"400", "401", "422", "503"},
        ("/sessions/current", "delete"): {"401", "503"},
        ("/events", "get"): {"401", "403", "422", "503"},
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert {s for s in responses if s[0] in "45"} == statuses, (path, method)
        assert all(responses[s]["content"] == problem for s in statuses), (path, method)
    assert "HTTPValidationError" not in document["components"]["schemas"]

    schemas = document["components"]["schemas"]
    register = schemas["RegisterRequest"]["properties"]
    assert register["email"]["minLength"] == limits.EMAIL_MIN_LENGTH
    assert register["email"]["maxLength"] == limits.EMAIL_MAX_LENGTH
    assert register["display_name"]["maxLength"] == limits.DISPLAY_NAME_MAX_LENGTH
    assert register["password"]["minLength"] == PASSWORD_MIN_LENGTH
