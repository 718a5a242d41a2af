"""The tables of release 0.1.0, exactly as Pony's `generate_mapping(create_tables=True)` made
them: same names, types, nullability, keys, indexes and foreign keys, on SQLite and on
PostgreSQL (tests/test_schema.py compares them with the release's own database).

A database made by that release has these tables and no version: `models.schema` adopts it
by recording 0001 instead of running this.

Names follow Pony's: tables as the entities on SQLite, lower-cased on PostgreSQL; indexes
`idx_<table>__<column>`; composite unique keys `unq_<table>__<columns>`; foreign keys
`fk_<table>__<column>` on PostgreSQL and unnamed on SQLite (Pony writes them inline there);
primary keys and single-column unique keys left for the database to name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.migrations import is_postgres, table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create(
        "EmailCode",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("wrong_tries", sa.Integer(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("email", "purpose", name="unq_emailcode__email_purpose"),
    )
    _create(
        "User",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("name_key", sa.String(16), nullable=False, unique=True),
        sa.Column("email", sa.String(254), nullable=True, unique=True),
        sa.Column("password_hash", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    _create(
        "Group",
        sa.Column("name", sa.String(64), nullable=False),
        _reference("Group", "owner", "User", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        indexes=["owner"],
    )
    _create(
        "LoginFailure",
        _reference("LoginFailure", "user", "User", nullable=False, ondelete="CASCADE"),
        sa.Column("at", sa.DateTime(), nullable=False),
        indexes=["user"],
    )
    _create(
        "Media",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _reference("Media", "uploader", "User", nullable=True, ondelete="SET NULL"),
        _reference("Media", "avatar_of", "User", nullable=True, ondelete="SET NULL"),
        indexes=["avatar_of", "sha256", "uploader"],
    )
    _create(
        "Membership",
        _reference("Membership", "group", "Group", nullable=False, ondelete="CASCADE"),
        _reference("Membership", "user", "User", nullable=False, ondelete="CASCADE"),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("group", "user", name="unq_membership__group_user"),
        indexes=["user"],
    )
    _create(
        "Message",
        _reference("Message", "group", "Group", nullable=False, ondelete="CASCADE"),
        _reference("Message", "sender", "User", nullable=True, ondelete="SET NULL"),
        sa.Column("kind", sa.String(16), nullable=False),
        _reference("Message", "media", "Media", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        indexes=["group", "media", "sender"],
    )
    _create(
        "Session",
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        _reference("Session", "user", "User", nullable=False, ondelete="CASCADE"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        indexes=["user"],
    )


def downgrade() -> None:
    raise NotImplementedError("Migrations go forward only: restore the backup taken before.")


def _create(entity: str, *items, indexes: list[str] | tuple = ()) -> None:
    """The entity's table with Pony's auto-increment `id` first, then its indexes."""
    name = table(entity)
    op.create_table(
        name,
        # SERIAL on PostgreSQL; on SQLite `INTEGER PRIMARY KEY AUTOINCREMENT`, the rowid,
        # which Pony declares without NOT NULL (a primary key is never null either way).
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=True),
        *items,
        sqlite_autoincrement=True,
    )
    for column in indexes:
        op.create_index(f"idx_{name.lower()}__{column}", name, [column])


def _reference(entity: str, column: str, target: str, nullable: bool, ondelete=None):
    """A column holding the id of a `target` row."""
    name = f"fk_{table(entity).lower()}__{column}" if is_postgres() else None
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{table(target)}.id", name=name, ondelete=ondelete),
        nullable=nullable,
    )
