"""dual prevention: risk points and their checks, hazards with their history and files, platform uploads

Every constraint is named explicitly after the convention of 0001_initial.

Revision ID: 0003_hazards
Revises: 0002_sensitive_periods
Create Date: 2026-11-24 10:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql  # noqa: F401  (JSONB variants)

import models.types  # noqa: F401  (models.types.AwareDateTime)

# revision identifiers, used by Alembic.
revision: str = '0003_hazards'
down_revision: str | Sequence[str] | None = '0002_sensitive_periods'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('risk_point',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('measures', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('updated_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['person.id'], name='fk_risk_point_owner_id_person'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_risk_point_unit_id_unit'),
    sa.PrimaryKeyConstraint('id', name='pk_risk_point'),
    sa.UniqueConstraint('unit_id', 'code', name='uq_risk_point_unit_code')
    )
    with op.batch_alter_table('risk_point', schema=None) as batch_op:
        batch_op.create_index('ix_risk_point_level', ['level'], unique=False)
        batch_op.create_index('ix_risk_point_unit_id', ['unit_id'], unique=False)

    op.create_table('hazard',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('occurrence_id', sa.Integer(), nullable=True),
    sa.Column('risk_point_id', sa.Integer(), nullable=True),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('reported_by', sa.String(length=100), nullable=False),
    sa.Column('rectifier_id', sa.Integer(), nullable=False),
    sa.Column('found_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('deadline', models.types.AwareDateTime(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('rectified_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('rectified_by_id', sa.Integer(), nullable=True),
    sa.Column('verified_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('verified_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('closed_by', sa.String(length=100), nullable=True),
    sa.Column('client_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('updated_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['occurrence_id'], ['occurrence.id'], name='fk_hazard_occurrence_id_occurrence'),
    sa.ForeignKeyConstraint(['rectified_by_id'], ['person.id'], name='fk_hazard_rectified_by_id_person'),
    sa.ForeignKeyConstraint(['rectifier_id'], ['person.id'], name='fk_hazard_rectifier_id_person'),
    sa.ForeignKeyConstraint(['reporter_id'], ['person.id'], name='fk_hazard_reporter_id_person'),
    sa.ForeignKeyConstraint(['risk_point_id'], ['risk_point.id'], name='fk_hazard_risk_point_id_risk_point'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_hazard_unit_id_unit'),
    sa.ForeignKeyConstraint(['verified_by_id'], ['person.id'], name='fk_hazard_verified_by_id_person'),
    sa.PrimaryKeyConstraint('id', name='pk_hazard'),
    sa.UniqueConstraint('client_key', name='uq_hazard_client_key')
    )
    with op.batch_alter_table('hazard', schema=None) as batch_op:
        batch_op.create_index('ix_hazard_occurrence_id', ['occurrence_id'], unique=False)
        batch_op.create_index('ix_hazard_rectifier_id', ['rectifier_id'], unique=False)
        batch_op.create_index('ix_hazard_risk_point_id', ['risk_point_id'], unique=False)
        batch_op.create_index('ix_hazard_state', ['state'], unique=False)
        batch_op.create_index('ix_hazard_unit_id', ['unit_id'], unique=False)

    op.create_table('hazard_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hazard_id', sa.Integer(), nullable=False),
    sa.Column('at', models.types.AwareDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=True),
    sa.Column('to_state', sa.String(length=16), nullable=True),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['hazard_id'], ['hazard.id'], name='fk_hazard_event_hazard_id_hazard'),
    sa.PrimaryKeyConstraint('id', name='pk_hazard_event'),
    sa.UniqueConstraint('hazard_id', 'step', name='uq_hazard_event_step')
    )
    with op.batch_alter_table('hazard_event', schema=None) as batch_op:
        batch_op.create_index('ix_hazard_event_hazard_id', ['hazard_id'], unique=False)

    op.create_table('hazard_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hazard_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['hazard_event.id'], name='fk_hazard_file_event_id_hazard_event'),
    sa.ForeignKeyConstraint(['hazard_id'], ['hazard.id'], name='fk_hazard_file_hazard_id_hazard'),
    sa.PrimaryKeyConstraint('id', name='pk_hazard_file')
    )
    with op.batch_alter_table('hazard_file', schema=None) as batch_op:
        batch_op.create_index('ix_hazard_file_event_id', ['event_id'], unique=False)
        batch_op.create_index('ix_hazard_file_hazard_id', ['hazard_id'], unique=False)
        batch_op.create_index('ix_hazard_file_sha256', ['sha256'], unique=False)

    op.create_table('risk_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('risk_point_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('opens_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('due_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('escalate_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('checked_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('checker_id', sa.Integer(), nullable=True),
    sa.Column('checked_by', sa.String(length=100), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('hazard_id', sa.Integer(), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('escalation_seq', sa.Integer(), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['checker_id'], ['person.id'], name='fk_risk_check_checker_id_person'),
    sa.ForeignKeyConstraint(['hazard_id'], ['hazard.id'], name='fk_risk_check_hazard_id_hazard'),
    sa.ForeignKeyConstraint(['risk_point_id'], ['risk_point.id'], name='fk_risk_check_risk_point_id_risk_point'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_risk_check_unit_id_unit'),
    sa.PrimaryKeyConstraint('id', name='pk_risk_check'),
    sa.UniqueConstraint('risk_point_id', 'period_key', name='uq_risk_check_slot')
    )
    with op.batch_alter_table('risk_check', schema=None) as batch_op:
        batch_op.create_index('ix_risk_check_open', ['checked_at', 'due_at'], unique=False)
        batch_op.create_index('ix_risk_check_risk_point_id', ['risk_point_id'], unique=False)
        batch_op.create_index('ix_risk_check_unit_id', ['unit_id'], unique=False)

    op.create_table('platform_upload',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurrence_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('uploaded_on', sa.Date(), nullable=False),
    sa.Column('recorded_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['occurrence_id'], ['occurrence.id'], name='fk_platform_upload_occurrence_id_occurrence'),
    sa.PrimaryKeyConstraint('id', name='pk_platform_upload'),
    sa.UniqueConstraint('occurrence_id', name='uq_platform_upload_occurrence')
    )


def downgrade() -> None:
    op.drop_table('platform_upload')
    with op.batch_alter_table('risk_check', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_check_unit_id')
        batch_op.drop_index('ix_risk_check_risk_point_id')
        batch_op.drop_index('ix_risk_check_open')
    op.drop_table('risk_check')
    with op.batch_alter_table('hazard_file', schema=None) as batch_op:
        batch_op.drop_index('ix_hazard_file_sha256')
        batch_op.drop_index('ix_hazard_file_hazard_id')
        batch_op.drop_index('ix_hazard_file_event_id')
    op.drop_table('hazard_file')
    with op.batch_alter_table('hazard_event', schema=None) as batch_op:
        batch_op.drop_index('ix_hazard_event_hazard_id')
    op.drop_table('hazard_event')
    with op.batch_alter_table('hazard', schema=None) as batch_op:
        batch_op.drop_index('ix_hazard_unit_id')
        batch_op.drop_index('ix_hazard_state')
        batch_op.drop_index('ix_hazard_risk_point_id')
        batch_op.drop_index('ix_hazard_rectifier_id')
        batch_op.drop_index('ix_hazard_occurrence_id')
    op.drop_table('hazard')
    with op.batch_alter_table('risk_point', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_point_unit_id')
        batch_op.drop_index('ix_risk_point_level')
    op.drop_table('risk_point')
