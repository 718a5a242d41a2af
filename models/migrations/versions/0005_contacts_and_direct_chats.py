"""Contacts and direct chats: a conversation is a group chat or a direct chat, and users have
contacts, contact requests, blocks and a feed of their own notices.

- `Group` (every conversation) gains `kind` ("group" for every existing row), `direct_key`
  (the pair of a direct chat, unique; NULL for groups) and `last_activity_at` (the time of
  its newest message, else its creation: the order of the conversation list); `owner`
  becomes optional (a direct chat has none), its reference then ON DELETE SET NULL as Pony
  maps an optional one.
- `User` gains `last_notice` (0: no notice yet).
- New tables `ContactRequest`, `Contact`, `Block`, `Notice`.

PostgreSQL changes `Group` in place; SQLite cannot change a column's nullability or foreign
key, nor add a UNIQUE column, so `Group` is rebuilt (Alembic's batch mode) under the write
lock the upgrade holds, with every row kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, keeping_id_sequence, table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    group, user, message = table("Group"), table("User"), table("Message")
    op.add_column(group, sa.Column("kind", sa.String(8), nullable=True))
    op.add_column(group, sa.Column("direct_key", sa.String(48), nullable=True))
    op.add_column(group, sa.Column("last_activity_at", sa.DateTime(), nullable=True))
    op.execute(sa.text(f'UPDATE "{group}" SET "kind" = \'group\''))
    op.execute(
        sa.text(
            f'UPDATE "{group}" SET "last_activity_at" = COALESCE((SELECT MAX(m."created_at") '
            f'FROM "{message}" AS m WHERE m."group" = "{group}"."id"), "created_at")'
        )
    )
    op.add_column(user, sa.Column("last_notice", sa.BigInteger(), nullable=True))
    op.execute(sa.text(f'UPDATE "{user}" SET "last_notice" = 0'))
    if is_postgres():
        _change_in_place(group, user)
    else:
        _rebuild_on_sqlite(group, user)
    _create(
        "ContactRequest",
        _reference("ContactRequest", "requester"),
        _reference("ContactRequest", "addressee"),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        unique=("requester", "addressee"),
        index="addressee",
    )
    _create(
        "Contact",
        _reference("Contact", "owner"),
        _reference("Contact", "other"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        unique=("owner", "other"),
        index="other",
    )
    _create(
        "Block",
        _reference("Block", "blocker"),
        _reference("Block", "blocked"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        unique=("blocker", "blocked"),
        index="blocked",
    )
    _create(
        "Notice",
        _reference("Notice", "user"),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        unique=("user", "number"),
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")


def _change_in_place(group: str, user: str) -> None:
    op.alter_column(group, "kind", nullable=False)
    op.alter_column(group, "last_activity_at", nullable=False)
    op.alter_column(group, "owner", nullable=True)
    op.create_unique_constraint(f"{group}_direct_key_key", group, ["direct_key"])
    op.drop_constraint(f"fk_{group}__owner", group, type_="foreignkey")
    op.create_foreign_key(
        f"fk_{group}__owner", group, table("User"), ["owner"], ["id"], ondelete="SET NULL"
    )
    op.alter_column(user, "last_notice", nullable=False)


def _rebuild_on_sqlite(group: str, user: str) -> None:
    # Batch mode makes each table again with these changes (the `owner` column given here
    # replaces the reflected one, with its new foreign key). AUTOINCREMENT is not reflected:
    # asked for again, and its counter kept, so ids are never reused.
    with (
        keeping_id_sequence("Group"),
        op.batch_alter_table(
            group,
            recreate="always",
            table_kwargs={"sqlite_autoincrement": True},
            reflect_args=[
                sa.Column(
                    "owner",
                    sa.Integer(),
                    sa.ForeignKey(f"{table('User')}.id", ondelete="SET NULL"),
                    nullable=True,
                ),
                sa.Column("direct_key", sa.String(48), unique=True, nullable=True),
            ],
        ) as batch,
    ):
        batch.alter_column("kind", existing_type=sa.String(8), nullable=False)
        batch.alter_column("last_activity_at", existing_type=sa.DateTime(), nullable=False)
    _rebuild_user_on_sqlite(user)


def _rebuild_user_on_sqlite(user: str) -> None:
    """`User` made again with `last_notice` NOT NULL, by hand: Alembic's batch mode would
    write its two UNIQUE constraints in no fixed order, and SQLite numbers their indexes by
    it (Pony's order: name_key, then email). Rows, ids and the id sequence are kept."""
    op.execute(
        sa.text(
            'CREATE TABLE "_new_User" (\n'
            '  "id" INTEGER PRIMARY KEY AUTOINCREMENT,\n'
            '  "name" VARCHAR(16) NOT NULL,\n'
            '  "name_key" VARCHAR(16) UNIQUE NOT NULL,\n'
            '  "email" VARCHAR(254) UNIQUE,\n'
            '  "password_hash" VARCHAR(100) NOT NULL,\n'
            '  "created_at" DATETIME NOT NULL,\n'
            '  "last_notice" BIGINT NOT NULL\n'
            ")"
        )
    )
    columns = '"id", "name", "name_key", "email", "password_hash", "created_at", "last_notice"'
    op.execute(sa.text(f'INSERT INTO "_new_User" ({columns}) SELECT {columns} FROM "{user}"'))
    with keeping_id_sequence("User"):
        op.execute(sa.text(f'DROP TABLE "{user}"'))
        op.execute(sa.text(f'ALTER TABLE "_new_User" RENAME TO "{user}"'))


def _create(entity: str, *items, unique: tuple[str, ...], index: str | None = None) -> None:
    """The entity's table as Pony maps it: a 64-bit auto-increment `id` first, the composite
    key, and an index on the reference the key does not start with."""
    name = table(entity)
    op.create_table(
        name,
        # BIGSERIAL on PostgreSQL; on SQLite the rowid (only INTEGER PRIMARY KEY is one).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            nullable=True,
        ),
        *items,
        sa.UniqueConstraint(*unique, name=f"unq_{name.lower()}__{'_'.join(unique)}"),
        sqlite_autoincrement=True,
    )
    if index is not None:
        op.create_index(f"idx_{name.lower()}__{index}", name, [index])


def _reference(entity: str, column: str) -> sa.Column:
    """A column holding a user's id; the row goes with the account (ON DELETE CASCADE)."""
    name = f"fk_{table(entity).lower()}__{column}" if is_postgres() else None
    return sa.Column(
        column,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(f"{table('User')}.id", name=name, ondelete="CASCADE"),
        nullable=False,
    )
