"""The generator: request bytes in, files out, with no I/O of its own."""

import base64
import json
from importlib.resources import files

from sqlc_gen_asyncpg.build import build
from sqlc_gen_asyncpg.render import (
    header,
    render_init,
    render_models,
    render_query_module,
)
from sqlc_gen_asyncpg.request import parse_request


def runtime_module(name: str) -> str:
    """Return the text of ``runtime/<name>``, a file copied into every output."""
    return files("sqlc_gen_asyncpg").joinpath("runtime").joinpath(name).read_text("utf-8")


def generate(payload: bytes) -> dict[str, str]:
    """Return ``{filename: contents}`` for sqlc's JSON ``GenerateRequest`` in ``payload``.

    File names are relative to the codegen ``out`` directory.

    Raises:
        PluginError: bad options or a query the plugin refuses; the message says why.
    """
    request = parse_request(payload)
    program = build(request)
    output = {
        "__init__.py": render_init(program),
        "db.py": header(program.sqlc_version, "") + runtime_module("db.py"),
        "models.py": render_models(program),
    }
    for module in program.modules:
        output[f"{module.module}.py"] = render_query_module(program, module)
    return dict(sorted(output.items()))


def generate_response(payload: bytes) -> bytes:
    """Return sqlc's JSON ``GenerateResponse`` for the request in ``payload``."""
    output = generate(payload)
    response = {
        "files": [
            {
                "name": name,
                "contents": base64.b64encode(text.encode()).decode("ascii"),
            }
            for name, text in output.items()
        ]
    }
    return json.dumps(response).encode()
