"""The console script sqlc runs: request on stdin, response on stdout.

sqlc calls it as ``sqlc-gen-asyncpg /plugin.CodegenService/Generate``. On a
:class:`PluginError` it prints one line to stderr, which sqlc shows, and exits 1.
"""

import sys

from sqlc_gen_asyncpg.errors import PluginError
from sqlc_gen_asyncpg.pipeline import generate_response

_METHOD = "/plugin.CodegenService/Generate"


def main() -> None:
    """Run the plugin once."""
    if len(sys.argv) > 1 and sys.argv[1] != _METHOD:
        print(f"sqlc-gen-asyncpg: unknown method {sys.argv[1]!r}", file=sys.stderr)
        sys.exit(2)
    try:
        response = generate_response(sys.stdin.buffer.read())
    except PluginError as exc:
        print(f"sqlc-gen-asyncpg: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.buffer.write(response)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
