"""Read state: each member's read position, and who each message mentions.

- `Membership.read_seq`: how far the member has read. Existing members have read everything
  there is (their group's `last_seq`), so nobody starts with a badge of old messages.
- `Message.mentions`: the ids of the members a text mentions (NULL: none; older messages
  mention nobody).
- New table `Mention`: one row per mentioned member (user, group, seq), for mention counts.

PostgreSQL changes `Membership` in place; SQLite cannot make a new column NOT NULL without
a default, so `Membership` is rebuilt (Alembic's batch mode) with every row kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, keeping_id_sequence, table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    membership, group, message = table("Membership"), table("Group"), table("Message")
    op.add_column(membership, sa.Column("read_seq", sa.BigInteger(), nullable=True))
    op.execute(
        sa.text(
            f'UPDATE "{membership}" SET "read_seq" = (SELECT g."last_seq" FROM "{group}" AS g '
            f'WHERE g."id" = "{membership}"."group")'
        )
    )
    if is_postgres():
        op.alter_column(membership, "read_seq", nullable=False)
    else:
        with (
            keeping_id_sequence("Membership"),
            op.batch_alter_table(
                membership, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ) as batch,
        ):
            batch.alter_column("read_seq", existing_type=sa.BigInteger(), nullable=False)
    op.add_column(message, sa.Column("mentions", sa.Text(), nullable=True))
    mention = table("Mention")
    op.create_table(
        mention,
        # BIGSERIAL on PostgreSQL; on SQLite the rowid (only INTEGER PRIMARY KEY is one).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            nullable=True,
        ),
        _reference("Mention", "user", "User"),
        _reference("Mention", "group", "Group"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("user", "group", "seq", name=f"unq_{mention.lower()}__user_group_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"idx_{mention.lower()}__group", mention, ["group"])


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
