"""Password hashing: bcrypt over a SHA-256 pre-hash.

bcrypt reads at most 72 bytes (bcrypt 5 raises on more), so every password is first reduced
to the base64 of its SHA-256 (44 bytes): nothing is truncated and any length is accepted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets

import bcrypt


def _prehash(password: str) -> bytes:
    # surrogatepass: a JSON string may carry lone surrogates; they must hash, not crash.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))


@functools.cache
def dummy_hash(rounds: int) -> str:
    """A hash of no one's password at this cost: checking a password against it costs what
    checking a real one does (for names that do not exist)."""
    return hash_password(secrets.token_urlsafe(16), rounds)
