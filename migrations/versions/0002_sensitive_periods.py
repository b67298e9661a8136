"""sensitive periods

Revision ID: 0002_sensitive_periods
Revises: 0001_initial
Create Date: 2026-11-23 09:42:59.136217

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql  # noqa: F401  (JSONB variants)

import models.types  # noqa: F401  (models.types.AwareDateTime)

# revision identifiers, used by Alembic.
revision: str = '0002_sensitive_periods'
down_revision: str | Sequence[str] | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sensitive_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('scope', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('duties', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('cancelled_at', models.types.AwareDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_sensitive_period'),
    sa.UniqueConstraint('name', 'starts_on', 'ends_on', name='uq_sensitive_period_name')
    )
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_occurrence_sensitive_period_id_sensitive_period', 'sensitive_period', ['sensitive_period_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.drop_constraint('fk_occurrence_sensitive_period_id_sensitive_period', type_='foreignkey')

    op.drop_table('sensitive_period')
