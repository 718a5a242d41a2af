"""A database made by an earlier release upgrades in place with nothing lost.

`tests/fixtures/release_0_1_0/` holds what release 0.1.0 (commit 0e7399d) made through its own
API, on SQLite (`sqlite/im.sqlite`) and on PostgreSQL (`postgres/dump.sql`): users with and
without email and avatar, their sessions and tokens, failed logins, email codes (one login
code left unused), groups, memberships, messages of every kind (one from a cancelled account)
and the media files. `make.py` there made it; `expected.json` says what it holds.

The test copies the fixture of the run's kind of database (IM_TEST_DATABASE_URL) into a
scratch database, starts a real `im-api serve` on it (which upgrades on start), and checks:

- no row of the release's tables changed (every column the release had, row for row), and
  the rows per table before and after (printed: `pytest -s -k upgrades`);
- through the API: every account logs in with its password, and carol with her unused login
  code; every token the release issued still works and names its user; ended sessions stay
  ended; every group shows its members; every message is listed with its kind, sender and
  file name, and every media file (and avatar) comes back byte for byte.

Extending it when you add a migration (0003, ...):

- The release fixture never changes: it is what deployed databases hold. Your migration
  must upgrade it, so this test runs your migration on real data as it stands.
- If the migration fills a new column or table from old rows (say `seq` from message order),
  add the check to `test_a_database_of_an_earlier_release_upgrades_with_nothing_lost` under
  "What later migrations made of the release's data", reading the expected values from
  `expected.json` (message ids, groups, times) rather than from the upgraded database.
- Old columns you transform on purpose: leave them out of `unchanged_columns()` with a
  comment, and check their new values instead.
- When a release of ours ships with a new schema, make its fixture the same way (copy
  `make.py` to `tests/fixtures/release_X_Y_Z/`, run it against that release's checkout) and
  add it to `RELEASES`.

0004 (seq) is checked that way: each group's messages numbered 1..n in id order, its
`last_seq` the count, both against `expected.json`, then through `after_seq` and a new post.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from databases import Release, Scratch, columns, counts, rows, version

RELEASES = ["release_0_1_0"]


@pytest.fixture(params=RELEASES)
def release(request, tmp_path, database_url):
    """A copy of a release's database of the run's kind, its media in the instance folder."""
    fixture = Release(request.param, postgres=database_url.startswith("postgres"))
    database = Scratch(database_url, tmp_path, "upgrade")
    fixture.copy_into(database, tmp_path / "instance" / "media")
    yield fixture, database
    database.drop()


def test_a_database_of_an_earlier_release_upgrades_with_nothing_lost(release, tmp_path, new_server):
    from models import schema

    fixture, database = release
    expected = fixture.expected
    tables = fixture.tables
    kept = unchanged_columns(database, tables)
    before_rows, before_counts = rows(database, kept), counts(database, tables)
    highest_id = _highest_user_id_given(database)
    assert before_counts == expected["rows"], "the copy differs from what make.py recorded"
    assert version(database) == []

    # Two workers on PostgreSQL: the parent process upgrades before they start.
    workers = 2 if database.postgres else 1
    server = new_server(
        tmp_path / "instance", database.url, workers, "info", **fixture.server_env()
    ).start()
    log = server.log.read_text()
    assert log.count("Database schema:") == 1, log
    assert f"upgraded from 0001 to {schema.HEAD}" in log
    after_counts = counts(database, tables)
    print(f"\n{expected['database']} rows per table, before -> after the upgrade:")
    for table in tables:
        print(f"  {table:13} {before_counts[table]:3} -> {after_counts[table]:3}")
    assert version(database) == [schema.HEAD]
    assert rows(database, kept) == before_rows
    assert after_counts == before_counts

    with httpx.Client(base_url=server.url, timeout=30) as http:
        _every_token_works(http, expected, fixture.folder / "media")
        _every_message_and_file_is_there(http, expected, fixture.folder / "media")
        _every_account_logs_in(http, expected)
        _new_ids_come_after(http, highest_id)
    # What later migrations made of the release's data: checks go here (see above).
    # 0003 adds the abuse limits' counts, a table of its own: the logins above were counted
    # in it, and the release's tables are untouched (checked above).
    assert counts(database, ["Throttle"])["Throttle"] > 0
    # 0004 numbers each group's messages 1..n in the order they were posted (id order),
    # records the last number on the group, and adds text and client_msg_id (none yet).
    _messages_are_numbered_in_order(database, expected)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        _messages_page_forward_by_seq(http, expected)


@pytest.fixture
def at_0004(tmp_path, database_url):
    """A copy of a database at schema version 0004, made through the API of the code that had
    it (`tests/fixtures/schema_0004/make.py`), with its media."""
    fixture = Release("schema_0004", postgres=database_url.startswith("postgres"))
    database = Scratch(database_url, tmp_path, "upgrade")
    fixture.copy_into(database, tmp_path / "instance" / "media")
    yield fixture, database
    database.drop()


def test_a_database_at_schema_0004_upgrades_with_every_row_kept(at_0004, tmp_path, new_server):
    """Today's schema before contacts and direct chats: every row and column it had comes
    through unchanged; every group becomes a conversation of kind `group`, active as of its
    newest message, whose members have read it all; accounts, tokens, texts and files work
    through the API as before, and the conversation list shows the groups by their activity,
    with no unread badge."""
    from models import schema

    fixture, database = at_0004
    expected, tables = fixture.expected, fixture.tables
    kept = unchanged_columns(database, tables)
    before_rows, before_counts = rows(database, kept), counts(database, tables)
    assert before_counts == expected["rows"]
    assert version(database) == ["0004"]

    workers = 2 if database.postgres else 1
    server = new_server(
        tmp_path / "instance", database.url, workers, "info", **fixture.server_env()
    ).start()
    assert f"upgraded from 0004 to {schema.HEAD}" in server.log.read_text()
    assert rows(database, kept) == before_rows
    assert counts(database, tables) == before_counts
    group, message, user = (database.table(e) for e in ("Group", "Message", "User"))
    newest = dict(
        database.execute(f'SELECT "group", MAX("created_at") FROM "{message}" GROUP BY "group"')
    )
    for group_id, kind, direct_key, active, created in database.execute(
        f'SELECT "id", "kind", "direct_key", "last_activity_at", "created_at" FROM "{group}"'
    ):
        assert (kind, direct_key) == ("group", None)
        assert str(active) == str(newest.get(group_id, created))
    assert {n for (n,) in database.execute(f'SELECT "last_notice" FROM "{user}"')} == {0}
    # 0006: every member has read what was there; no message mentions anyone.
    membership = database.table("Membership")
    assert (
        database.execute(
            f'SELECT m."id" FROM "{membership}" m JOIN "{group}" g ON g."id" = m."group" '
            'WHERE m."read_seq" <> g."last_seq"'
        )
        == []
    )
    assert database.execute(f'SELECT "id" FROM "{message}" WHERE "mentions" IS NOT NULL') == []
    # 0007: every message was one change, its making: its rev is its seq, its group's last
    # rev the last seq; nothing edited, recalled, answered or forwarded.
    assert (
        database.execute(
            f'SELECT "id" FROM "{message}" WHERE "rev" <> "seq" OR "edited_at" IS NOT NULL '
            'OR "recalled_at" IS NOT NULL OR "reply_to_seq" IS NOT NULL OR "forwarded"'
        )
        == []
    )
    assert database.execute(f'SELECT "id" FROM "{group}" WHERE "last_rev" <> "last_seq"') == []
    # 0008: today's owners stay owners (their rows are kept above), nobody is an admin, no
    # group has an announcement or join approval, and no request waits.
    assert {r for (r,) in database.execute(f'SELECT "role" FROM "{membership}"')} == {"member"}
    assert (
        database.execute(
            f'SELECT "id" FROM "{group}" WHERE "join_approval" OR "announcement" IS NOT NULL '
            'OR "announcement_by" IS NOT NULL OR "announcement_at" IS NOT NULL '
            'OR "state_version" <> 0'
        )
        == []
    )
    assert database.execute(f'SELECT COUNT(*) FROM "{database.table("JoinRequest")}"') == [(0,)]
    # 0009: failures recorded before had no address; no account has signed in from a known
    # one yet (the next sign-in records it).
    failures = database.table("LoginFailure")
    assert database.execute(f'SELECT "id" FROM "{failures}" WHERE "address" IS NOT NULL') == []
    assert database.execute(f'SELECT COUNT(*) FROM "{database.table("KnownAddress")}"') == [(0,)]

    with httpx.Client(base_url=server.url, timeout=30) as http:
        _every_token_works(http, expected, fixture.folder / "media")
        _every_message_and_file_is_there(http, expected, fixture.folder / "media")
        _every_text_is_there(http, expected)
        _every_account_logs_in(http, expected)
        _conversations_by_activity(http, expected)


def _highest_user_id_given(database: Scratch) -> int:
    """The highest account id ever given, a cancelled account's included."""
    if database.postgres:
        found = database.execute('SELECT last_value FROM "user_id_seq"')
    else:
        found = database.execute("SELECT seq FROM sqlite_sequence WHERE name = 'User'")
    return found[0][0]


