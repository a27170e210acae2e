"""The console script sqlc runs: request on stdin, response on stdout.

sqlc calls it as ``sqlc-gen-asyncpg /plugin.CodegenService/Generate``. On a
:class:`PluginError` it prints one line to stderr, which sqlc shows, and exits 1.
A person running it gets ``--help`` and ``--version``.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

from sqlc_gen_asyncpg.errors import PluginError
from sqlc_gen_asyncpg.pipeline import generate_response
from sqlc_gen_asyncpg.version import __version__

_METHOD = "/plugin.CodegenService/Generate"

USAGE = f"""\
usage: sqlc-gen-asyncpg [--help | --version | {_METHOD}]

A sqlc process plugin: it reads sqlc's JSON GenerateRequest on stdin and writes
the GenerateResponse (typed asyncpg functions returning pydantic models) on stdout.
sqlc runs it; you configure it in sqlc.yaml:

  plugins:
    - name: asyncpg
      process:
        cmd: sqlc-gen-asyncpg
        format: json
  sql:
    - engine: postgresql
      schema: schema.sql
      queries: queries
      codegen:
        - plugin: asyncpg
          out: generated

then run `sqlc generate` with this command on PATH.

options:
  --help      show this message and exit
  --version   print the version and exit
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the plugin once, or answer ``--help`` / ``--version``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return
    if args and args[0] in ("-V", "--version"):
        print(f"sqlc-gen-asyncpg {__version__}")
        return
    if args and args[0] != _METHOD:
        print(
            f"sqlc-gen-asyncpg: unknown argument {args[0]!r} (try --help)",
            file=sys.stderr,
        )
        sys.exit(2)
    if not args and sys.stdin.isatty():
        print(USAGE, end="", file=sys.stderr)
        sys.exit(2)
    status, output = answer(sys.stdin.buffer.read(), Path.cwd())
    stream = sys.stdout if status == 0 else sys.stderr
    stream.buffer.write(output)
    stream.buffer.flush()
    if status:
        sys.exit(status)


def answer(payload: bytes, project: Path) -> tuple[int, bytes]:
    """Return the exit status and output for sqlc's request ``payload``, run in ``project``.

    0 and the response, for stdout; or 1 and a one-line message, for stderr.
    """
    try:
        return 0, generate_response(payload, project)
    except PluginError as exc:
        return 1, f"sqlc-gen-asyncpg: {exc}\n".encode()


if __name__ == "__main__":
    main()
