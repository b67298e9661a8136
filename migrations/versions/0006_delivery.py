"""delivery you can trust: notices released at digest slots, one attempt row per channel call

- ``notice.release_at``: when a notice may be sent (existing rows: their ``created_at``), and
  the index the dispatcher selects released notices by;
- ``message.summary`` (what a channel too small for the body gets) and
  ``message.possible_repeat`` (a dispatcher died with a call of this message in flight);
- ``delivery``: written before each channel call (``ok`` NULL while in flight), with the part
  (an SMS number, masked), the destination (hash of URL and part, for pacing), the claim
  token that guarded it, when it finished, and whether it was interrupted or a possible repeat.

Revision ID: 0006_delivery
Revises: 0005_org_version
Create Date: 2026-11-30 20:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0006_delivery"
down_revision: str | Sequence[str] | None = "0005_org_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_at", models.types.AwareDateTime(), nullable=True))
    op.execute("UPDATE notice SET release_at = created_at")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.alter_column("release_at", existing_type=models.types.AwareDateTime(), nullable=False)
        batch_op.create_index("ix_notice_waiting", ["message_id", "release_at"], unique=False)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("possible_repeat", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("destination", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("finished_at", models.types.AwareDateTime(), nullable=True))
        batch_op.add_column(sa.Column("interrupted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("possible_repeat", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.alter_column("ok", existing_type=sa.Boolean(), nullable=True)
        batch_op.create_index("ix_delivery_destination", ["destination", "at"], unique=False)
    op.execute("UPDATE delivery SET finished_at = at")


def downgrade() -> None:
    op.execute("DELETE FROM delivery WHERE ok IS NULL")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_destination")
        batch_op.alter_column("ok", existing_type=sa.Boolean(), nullable=False)
        for column in ("possible_repeat", "interrupted", "finished_at", "claim_token", "destination", "part"):
            batch_op.drop_column(column)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("possible_repeat")
        batch_op.drop_column("summary")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_waiting")
        batch_op.drop_column("release_at")
