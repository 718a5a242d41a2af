"""Ids a busy service outgrows are 64-bit: every table's `id`, its sequence, and the columns
that point at ids.

PostgreSQL: INTEGER becomes BIGINT and each SERIAL's sequence `AS bigint` (its maximum rises
to 2**63 - 1). Each ALTER COLUMN ... TYPE rewrites its table and rebuilds its indexes under
an exclusive lock: on a large database, expect the upgrade to take a while.

SQLite: nothing to do. `INTEGER PRIMARY KEY` is the rowid, already 64-bit, and only that
exact type keeps it so; any INTEGER column stores 64-bit values.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ENTITIES = [
    "User",
    "Session",
    "LoginFailure",
    "EmailCode",
    "Group",
    "Membership",
    "Media",
    "Message",
]
# The columns holding another row's id, by entity.
REFERENCES = {
    "Session": ["user"],
    "LoginFailure": ["user"],
    "Group": ["owner"],
    "Membership": ["group", "user"],
    "Media": ["uploader", "avatar_of"],
    "Message": ["group", "sender", "media"],
}


def upgrade() -> None:
    if not is_postgres():
        return
    for entity in ENTITIES:
        name = table(entity)
        columns = ["id", *REFERENCES.get(entity, [])]
        # One ALTER TABLE per table, so each is rewritten once.
        changes = ", ".join(f'ALTER COLUMN "{column}" TYPE BIGINT' for column in columns)
        op.execute(sa.text(f'ALTER TABLE "{name}" {changes}'))
        op.execute(sa.text(f'ALTER SEQUENCE "{name}_id_seq" AS BIGINT'))


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")
