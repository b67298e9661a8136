"""a morning's cost follows what is due, not the history behind it

- ``occurrence.next_reminder_at`` / ``next_escalation_at``: when the reminder and the escalation
  engines must look at a task again (existing tasks: their ``opens_at`` / ``escalate_at``; the
  first run that reads a task moves them on);
- ``ix_occurrence_remind`` (duty_key, review, next_reminder_at) and ``ix_occurrence_escalation``
  (duty_key, review, next_escalation_at): the waiting tasks with a step or an event due;
- ``ix_occurrence_open`` (duty_key, escalate_at): the open tasks (status);
- ``ix_occurrence_due_at`` in place of ``ix_occurrence_due`` (review, due_at), which no query
  could use for a period's range: the tasks due in a report's period;
- ``ix_escalation_fired_at``: the escalations fired in a day (the daily summary);
- ``ix_message_claim`` (claim_token): the messages of one claim, which compose links its
  notices to and the sender works through, without reading every message ever sent;
- the single-column index on ``occurrence.duty_key`` goes: the new ones start with it;
- ``plan_mark``: the periods of a duty already planned for the organisation as it is, which
  a later run skips.

Revision ID: 0008_history_indexes
Revises: 0007_accounts
Create Date: 2026-11-30 21:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0008_history_indexes"
down_revision: str | Sequence[str] | None = "0007_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_mark",
        sa.Column("duty_key", sa.String(length=80), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("planned_at", models.types.AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("duty_key", "period_key"),
    )
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_reminder_at", models.types.AwareDateTime(), nullable=True))
        batch_op.add_column(sa.Column("next_escalation_at", models.types.AwareDateTime(), nullable=True))
    op.execute("UPDATE occurrence SET next_reminder_at = opens_at, next_escalation_at = escalate_at")
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_occurrence_duty_key")
        batch_op.drop_index("ix_occurrence_due")
        batch_op.create_index("ix_occurrence_remind", ["duty_key", "review", "next_reminder_at"], unique=False)
        batch_op.create_index("ix_occurrence_open", ["duty_key", "escalate_at"], unique=False)
        batch_op.create_index("ix_occurrence_escalation", ["duty_key", "review", "next_escalation_at"], unique=False)
        batch_op.create_index("ix_occurrence_due_at", ["due_at"], unique=False)
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.create_index("ix_escalation_fired_at", ["fired_at"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_claim", ["claim_token"], unique=False)


def downgrade() -> None:
    op.drop_table("plan_mark")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_claim")
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_fired_at")
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_occurrence_due_at")
        batch_op.drop_index("ix_occurrence_remind")
        batch_op.create_index("ix_occurrence_due", ["review", "due_at"], unique=False)
        batch_op.drop_index("ix_occurrence_escalation")
        batch_op.drop_index("ix_occurrence_open")
        batch_op.create_index("ix_occurrence_duty_key", ["duty_key"], unique=False)
        batch_op.drop_column("next_escalation_at")
        batch_op.drop_column("next_reminder_at")
