"""notices: the indexes the dispatcher reads by, and no index nobody reads

- ``ix_notice_waiting`` becomes (message_id, person_id, release_at): the waiting notices
  (``message_id IS NULL``) in person order, so each compose batch reads the notices of its own
  persons only, not every waiting notice again (at 20,000 schools a morning's 300,000 notices
  were read twenty times over); it also serves every lookup by ``message_id``;
- ``ix_notice_message_id`` goes: the new ``ix_notice_waiting`` starts with it;
- ``ix_notice_person_id`` goes: ``uq_notice_dedupe`` (person_id, dedupe_key) starts with it;
- ``ix_notice_batch`` goes: no statement looks notices up by batch;
- ``ix_message_claim`` becomes (claim_token, person_id): compose links a batch's notices to
  their messages with one join on both, which must not walk each person's history of messages.

Each notice a morning writes now maintains five indexes instead of eight.

Revision ID: 0010_notice_indexes
Revises: 0009_person_links
Create Date: 2026-12-01 00:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_notice_indexes"
down_revision: str | Sequence[str] | None = "0009_person_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_waiting")
        batch_op.drop_index("ix_notice_message_id")
        batch_op.drop_index("ix_notice_person_id")
        batch_op.drop_index("ix_notice_batch")
        batch_op.create_index("ix_notice_waiting", ["message_id", "person_id", "release_at"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_claim")
        batch_op.create_index("ix_message_claim", ["claim_token", "person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_claim")
        batch_op.create_index("ix_message_claim", ["claim_token"], unique=False)
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_waiting")
        batch_op.create_index("ix_notice_batch", ["batch"], unique=False)
        batch_op.create_index("ix_notice_person_id", ["person_id"], unique=False)
        batch_op.create_index("ix_notice_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_notice_waiting", ["message_id", "release_at"], unique=False)
