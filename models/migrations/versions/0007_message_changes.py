"""Messages that change: edits, recalls, replies, forwards, deleting for oneself, and the
per-conversation number of changes (`rev`) that resuming clients count on.

- `Group.last_rev`: the conversation's newest change. Until now every change was a new
  message, so it starts at `last_seq`.
- `Message.rev` (its last change: its seq, for every existing message), `edited_at`,
  `recalled_at`, `recalled_by`, `reply_to_seq`, `forwarded` (false), and an index on
  (group, rev) for replaying what changed after a client's rev.
- New table `Hidden`: the messages each user deleted for themselves.

No table is rebuilt: the NOT NULL columns come with a default (as Pony maps them, through
`sql_default`), which SQLite can add in place; the others are nullable.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    group, message, user = table("Group"), table("Message"), table("User")
    op.add_column(
        group, sa.Column("last_rev", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
    )
    op.execute(sa.text(f'UPDATE "{group}" SET "last_rev" = "last_seq"'))
    op.add_column(
        message, sa.Column("rev", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
    )
    op.execute(sa.text(f'UPDATE "{message}" SET "rev" = "seq"'))
    op.add_column(message, sa.Column("edited_at", sa.DateTime(), nullable=True))
    op.add_column(message, sa.Column("recalled_at", sa.DateTime(), nullable=True))
    if is_postgres():
        op.add_column(message, sa.Column("recalled_by", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            f"fk_{message}__recalled_by",
            message,
            user,
            ["recalled_by"],
            ["id"],
            ondelete="SET NULL",
        )
    else:
        # SQLite adds a column with its REFERENCES clause in place (Alembic would try to add
        # the constraint apart, which SQLite cannot).
        op.execute(
            sa.text(
                f'ALTER TABLE "{message}" ADD COLUMN "recalled_by" INTEGER '
                f'REFERENCES "{user}" ("id") ON DELETE SET NULL'
            )
        )
    op.add_column(message, sa.Column("reply_to_seq", sa.BigInteger(), nullable=True))
    op.add_column(
        message,
        sa.Column("forwarded", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.create_index(f"idx_{message.lower()}__group_rev", message, ["group", "rev"])
    op.create_index(f"idx_{message.lower()}__recalled_by", message, ["recalled_by"])
    hidden = table("Hidden")
    op.create_table(
        hidden,
        # BIGSERIAL on PostgreSQL; on SQLite the rowid (only INTEGER PRIMARY KEY is one).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            nullable=True,
        ),
        _reference("Hidden", "user", "User"),
        _reference("Hidden", "group", "Group"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("user", "group", "seq", name=f"unq_{hidden.lower()}__user_group_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"idx_{hidden.lower()}__group", hidden, ["group"])


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")


def _reference(entity: str, column: str, target: str) -> sa.Column:
    """A column holding a `target` row's id; the row goes with it (ON DELETE CASCADE)."""
    name = f"fk_{table(entity).lower()}__{column}" if is_postgres() else None
    return sa.Column(
        column,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(f"{table(target)}.id", name=name, ondelete="CASCADE"),
        nullable=False,
    )
