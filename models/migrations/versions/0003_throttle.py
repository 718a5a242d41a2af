"""The counts of the abuse limits (`models.throttle`): one row per limit, hashed key and
fixed window (unique together: the target of the upsert that raises the count by one);
`expires` (seconds since the epoch) lets finished windows be deleted.

A new table: nothing of the earlier ones changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    name = table("Throttle")
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
        sa.Column("bucket", sa.String(80), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("bucket", "slot", name=f"unq_{name.lower()}__bucket_slot"),
        sqlite_autoincrement=True,
    )
    op.create_index(f"idx_{name.lower()}__expires", name, ["expires"])


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")
