"""orders

Revision ID: a2
Revises: a1
"""

import sqlalchemy as sa
from alembic import op

revision = "a2"
down_revision = "a1"


def upgrade() -> None:
    op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
                    sa.Column("total_cents", sa.BigInteger, nullable=False))


def downgrade() -> None:
    op.drop_table("orders")
