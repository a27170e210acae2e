"""Errors raised by identity-store, one small hierarchy.

Messages name the problem and the offending field, never a secret (no password, no
token secret, no full connection string).
"""

from __future__ import annotations


class IdentityStoreError(Exception):
    """Base of every error this package raises on purpose."""


class DatabaseConfigError(IdentityStoreError):
    """The database settings are unusable (unparseable URL, unknown option)."""


class DatabaseUnavailable(IdentityStoreError):
    """The database cannot be reached or refused us (host, port, credentials, name)."""
