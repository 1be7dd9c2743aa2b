"""Human handoff: agents and console sessions, the handoff queue and its audit trail, canned
replies, compensations and CSAT responses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the vocabularies at this revision: later model changes need a new migration.
AGENT_ROLES = ("agent", "supervisor", "manager")
HANDOFF_STATUSES = ("waiting", "active", "closed", "handed_back", "callback")
PENDING_HANDOFF = "status IN ('waiting', 'active') OR (status = 'callback' AND ended_at IS NULL)"
HANDOFF_EVENT_KINDS = (
    "queued",
    "callback",
    "claimed",
    "transferred",
    "reply",
    "ticket",
    "handed_back",
    "closed",
    "compensation",
)
COMPENSATION_STATUSES = ("granted", "pending", "approved", "rejected")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("username", name="uq_agents_username"),
        sa.CheckConstraint(_one_of("role", AGENT_ROLES), name="ck_agents_role"),
    )
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_sessions"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name="fk_agent_sessions_agent_id_agents",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_agent_sessions_token_hash"),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    op.create_index("ix_agent_sessions_last_seen_at", "agent_sessions", ["last_seen_at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_username", "login_failures", ["username"])
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("ticket_no", sa.String(20), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("callback_due", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_handoffs_customer_id_customers",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_no"],
            ["tickets.ticket_no"],
            name="fk_handoffs_ticket_no_tickets",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_handoffs_agent_id_agents", ondelete="SET NULL"
        ),
        sa.CheckConstraint(_one_of("status", HANDOFF_STATUSES), name="ck_handoffs_status"),
    )
    op.create_index("ix_handoffs_sender_id", "handoffs", ["sender_id"])
    op.create_index("ix_handoffs_status", "handoffs", ["status"])
    op.create_index("ix_handoffs_customer_id", "handoffs", ["customer_id"])
    op.create_index("ix_handoffs_agent_id", "handoffs", ["agent_id"])
    op.create_index("ix_handoffs_updated_at", "handoffs", ["updated_at"])
    # One pending handoff (queued, with an agent, or a call-back owed) per conversation, even
    # when two processes escalate it at once.
    op.create_index(
        "uq_handoffs_pending_sender_id",
        "handoffs",
        ["sender_id"],
        unique=True,
        sqlite_where=sa.text(PENDING_HANDOFF),
        postgresql_where=sa.text(PENDING_HANDOFF),
    )
    op.create_table(
        "handoff_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_handoff_events"),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name="fk_handoff_events_handoff_id_handoffs",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(_one_of("kind", HANDOFF_EVENT_KINDS), name="ck_handoff_events_kind"),
    )
    op.create_index("ix_handoff_events_handoff_id", "handoff_events", ["handoff_id"])
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("situation", sa.String(50), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_replies"),
        sa.UniqueConstraint("key", name="uq_canned_replies_key"),
    )
    op.create_index("ix_canned_replies_category", "canned_replies", ["category"])
    op.create_table(
        "compensations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_no", sa.String(20), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_compensations"),
        sa.ForeignKeyConstraint(
            ["ticket_no"],
            ["tickets.ticket_no"],
            name="fk_compensations_ticket_no_tickets",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name="fk_compensations_handoff_id_handoffs",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            _one_of("status", COMPENSATION_STATUSES), name="ck_compensations_status"
        ),
        sa.CheckConstraint("amount > 0", name="ck_compensations_amount_positive"),
    )
    op.create_index("ix_compensations_ticket_no", "compensations", ["ticket_no"])
    op.create_index("ix_compensations_handoff_id", "compensations", ["handoff_id"])
    op.create_index("ix_compensations_status", "compensations", ["status"])
    op.create_table(
        "csat_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_csat_responses"),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name="fk_csat_responses_handoff_id_handoffs",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_csat_responses_score_range"),
    )
    op.create_index("ix_csat_responses_handoff_id", "csat_responses", ["handoff_id"])
    op.create_index("ix_csat_responses_sender_id", "csat_responses", ["sender_id"])
    op.create_index("ix_csat_responses_created_at", "csat_responses", ["created_at"])


def downgrade() -> None:
    for table in (
        "csat_responses",
        "compensations",
        "canned_replies",
        "handoff_events",
        "handoffs",
        "login_failures",
        "agent_sessions",
        "agents",
    ):
        op.drop_table(table)
