"""a person's own links: the version every page and calendar link of theirs is signed with

``person_link``: one row per person whose links were revoked at least once; revoking raises
``version``, and a link signed with an older version is refused.

Revision ID: 0009_person_links
Revises: 0008_history_indexes
Create Date: 2026-11-30 22:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0009_person_links"
down_revision: str | Sequence[str] | None = "0008_history_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_link",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", models.types.AwareDateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_person_link_person_id_person")),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_person_link")),
    )


def downgrade() -> None:
    op.drop_table("person_link")
