"""The migration files, in order; Alembic loads them by path (their names start with a digit)."""
