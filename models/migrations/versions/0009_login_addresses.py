"""Failed passwords counted per account and client address, and the addresses an account
signed in from (models.users): `LoginFailure.address` and the table `KnownAddress`.

`LoginFailure.address` is added nullable: failures recorded before it have no address and
count for their account only (they are gone within the hour anyway). `KnownAddress` is a new
table: one row per account and hashed address, unique together (the target of the upsert a
sign-in makes); the key's index serves lookups by account, so no index on `user` alone, as
Pony maps it. Nothing else changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(table("LoginFailure"), sa.Column("address", sa.String(48), nullable=True))
    name = table("KnownAddress")
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
        sa.Column(
            "user",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey(
                f"{table('User')}.id",
                name=f"fk_{name.lower()}__user" if is_postgres() else None,
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("address", sa.String(48), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user", "address", name=f"unq_{name.lower()}__user_address"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")
