"""Alembic's environment, run by `models.schema`, never by the `alembic` command.

`models.schema` opens the connection, begins the transaction, takes the migration lock and
hands the connection over in `config.attributes["connection"]`; this only runs the
migrations on it. The transaction is the caller's: it commits or rolls back all of them.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("Migrations run through `im-api migrate` (models.schema), online only.")

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
