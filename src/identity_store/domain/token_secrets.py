"""Token secrets: how they are made and how they are stored (as SHA-256 only)."""

from __future__ import annotations

import hashlib
import secrets

from identity_store.domain.errors import InvalidInput
from identity_store.domain.validation import check_unicode

__all__ = ["SECRET_BYTES", "hash_secret", "new_secret"]

SECRET_BYTES = 32
"""Entropy of a secret: 256 bits, 43 URL-safe characters."""


def new_secret() -> str:
    """Return a fresh random secret from the operating system's CSPRNG."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> bytes:
    """Return the SHA-256 digest stored in place of ``secret``.

    Raises:
        InvalidInput: ``secret`` holds a lone surrogate: it is not text, so no secret
            this library issued (they are ASCII) and no client could have sent it.
    """
    try:
        check_unicode(secret)
    except ValueError as exc:
        raise InvalidInput("secret", str(exc)) from None
    return hashlib.sha256(secret.encode("utf-8")).digest()
