"""events

Revision ID: b1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "b1"
down_revision = None


def upgrade() -> None:
    op.create_table("events", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
                    sa.Column("what", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("events")
