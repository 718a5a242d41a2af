"""im_core.security.token_info: a token's signature is checked once per process, its age on
every request by itsdangerous's clock; new keys forget what the old ones checked."""

from __future__ import annotations

import time

import itsdangerous
import pytest

from im_core import security
from im_core.config import Settings

TTL = 3600


@pytest.fixture
def signing():
    security.configure(Settings.from_env(environ={}, secret_keys=["a key " * 6], token_ttl=TTL))
    yield
    security.configure(Settings.from_env(environ={}))


def test_a_token_is_verified_once_and_its_age_checked_every_time(signing, monkeypatch):
    token = security.issue_token("session-1")
    verified = []
    loads = security._tokens.loads
    monkeypatch.setattr(
        security._tokens, "loads", lambda *a, **k: verified.append(a) or loads(*a, **k)
    )
    assert security.token_info(token) == {"sub": "session-1"}
    assert security.token_info(token) == {"sub": "session-1"}
    assert len(verified) == 1
    later = int(time.time()) + TTL + 2  # by the clock itsdangerous counts a token's age with
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: later)
    assert security.token_info(token) is None
    fresh = security.issue_token("session-2")  # signed by that clock: as old as it says
    assert security.token_info(fresh) == {"sub": "session-2"}


def test_a_changed_token_is_verified_and_refused(signing):
    token = security.issue_token("session-1")
    assert security.token_info(token) is not None
    signed, signature = token.rsplit(".", 1)
    # The signature's first character is all signature (its last may be partly padding).
    changed = f"{signed}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    assert security.token_info(changed) is None


def test_new_keys_forget_the_tokens_the_old_ones_verified(signing):
    token = security.issue_token("session-1")
    assert security.token_info(token) == {"sub": "session-1"}
    security.configure(Settings.from_env(environ={}, secret_keys=["another key " * 4]))
    assert security.token_info(token) is None
