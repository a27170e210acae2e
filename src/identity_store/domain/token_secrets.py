"""Token secrets: how they are made and how they are stored (as SHA-256 only)."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["SECRET_BYTES", "hash_secret", "new_secret"]

SECRET_BYTES = 32
"""Entropy of a secret: 256 bits, 43 URL-safe characters."""


def new_secret() -> str:
    """Return a fresh random secret from the operating system's CSPRNG."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> bytes:
    """Return the SHA-256 digest stored in place of ``secret``.

    Accepts any string, even one that is not valid UTF-8 (lone surrogates are
    encoded as they are), so hostile input costs one hash like any other.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
