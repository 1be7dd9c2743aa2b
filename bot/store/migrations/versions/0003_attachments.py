"""Photos customers send from the web chat.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("ticket_no", sa.String(20), nullable=True),
        sa.Column("filename", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        sa.ForeignKeyConstraint(
            ["ticket_no"],
            ["tickets.ticket_no"],
            name="fk_attachments_ticket_no_tickets",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("filename", name="uq_attachments_filename"),
        sa.CheckConstraint("size > 0", name="ck_attachments_size_positive"),
    )
    op.create_index("ix_attachments_sender_id", "attachments", ["sender_id"])
    op.create_index("ix_attachments_ticket_no", "attachments", ["ticket_no"])
    op.create_index("ix_attachments_created_at", "attachments", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_attachments_created_at", table_name="attachments")
    op.drop_index("ix_attachments_ticket_no", table_name="attachments")
    op.drop_index("ix_attachments_sender_id", table_name="attachments")
    op.drop_table("attachments")
