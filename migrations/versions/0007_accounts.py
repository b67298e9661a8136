"""accounts: reviewers' sign-in, server-side sessions, the login throttle

- ``account``: one per person who reviews (argon2 hash only; ``demo`` accounts sign in only in
  demo mode);
- ``web_session``: a signed-in browser, keyed by the SHA-256 of its cookie's token, revocable;
- ``login_throttle``: failed sign-ins per account name and per client address, and the lock.

Revision ID: 0007_accounts
Revises: 0006_delivery
Create Date: 2026-11-30 22:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0007_accounts"
down_revision: str | Sequence[str] | None = "0006_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('locked_until', models.types.AwareDateTime(), nullable=True),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_login_throttle'))
    )
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('demo', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('password_changed_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('last_login_at', models.types.AwareDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_account_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('login', name=op.f('uq_account_login')),
    sa.UniqueConstraint('person_id', name=op.f('uq_account_person_id'))
    )
    op.create_table('web_session',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('last_seen_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('expires_at', models.types.AwareDateTime(), nullable=False),
    sa.Column('revoked_at', models.types.AwareDateTime(), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_web_session_account_id_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_session'))
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_session_account_id'), ['account_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_session_account_id'))

    op.drop_table('web_session')
    op.drop_table('account')
    op.drop_table('login_throttle')
