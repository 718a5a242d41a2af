"""What the operations need before they are measured: a clean database, users with tokens,
a group with messages. Users are made with the project's own helpers; the group through the
API, so it appears as soon as the group operations are written.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pony.orm import db_session

from bench.load import multipart
from im_core import config, security
from im_core.config import Settings
from models import database, sessions, users

PASSWORD = "bench password"

# The abuse limits (IM_LIMIT_*) stay on, so both servers count every request as in
# production, but so high that the benchmark's load never reaches them.
UNREACHED_LIMITS = {
    **{
        f"IM_{field.name.upper()}": "1000000000/60"
        for field in dataclasses.fields(Settings)
        if field.name.startswith("limit_")
    },
    # The caps on what one client address or user holds at once are off: the benchmark's
    # thousands of connections and sockets all come from loopback.
    "IM_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "IM_WS_MAX_SOCKETS_PER_USER": "0",
    "IM_WS_MAX_SOCKETS_PER_ADDRESS": "0",
}


@dataclass
class Fixtures:
    tokens: list[str]
    names: list[str]  # the token users' name stems (change_name appends one letter)
    login_names: list[str]
    group_id: int | None = None
    member_tokens: list[str] = field(default_factory=list)  # the group's members
    busy_token: str | None = None  # a user in many conversations (list_conversations)
    queries_per_page: dict[int, int] = field(default_factory=dict)  # conversations: queries
    notes: dict[str, str] = field(default_factory=dict)  # operation: why it is skipped


def wipe_postgres(url: str) -> None:
    """Drop every table of the bench database, so the tables match today's entities; make
    the database first when the server has none of that name."""
    import psycopg2

    parts = urlsplit(url)
    database_name = parts.path.lstrip("/")
    if "bench" not in database_name:
        raise SystemExit(
            f"Refusing to wipe PostgreSQL database {database_name!r}: the bench drops its "
            "tables, so its name must contain 'bench' (e.g. test_bench)."
        )
    admin = psycopg2.connect(parts._replace(path="/postgres").geturl())
    try:
        admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database_name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database_name}"')
    finally:
        admin.close()
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            for (table,) in cursor.fetchall():
                cursor.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    finally:
        connection.close()


def seed(settings: Settings, run_id: str, token_users: int, login_users: int) -> Fixtures:
    """Bind the database (creating the tables before any server starts) and make the users.

    Token users never log in, so their passwords are hashed at the lowest cost; login users
    are hashed at the configured cost, which is what every login then pays.
    """
    settings.prepare_instance()
    config.install(settings)
    security.configure(settings)
    database.bind(settings)
    configured_rounds = settings.bcrypt_rounds
    tokens, names, login_names = [], [], []
    try:
        settings.bcrypt_rounds = 4
        with db_session:
            for index in range(token_users):
                stem = f"t{run_id}{index:02d}"
                user = users.create(stem + "a", PASSWORD)
                token, _ = sessions.open_session(user)
                tokens.append(token)
                names.append(stem)
        settings.bcrypt_rounds = configured_rounds
        with db_session:
            for index in range(login_users):
                name = f"l{run_id}{index:02d}"
                users.create(name, PASSWORD)
                login_names.append(name)
    finally:
        settings.bcrypt_rounds = configured_rounds
    return Fixtures(tokens, names, login_names)


def call(port: int, method: str, path: str, token: str | None = None, payload=None,
         body: bytes = b"", content_type: str | None = None) -> tuple[int, dict]:  # fmt: skip
    """One request with the standard library; the status and the JSON answer (or {})."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if payload is not None:
        body, content_type = json.dumps(payload).encode(), "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    return response.status, answer if isinstance(answer, dict) else {}


def upload(port: int, token: str, group_id: int, content: bytes) -> tuple[int, dict]:
    content_type, parts = multipart("file", "seed.bin", (content,))
    path = f"/api/groups/{group_id}/upload_file"
    return call(port, "POST", path, token, body=b"".join(parts), content_type=content_type)


