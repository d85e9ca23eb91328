"""customers

Revision ID: a1
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None


def upgrade() -> None:
    op.create_table("customers", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("customers")
