"""Knowledge-base search log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_searches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sender_id", sa.String(128)),
        sa.Column("query", sa.String(500), nullable=False),
        sa.Column("normalised_query", sa.String(500), nullable=False),
        sa.Column("hits", sa.JSON(), nullable=False),
        sa.Column("top_article", sa.String(100)),
        sa.Column("top_score", sa.Float()),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("helpful", sa.Boolean()),
        sa.PrimaryKeyConstraint("id", name="pk_kb_searches"),
    )
    op.create_index("ix_kb_searches_created_at", "kb_searches", ["created_at"])
    op.create_index("ix_kb_searches_top_article", "kb_searches", ["top_article"])


def downgrade() -> None:
    op.drop_index("ix_kb_searches_top_article", table_name="kb_searches")
    op.drop_index("ix_kb_searches_created_at", table_name="kb_searches")
    op.drop_table("kb_searches")
