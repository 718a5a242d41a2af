"""Group roles: admins, the announcement, join approval, and requests waiting for it.

- `Membership.role`: "member" for everyone; today's owners stay owners (`Group.owner`), and
  nobody is an admin.
- `Group.join_approval` (false: adding works as before), `announcement`,
  `announcement_by`, `announcement_at` (none), and `state_version` (0): the version of what
  the group's view shows besides its messages, which resuming clients compare.
- New table `JoinRequest`: a member's add waiting for an admin.

No table is rebuilt: the NOT NULL columns come with a default (as Pony maps them, through
`sql_default`), which SQLite can add in place; the others are nullable.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    group, membership, user = table("Group"), table("Membership"), table("User")
    op.add_column(
        group,
        sa.Column("join_approval", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column(group, sa.Column("announcement", sa.String(1000), nullable=True))
    if is_postgres():
        op.add_column(group, sa.Column("announcement_by", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            f"fk_{group}__announcement_by",
            group,
            user,
            ["announcement_by"],
            ["id"],
            ondelete="SET NULL",
        )
    else:
        # SQLite adds a column with its REFERENCES clause in place (Alembic would try to add
        # the constraint apart, which SQLite cannot).
        op.execute(
            sa.text(
                f'ALTER TABLE "{group}" ADD COLUMN "announcement_by" INTEGER '
                f'REFERENCES "{user}" ("id") ON DELETE SET NULL'
            )
        )
    op.create_index(f"idx_{group.lower()}__announcement_by", group, ["announcement_by"])
    op.add_column(group, sa.Column("announcement_at", sa.DateTime(), nullable=True))
    op.add_column(
        group,
        sa.Column("state_version", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        membership,
        sa.Column("role", sa.String(8), nullable=False, server_default=sa.text("'member'")),
    )
    requests = table("JoinRequest")
    op.create_table(
        requests,
        # BIGSERIAL on PostgreSQL; on SQLite the rowid (only INTEGER PRIMARY KEY is one).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            nullable=True,
        ),
        _reference("JoinRequest", "group", "Group"),
        _reference("JoinRequest", "user", "User"),
        _reference("JoinRequest", "added_by", "User"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("group", "user", name=f"unq_{requests.lower()}__group_user"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"idx_{requests.lower()}__added_by", requests, ["added_by"])
    op.create_index(f"idx_{requests.lower()}__user", requests, ["user"])


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