def prepare_group(port: int, fixtures: Fixtures, messages: int) -> None:
    """A group of all token users with `messages` files in it, made through the API.

    Whatever answers 501 (or fails) is noted against the operations that need it.
    """
    owner = fixtures.tokens[0]
    status, answer = call(port, "POST", "/api/groups", owner, {"name": "bench group"})
    if status == 501:
        reason = "groups are not implemented yet (POST /api/groups answers 501)"
        for operation in ("list_messages", "upload_1mb", "upload_max"):
            fixtures.notes[operation] = reason
        return
    if status not in (200, 201) or "group" not in answer:
        reason = f"could not create a group: POST /api/groups answered {status} {answer}"
        for operation in ("list_messages", "upload_1mb", "upload_max"):
            fixtures.notes[operation] = reason
        return
    group_id = fixtures.group_id = answer["group"]["id"]
    fixtures.member_tokens = [owner]
    for stem, token in zip(fixtures.names[1:], fixtures.tokens[1:], strict=True):
        path = f"/api/groups/{group_id}/members"
        status, answer = call(port, "POST", path, owner, {"name": stem + "a"})
        if status not in (200, 201):
            break  # without other members every connection lists as the owner
        fixtures.member_tokens.append(token)
    status, answer = upload(port, owner, group_id, b"seed")
    if status == 501:
        reason = "uploads are not implemented yet (upload_file answers 501)"
        fixtures.notes["upload_1mb"] = fixtures.notes["upload_max"] = reason
    elif status not in (200, 201):
        reason = f"a 4-byte upload_file answered {status} {answer}"
        fixtures.notes["upload_1mb"] = fixtures.notes["upload_max"] = reason
    else:
        for index in range(messages - 1):
            upload(port, owner, group_id, f"seed {index}".encode())
    status, answer = call(port, "GET", f"/api/groups/{group_id}/messages", owner)
    if status == 501:
        fixtures.notes["list_messages"] = "the message list is not implemented yet (501)"
    elif status != 200:
        fixtures.notes["list_messages"] = f"the message list answered {status} {answer}"


def prepare_conversations(run_id: str, fixtures: Fixtures, count: int) -> None:
    """A user in `count` conversations (every tenth a direct chat with a contact), each with
    one message, made through the models (`count` groups through the API would take long and
    measure nothing), and another user in a tenth as many, of both kinds alike; then the
    queries one page of the list costs each of the two (`queries_per_page`: conversations ->
    queries)."""
    from pony.orm import commit

    from models import groups, messages
    from models.entities import Membership, User

    settings = config.current()
    rounds, settings.bcrypt_rounds = settings.bcrypt_rounds, 4  # these users never log in
    try:
        with db_session:
            busy, fewer = users.create(f"b{run_id}", PASSWORD), users.create(f"c{run_id}", PASSWORD)
            fixtures.busy_token, _ = sessions.open_session(busy)
            commit()
            busy_id, fewer_id = busy.id, fewer.id
        for index in range(count):
            with db_session:
                busy = User[busy_id]
                if index % 10 == 0:
                    peer = users.create(f"p{run_id}{index:04d}", PASSWORD)
                    chat = direct_chat(busy, peer)
                    if index % 100 == 0:
                        direct_chat(User[fewer_id], peer)
                else:
                    chat = groups.create(busy, f"conversation {index}")
                    if index % 10 == 1:
                        Membership(group=chat, user=User[fewer_id], joined_at=chat.created_at)
                commit()
                chat_id = chat.id
            with db_session:
                messages.post_text(chat_id, busy_id, f"message {index}")
    finally:
        settings.bcrypt_rounds = rounds
    fixtures.queries_per_page = {
        count: _queries_per_page(busy_id),
        count // 10: _queries_per_page(fewer_id),
    }


def direct_chat(one, other):
    """The direct chat of two contacts, as `PUT /direct/{user_id}` makes it."""
    from pony.orm import flush

    from im_core.config import now
    from models import direct
    from models.entities import Contact, Group, Membership

    started = now()
    for owner, contact in ((one, other), (other, one)):
        Contact(owner=owner, other=contact, created_at=started)
    chat = Group(
        kind=direct.DIRECT,
        direct_key=direct.key(one.id, other.id),
        created_at=started,
        last_activity_at=started,
    )
    for member in (one, other):
        Membership(group=chat, user=member, joined_at=started)
    flush()  # its id
    return chat


def _queries_per_page(user_id: int, limit: int = 50) -> int:
    """The SQL statements one page of the user's conversation list runs (its first page)."""
    from models import conversations
    from models.entities import User, db

    statements = 0
    execute = db.provider.execute

    def counting(*args, **kwargs):
        nonlocal statements
        statements += 1
        return execute(*args, **kwargs)

    db.provider.execute = counting
    try:
        with db_session:
            conversations.page(User[user_id], None, limit)
    finally:
        db.provider.execute = execute
    return statements
