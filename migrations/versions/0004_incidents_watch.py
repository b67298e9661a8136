"""incident clock and holiday watch: incident, watch_period, watch_roster, watch_report

Written by hand after the models (models/incident.py, models/watch.py); every constraint is
named after the convention of 0001_initial.

Revision ID: 0004_incidents_watch
Revises: 0003_hazards
Create Date: 2026-11-23 14:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql  # noqa: F401  (JSONB variants)

import models.types  # noqa: F401  (models.types.AwareDateTime)

# revision identifiers, used by Alembic.
revision: str = '0004_incidents_watch'
down_revision: str | Sequence[str] | None = '0003_hazards'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('duty_key', sa.String(length=80), nullable=False),
    sa.Column('jurisdiction', sa.String(length=64), nullable=False),
    sa.Column('phone_due_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('written_due_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('phone_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('phone_by', sa.String(length=100), nullable=True),
    sa.Column('written_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('written_by', sa.String(length=100), nullable=True),
    sa.Column('phone_occurrence_id', sa.Integer(), nullable=True),
    sa.Column('written_occurrence_id', sa.Integer(), nullable=True),
    sa.Column('registered_by', sa.String(length=100), nullable=False),
    sa.Column('registered_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['duty_key'], ['duty.key'], name='fk_incident_duty_key_duty'),
    sa.ForeignKeyConstraint(['phone_occurrence_id'], ['occurrence.id'], name='fk_incident_phone_occurrence_id_occurrence'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_incident_unit_id_unit'),
    sa.ForeignKeyConstraint(['written_occurrence_id'], ['occurrence.id'], name='fk_incident_written_occurrence_id_occurrence'),
    sa.PrimaryKeyConstraint('id', name='pk_incident'),
    sa.UniqueConstraint('unit_id', 'occurred_at', 'category', name='uq_incident_event')
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index('ix_incident_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index('ix_incident_unit_id', ['unit_id'], unique=False)

    op.create_table('watch_period',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('cancelled_at', models.types.AwareDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name='pk_watch_period'),
    sa.UniqueConstraint('key', name='uq_watch_period_key')
    )

    op.create_table('watch_roster',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('entries', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('filed_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('updated_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['period_id'], ['watch_period.id'], name='fk_watch_roster_period_id_watch_period'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_watch_roster_unit_id_unit'),
    sa.PrimaryKeyConstraint('id', name='pk_watch_roster'),
    sa.UniqueConstraint('period_id', 'unit_id', name='uq_watch_roster_period_unit')
    )
    with op.batch_alter_table('watch_roster', schema=None) as batch_op:
        batch_op.create_index('ix_watch_roster_period_id', ['period_id'], unique=False)
        batch_op.create_index('ix_watch_roster_unit_id', ['unit_id'], unique=False)

    op.create_table('watch_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('filed_by', sa.String(length=100), nullable=False),
    sa.Column('filed_at', models.types.AwareDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], name='fk_watch_report_incident_id_incident'),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name='fk_watch_report_unit_id_unit'),
    sa.PrimaryKeyConstraint('id', name='pk_watch_report'),
    sa.UniqueConstraint('unit_id', 'day', name='uq_watch_report_unit_day')
    )
    with op.batch_alter_table('watch_report', schema=None) as batch_op:
        batch_op.create_index('ix_watch_report_day', ['day'], unique=False)
        batch_op.create_index('ix_watch_report_incident_id', ['incident_id'], unique=False)
        batch_op.create_index('ix_watch_report_unit_id', ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('watch_report', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_report_unit_id')
        batch_op.drop_index('ix_watch_report_incident_id')
        batch_op.drop_index('ix_watch_report_day')
    op.drop_table('watch_report')

    with op.batch_alter_table('watch_roster', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_roster_unit_id')
        batch_op.drop_index('ix_watch_roster_period_id')
    op.drop_table('watch_roster')

    op.drop_table('watch_period')

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_unit_id')
        batch_op.drop_index('ix_incident_occurred_at')
    op.drop_table('incident')
