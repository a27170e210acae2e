"""sqlc-gen-asyncpg: a sqlc process plugin that writes typed asyncpg functions.

sqlc parses the schema and the named queries; this plugin turns its request into
Python modules: pydantic v2 models for tables, ``enum.StrEnum`` classes for enums and
one ``async def`` per query. :func:`generate` is the whole pipeline, free of I/O;
the console script (``sqlc_gen_asyncpg.__main__``) wires it to stdin and stdout.
"""

from sqlc_gen_asyncpg.errors import PluginError
from sqlc_gen_asyncpg.pipeline import generate, generate_response
from sqlc_gen_asyncpg.version import __version__

__all__ = ["PluginError", "__version__", "generate", "generate_response"]