def _new_ids_come_after(http: httpx.Client, highest: int) -> None:
    """A new account gets an id never given before: a cancelled account's id is not reused
    (a table rebuilt by an upgrade keeps its id sequence)."""
    made = http.post("/user/register", json={"name": "newcomer", "password": "new password"})
    assert made.status_code == 200, made.text
    assert made.json()["user"]["id"] > highest


def _every_text_is_there(http: httpx.Client, expected: dict) -> None:
    tokens = {user["name"]: user["tokens"][0] for user in expected["users"]}
    for text in expected["texts"]:
        listed = http.get(
            f"/groups/{text['group_id']}/messages",
            params={"after_seq": text["seq"] - 1, "limit": 1},
            headers=_bearer(tokens[text["sender"]]),
        )
        assert listed.status_code == 200, listed.text
        (shown,) = listed.json()["messages"]
        assert (shown["id"], shown["kind"], shown["text"]) == (text["id"], "text", text["text"])
        assert shown["client_msg_id"] == text["client_msg_id"]
        assert shown["created_at"] == text["created_at"]


def _conversations_by_activity(http: httpx.Client, expected: dict) -> None:
    """Each user's list: their groups, newest message first, with that message."""
    tokens = {user["name"]: user["tokens"][0] for user in expected["users"]}
    for name, token in tokens.items():
        listed = http.get("/groups", headers=_bearer(token))
        assert listed.status_code == 200, listed.text
        shown = listed.json()["groups"]
        mine = [g for g in expected["groups"] if name in g["members"]]
        assert sorted(g["id"] for g in shown) == sorted(g["id"] for g in mine)
        assert all(g["kind"] == "group" and g["unread_count"] == 0 for g in shown)
        times = [g["last_activity_at"] for g in shown]
        assert times == sorted(times, reverse=True)
        for summary in shown:  # 0008: roles, as the owner alone had one before
            assert summary["admin_ids"] == [] and summary["announcement"] is None
            owned = summary["owner_id"] == next(
                u["id"] for u in expected["users"] if u["name"] == name
            )
            assert summary["role"] == ("owner" if owned else "member")
        for summary in shown:
            sent = [t for t in expected["texts"] if t["group_id"] == summary["id"]]
            if sent:  # the texts were the last messages of their groups
                assert summary["last_message"]["id"] == sent[-1]["id"]


