"""org_version: a token the database changes on every change to unit, person or role

Processes cache their organisation snapshot (``pingan.org.snapshot``) until this row moves;
triggers keep it honest whoever writes the organisation (an import, the demo, SQL by hand).

Revision ID: 0005_org_version
Revises: 0004_incidents_watch
Create Date: 2026-11-30 18:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_org_version"
down_revision: str | Sequence[str] | None = "0004_incidents_watch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("unit", "person", "role")
# A random token rather than a counter: a bump rolled back and another committed never give the
# same value, so a snapshot cached inside a transaction that rolled back is never reused.
BUMP = {
    "sqlite": "UPDATE org_version SET version = random() WHERE id = 1",
    "postgresql": "UPDATE org_version SET version = (random() * 9.2e18)::bigint WHERE id = 1",
}


def upgrade() -> None:
    op.create_table(
        "org_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_org_version"),
    )
    op.execute("INSERT INTO org_version (id, version) VALUES (1, 0)")
    if op.get_context().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_{event.lower()}_org_version AFTER {event} ON {table} "
                           f"BEGIN {BUMP['sqlite']}; END;")
    else:
        op.execute(f"CREATE FUNCTION bump_org_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {BUMP['postgresql']}; RETURN NULL; END; $$")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_org_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION bump_org_version()")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_org_version")
    else:
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_org_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_org_version()")
    op.drop_table("org_version")
