"""The schema's migrations, run by Alembic from `models.schema` (no alembic.ini needed).

`versions/NNNN_<purpose>.py` holds one change each, written with SQLAlchemy Core and Alembic's
`op` (no models, no autogenerate); revision ids are the numbers "0001", "0002", ... in order.
README.md ("Migrations") says how to add one. What the migrations share lives here.
"""

from __future__ import annotations

from alembic import op


def is_postgres() -> bool:
    """Whether the migration runs on PostgreSQL (otherwise SQLite)."""
    return op.get_bind().dialect.name == "postgresql"


def table(entity: str) -> str:
    """The table Pony maps an entity to: its name on SQLite, lower-cased on PostgreSQL
    (Pony's PostgreSQL provider lower-cases every name)."""
    return entity.lower() if is_postgres() else entity