def unchanged_columns(database: Scratch, tables: list[str]) -> dict[str, list[str]]:
    """The columns of each release table whose values must come through unchanged: all of
    them, as the release had them (read before the upgrade)."""
    return columns(database, tables)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _every_token_works(http: httpx.Client, expected: dict, media: Path) -> None:
    for user in expected["users"]:
        for token in user["tokens"]:
            me = http.get("/user/me", headers=_bearer(token))
            assert me.status_code == 200, me.text
            shown = me.json()["user"]
            assert (shown["id"], shown["name"], shown["email"]) == (
                user["id"],
                user["name"],
                user["email"],
            )
            assert (shown["avatar_url"] is None) == (user["avatar"] is None)
            if user["avatar"]:
                _same_file(http, shown["avatar_url"], user["avatar"], media)
        for token in user["ended_tokens"]:
            assert http.get("/user/me", headers=_bearer(token)).status_code == 401
    for user in expected["cancelled_users"]:
        for token in user["ended_tokens"]:
            assert http.get("/user/me", headers=_bearer(token)).status_code == 401


def _every_message_and_file_is_there(http: httpx.Client, expected: dict, media: Path) -> None:
    tokens = {user["name"]: user["tokens"][0] for user in expected["users"]}
    for group in expected["groups"]:
        for member in group["members"]:
            answer = http.get(f"/groups/{group['id']}", headers=_bearer(tokens[member]))
            assert answer.status_code == 200, answer.text
            shown = answer.json()["group"]
            assert shown["name"] == group["name"]
            assert sorted(m["name"] for m in shown["members"]) == sorted(group["members"])
        owner = tokens[group["owner"]]
        listed = http.get(f"/groups/{group['id']}/messages?limit=100", headers=_bearer(owner))
        assert listed.status_code == 200, listed.text
        # The uploads (texts, where a fixture has them, are checked on their own).
        messages = {m["id"]: m for m in listed.json()["messages"] if m["kind"] != "text"}
        sent = [m for m in expected["messages"] if m["group_id"] == group["id"]]
        assert sorted(messages) == sorted(m["id"] for m in sent)
        for message in sent:
            shown = messages[message["id"]]
            assert shown["kind"] == message["kind"]
            assert shown["sender"]["name"] == (message["sender"] or "deleted user")
            assert shown["media_id"] == message["media_id"]
            assert (shown["filename"], shown["content_type"], shown["size"]) == (
                message["filename"],
                message["content_type"],
                message["size"],
            )
            _same_file(http, shown["url"], message, media)


