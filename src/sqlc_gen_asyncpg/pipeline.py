"""The generator: request bytes in, files out, with no I/O of its own."""

import base64
import json

from sqlc_gen_asyncpg.build import build
from sqlc_gen_asyncpg.db_module import DB_MODULE
from sqlc_gen_asyncpg.render import header, render_init, render_models, render_query_module
from sqlc_gen_asyncpg.request import parse_request


def generate(payload: bytes) -> dict[str, str]:
    """Return ``{filename: contents}`` for sqlc's JSON ``GenerateRequest`` in ``payload``.

    File names are relative to the codegen ``out`` directory.

    Raises:
        PluginError: bad options or a query the plugin refuses; the message says why.
    """
    request = parse_request(payload)
    program = build(request)
    files = {
        "__init__.py": render_init(program),
        "db.py": header(program.sqlc_version, "") + DB_MODULE,
        "models.py": render_models(program),
    }
    for module in program.modules:
        files[f"{module.module}.py"] = render_query_module(program, module)
    return dict(sorted(files.items()))


def generate_response(payload: bytes) -> bytes:
    """Return sqlc's JSON ``GenerateResponse`` for the request in ``payload``."""
    files = generate(payload)
    response = {
        "files": [
            {"name": name, "contents": base64.b64encode(text.encode()).decode("ascii")}
            for name, text in files.items()
        ]
    }
    return json.dumps(response).encode()
