"""Development tooling for applications' tests and local runs; never imported at run time.

``import identity_store`` does not load this subpackage, and nothing here is needed to
serve requests. What an application's tests use is named here; the modules behind it
are private (``_fakes``, ``_migrate``, ``_devdb``, ``_demo``) and may change shape.

- In-memory fakes of the ports, for unit tests without a database:
  :class:`FakeUnitOfWork` over a :class:`Store`.
- The migrations shipped in the package: :func:`migrations_dir` (for ``atlas migrate
  apply --dir``) and :func:`apply_migrations` (the same, without Atlas).
- The embedded PostgreSQL server (needs ``identity-store[embedded]`` unless
  ``IDENTITY_STORE_PG_BIN`` names a server's ``bin/``): :func:`start_server`,
  :func:`stop_server`, :func:`server_status`, :func:`destroy_server`, and databases on
  it or on any server: :func:`scratch_database`, :func:`recreate_database`.
- pytest fixtures: ``-p identity_store.dev.pytest_plugin`` (a module name, since pytest
  loads plugins by module; needs ``identity-store[pytest]``).

Command line, ``python -m identity_store.dev``:

    db up|down|status|url|reset|destroy|clean [--database NAME]   the embedded server
    db exec -- COMMAND...     COMMAND with DATABASE_URL and ATLAS_DEV_URL set
    migrate [--url URL] [--print-dir]                             apply the migrations
    demo                                                          the ``make demo`` tour
"""

from identity_store.dev._devdb import (
    APP_DATABASE,
    DEV_DATABASE,
    DevServer,
    DevServerError,
    drop_database,
    ensure_database,
    process_alive,
    prune_binary_copies,
    recreate_database,
    scratch_database,
    server_bin_dir,
    server_user,
    system_area,
)
from identity_store.dev._devdb import destroy as destroy_server
from identity_store.dev._devdb import start as start_server
from identity_store.dev._devdb import status as server_status
from identity_store.dev._devdb import stop as stop_server
from identity_store.dev._fakes import FakeUnitOfWork, Store
from identity_store.dev._migrate import MigrationError, apply_migrations, migrations_dir

__all__ = [
    "APP_DATABASE",
    "DEV_DATABASE",
    "DevServer",
    "DevServerError",
    "FakeUnitOfWork",
    "MigrationError",
    "Store",
    "apply_migrations",
    "destroy_server",
    "drop_database",
    "ensure_database",
    "migrations_dir",
    "process_alive",
    "prune_binary_copies",
    "recreate_database",
    "scratch_database",
    "server_bin_dir",
    "server_status",
    "server_user",
    "start_server",
    "stop_server",
    "system_area",
]
