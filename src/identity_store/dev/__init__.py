"""Development tooling for applications' tests and local runs; never imported at run time.

``import identity_store`` does not load this subpackage, and nothing here is needed to
serve requests. Each module is imported on its own (this file imports none of them):

=====================================  ==============================================
``identity_store.dev.testing``         in-memory fakes of the ports (``FakeUnitOfWork``,
                                       ``Store``), for unit tests without a database
``identity_store.dev.pytest_plugin``   pytest fixtures: migrated per-test databases, the
                                       fakes (``-p identity_store.dev.pytest_plugin``);
                                       needs ``identity-store[pytest]``
``identity_store.dev.devdb``           the embedded PostgreSQL server
                                       (``python -m identity_store.dev.devdb``); needs
                                       ``identity-store[embedded]``
``identity_store.dev.migrate``         applies the migrations shipped in the package
                                       without Atlas (``python -m
                                       identity_store.dev.migrate``)
``identity_store.dev.demo``            the ``make demo`` tour of the public API
=====================================  ==============================================
"""
