"""a morning's cost follows what is due, not the history behind it

- ``occurrence.next_escalation_at``: when the escalation engine must look at a task again
  (existing tasks: their ``escalate_at``; the first run that reads a task moves it on);
- ``ix_occurrence_open`` (duty_key, escalate_at): the open tasks a duty run reminds;
- ``ix_occurrence_escalation`` (duty_key, review, next_escalation_at): the waiting tasks with an event due;
- ``ix_occurrence_due_at``: the tasks due in a report's period;
- ``ix_escalation_fired_at``: the escalations fired in a day (the daily summary);
- the single-column index on ``occurrence.duty_key`` goes: both new ones start with it.

Revision ID: 0009_history_indexes
Revises: 0006_delivery
Create Date: 2026-11-30 21:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0009_history_indexes"
down_revision: str | Sequence[str] | None = "0006_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_escalation_at", models.types.AwareDateTime(), nullable=True))
    op.execute("UPDATE occurrence SET next_escalation_at = escalate_at")
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_occurrence_duty_key")
        batch_op.create_index("ix_occurrence_open", ["duty_key", "escalate_at"], unique=False)
        batch_op.create_index("ix_occurrence_escalation", ["duty_key", "review", "next_escalation_at"], unique=False)
        batch_op.create_index("ix_occurrence_due_at", ["due_at"], unique=False)
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.create_index("ix_escalation_fired_at", ["fired_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_fired_at")
    with op.batch_alter_table("occurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_occurrence_due_at")
        batch_op.drop_index("ix_occurrence_escalation")
        batch_op.drop_index("ix_occurrence_open")
        batch_op.create_index("ix_occurrence_duty_key", ["duty_key"], unique=False)
        batch_op.drop_column("next_escalation_at")
