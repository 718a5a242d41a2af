"""Text messages and their order: `Message.seq` (1, 2, 3 ... per group), `Message.text`,
`Message.client_msg_id`, `Message.media` optional (a text message shows none), and
`Group.last_seq`, the seq of the group's newest message.

Existing messages are numbered per group in id order (the order they were posted in), and
each group's `last_seq` is its highest seq (0 without messages). Unique keys: (group, seq),
so two messages never share a place, and (group, sender, client_msg_id), so a retried post
finds the first one (NULLs never clash: messages without a client id are all allowed).

As Pony maps the entities (tests/test_schema.py): the (group, seq) key replaces the index on
`group` (its first column), and the optional `media` reference is ON DELETE SET NULL.

PostgreSQL changes the tables in place. SQLite cannot change a column's nullability, a
default or a foreign key in place, nor add a UNIQUE constraint: both tables are rebuilt
(Alembic's batch mode: copy into a new table, drop the old one, rename), under the write
lock the upgrade holds, with every row kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    message, group = table("Message"), table("Group")
    # Added nullable and filled, then made NOT NULL: existing rows need their values first.
    op.add_column(message, sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column(message, sa.Column("text", sa.Text(), nullable=True))
    op.add_column(message, sa.Column("client_msg_id", sa.String(64), nullable=True))
    op.add_column(group, sa.Column("last_seq", sa.BigInteger(), nullable=True))
    _number_messages(message, group)
    if is_postgres():
        _constrain_on_postgres(message, group)
    else:
        _rebuild_on_sqlite(message, group)


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")


def _number_messages(message: str, group: str) -> None:
    """Each group's messages 1..n in id order; each group's last_seq its count."""
    # Window functions: PostgreSQL, and SQLite since 3.25 (2018).
    op.execute(
        sa.text(
            f'UPDATE "{message}" SET "seq" = (SELECT numbered.n FROM '
            f'(SELECT "id", row_number() OVER (PARTITION BY "group" ORDER BY "id") AS n '
            f'FROM "{message}") AS numbered WHERE numbered."id" = "{message}"."id")'
        )
    )
    op.execute(
        sa.text(
            f'UPDATE "{group}" SET "last_seq" = (SELECT COALESCE(MAX(m."seq"), 0) '
            f'FROM "{message}" AS m WHERE m."group" = "{group}"."id")'
        )
    )


def _constrain_on_postgres(message: str, group: str) -> None:
    op.alter_column(message, "seq", nullable=False)
    op.alter_column(message, "media", nullable=True)
    op.alter_column(group, "last_seq", nullable=False)
    # The unique key's index serves lookups by group as the old index did.
    op.drop_index(f"idx_{message}__group", table_name=message)
    op.create_unique_constraint(f"unq_{message}__group_seq", message, ["group", "seq"])
    op.create_unique_constraint(
        f"unq_{message}__group_sender_client_msg_id",
        message,
        ["group", "sender", "client_msg_id"],
    )
    op.drop_constraint(f"fk_{message}__media", message, type_="foreignkey")
    op.create_foreign_key(
        f"fk_{message}__media", message, table("Media"), ["media"], ["id"], ondelete="SET NULL"
    )


def _rebuild_on_sqlite(message: str, group: str) -> None:
    # Batch mode reflects each table and makes it again with these changes. Columns given
    # here replace the reflected ones (with their foreign keys: `media` gets its new one).
    # AUTOINCREMENT is not reflected: asked for again, so ids are still never reused.
    with op.batch_alter_table(
        group, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("last_seq", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table(
        message,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
        reflect_args=[
            sa.Column(
                "media",
                sa.Integer(),
                sa.ForeignKey(f"{table('Media')}.id", ondelete="SET NULL"),
                nullable=True,
            )
        ],
    ) as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_index(f"idx_{message.lower()}__group")
        # In the order Pony writes them (by name), so SQLite numbers their indexes alike.
        batch.create_unique_constraint(
            f"unq_{message.lower()}__group_sender_client_msg_id",
            ["group", "sender", "client_msg_id"],
        )
        batch.create_unique_constraint(f"unq_{message.lower()}__group_seq", ["group", "seq"])
