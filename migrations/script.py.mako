<%!
    FIXED = {
        "import sqlalchemy as sa",
        "from alembic import op",
        "from sqlalchemy.dialects import postgresql",
        "import models.types",
    }
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql  # noqa: F401  (JSONB variants)

import models.types  # noqa: F401  (models.types.AwareDateTime)
% for line in (imports or "").splitlines():
% if line.strip() and line.strip() not in FIXED:
${line}
% endif
% endfor

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
