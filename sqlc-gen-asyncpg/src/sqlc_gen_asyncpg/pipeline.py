"""The generator: request bytes in, files out.

Its only I/O: reading the runtime files it copies, and, given the project directory,
looking there for the packages overrides import (to sort those imports as isort does).
"""

import base64
import json
from collections.abc import Iterable
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

from sqlc_gen_asyncpg.build import build
from sqlc_gen_asyncpg.render import (
    render_init,
    render_models,
    render_query_module,
    render_runtime,
)
from sqlc_gen_asyncpg.request import parse_request


def runtime_module(name: str) -> str:
    """Return the text of ``runtime/<name>``, copied (its pieces in use) into every output."""
    return files("sqlc_gen_asyncpg").joinpath("runtime").joinpath(name).read_text("utf-8")


def first_party(root: Path, modules: Iterable[str]) -> frozenset[str]:
    """Return the top-level packages of ``modules`` that belong to the project at ``root``.

    As ruff and isort tell them by default: a package or module of that name in the
    project directory or its ``src/``.
    """
    found = set()
    for module in modules:
        top = module.split(".")[0]
        for base in (root, root / "src"):
            if (base / top).is_dir() or (base / f"{top}.py").is_file():
                found.add(top)
    return frozenset(found)


def generate(payload: bytes, project: Path | None = None) -> dict[str, str]:
    """Return ``{filename: contents}`` for sqlc's JSON ``GenerateRequest`` in ``payload``.

    File names are relative to the codegen ``out`` directory. ``project`` is the
    directory sqlc runs in: modules that overrides import from the project's own
    packages there are sorted as first-party imports.

    Raises:
        PluginError: bad options or a query the plugin refuses; the message says why.
    """
    request = parse_request(payload)
    program = build(request)
    if project is not None:
        program = replace(program, first_party=first_party(project, program.override_modules))
    output = {
        "__init__.py": render_init(program),
        "db.py": render_runtime(program, runtime_module("db.py")),
        "models.py": render_models(program),
    }
    for module in program.modules:
        output[f"{module.module}.py"] = render_query_module(program, module)
    return dict(sorted(output.items()))


def generate_response(payload: bytes, project: Path | None = None) -> bytes:
    """Return sqlc's JSON ``GenerateResponse`` for the request in ``payload``."""
    output = generate(payload, project)
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
