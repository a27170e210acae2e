"""``python -m identity_store.dev db|migrate|demo ...``: see the package's docstring."""

import sys

from identity_store.dev import _demo, _devdb, _migrate

COMMANDS = {"db": _devdb.main, "migrate": _migrate.main, "demo": _demo.main}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m identity_store.dev {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
