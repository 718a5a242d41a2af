"""The schema's migrations, run by Alembic from `models.schema` (no alembic.ini needed).

`versions/NNNN_<purpose>.py` holds one change each, written with SQLAlchemy Core and Alembic's
`op` (no models, no autogenerate); revision ids are the numbers "0001", "0002", ... in order.
README.md ("Migrations") says how to add one. What the migrations share lives here.
"""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from alembic import op


def is_postgres() -> bool:
    """Whether the migration runs on PostgreSQL (otherwise SQLite)."""
    return op.get_bind().dialect.name == "postgresql"


def table(entity: str) -> str:
    """The table Pony maps an entity to: its name on SQLite, lower-cased on PostgreSQL
    (Pony's PostgreSQL provider lower-cases every name)."""
    return entity.lower() if is_postgres() else entity


@contextlib.contextmanager
def keeping_id_sequence(entity: str):
    """Around the rebuild of an entity's table on SQLite (Alembic's batch mode, or by hand):
    its AUTOINCREMENT counter, which dropping the old table deletes and copying the rows
    sets back only to the highest id left, comes back as it was, so the id of a row deleted
    before the upgrade is never given again. Nothing to do on PostgreSQL (its sequence
    stays)."""
    if is_postgres():
        yield
        return
    name = table(entity)
    connection = op.get_bind()
    query = sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name")
    highest = connection.execute(query, {"name": name}).scalar()
    yield
    if highest is not None:
        connection.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name"),
            {"seq": highest, "name": name},
        )