def _every_account_logs_in(http: httpx.Client, expected: dict) -> None:
    for user in expected["users"]:
        answer = http.post("/user/login", json={"name": user["name"], "password": user["password"]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["id"] == user["id"]
    code = expected["login_code"]
    answer = http.post("/user/login", json={"email": code["email"], "security_code": code["code"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["name"] == code["name"]
    for user in expected["cancelled_users"]:
        answer = http.post("/user/login", json={"name": user["name"], "password": user["password"]})
        assert answer.status_code == 400


def _messages_are_numbered_in_order(database: Scratch, expected: dict) -> None:
    message, group = database.table("Message"), database.table("Group")
    found = database.execute(
        f'SELECT "id", "group", "seq", "text", "client_msg_id" FROM "{message}" ORDER BY "id"'
    )
    wanted = []
    for group_facts in expected["groups"]:
        sent = sorted(m["id"] for m in expected["messages"] if m["group_id"] == group_facts["id"])
        wanted += [(i, group_facts["id"], n, None, None) for n, i in enumerate(sent, start=1)]
    assert sorted(found) == sorted(wanted)
    last = dict(database.execute(f'SELECT "id", "last_seq" FROM "{group}"'))
    assert last == {
        g["id"]: sum(m["group_id"] == g["id"] for m in expected["messages"])
        for g in expected["groups"]
    }


def _messages_page_forward_by_seq(http: httpx.Client, expected: dict) -> None:
    """after_seq=0 lists every old message in the order it was posted, then a new message
    takes the next seq."""
    tokens = {user["name"]: user["tokens"][0] for user in expected["users"]}
    for group in expected["groups"]:
        owner = _bearer(tokens[group["owner"]])
        url = f"/groups/{group['id']}/messages"
        listed = http.get(url, params={"after_seq": 0, "limit": 100}, headers=owner)
        assert listed.status_code == 200, listed.text
        shown = listed.json()["messages"]
        sent = sorted(m["id"] for m in expected["messages"] if m["group_id"] == group["id"])
        assert [(m["id"], m["seq"]) for m in shown] == [(i, n) for n, i in enumerate(sent, start=1)]
        new = http.post(url, json={"text": "after the upgrade"}, headers=owner)
        assert new.status_code == 201, new.text
        assert new.json()["message"]["seq"] == len(sent) + 1


def _same_file(http: httpx.Client, url: str, facts: dict, media: Path) -> None:
    """The media at the signed `url` is, byte for byte, the file the release was sent (its
    SHA-256 recorded by make.py) and kept (the fixture's media folder)."""
    fetched = http.get(url.removeprefix("/api"))
    assert fetched.status_code == 200, fetched.text
    assert hashlib.sha256(fetched.content).hexdigest() == facts["sha256"]
    assert fetched.content == (media / facts["sha256"]).read_bytes()
