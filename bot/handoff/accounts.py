"""Agent accounts for the console: argon2 password hashes, login sessions, presence, throttling.

Only hashes of session tokens are stored, so reading the table does not let anyone log in.
Presence is "a console session seen within the policy's timeout"; the handoff service uses it
to decide between queueing a chat and promising a call-back.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.policy import EscalationPolicy, load_escalation_policy
from bot.store.db import session_scope
from bot.store.models import AGENT_ROLES, Agent, AgentSession, LoginFailure, utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MIN_PASSWORD_LENGTH = 8
MAX_USERNAME_LENGTH = 64
# Ranks for "at least this role" checks: agent < supervisor < manager.
ROLE_RANK = {role: rank for rank, role in enumerate(AGENT_ROLES)}
SUPERVISOR_ROLES = ("supervisor", "manager")


class AccountError(ValueError):
    """A request about accounts that cannot be honoured (bad role, weak password, …)."""


class AgentExists(AccountError):
    """The username is taken."""


class UnknownAgent(LookupError):
    """No agent with this id or username."""


class NotAllowed(Exception):
    """The agent's role or relation to the chat does not permit this."""


class LoginThrottled(Exception):
    """Too many failed logins for this username recently; try again later."""


@dataclass(frozen=True)
class AgentView:
    id: int
    username: str
    display_name: str
    role: str
    active: bool

    def has_role(self, minimum: str) -> bool:
        """Whether this agent's role is `minimum` or higher."""
        return has_role(self.role, minimum)

    @property
    def is_supervisor(self) -> bool:
        return self.role in SUPERVISOR_ROLES


@dataclass(frozen=True)
class SessionView:
    """A live console session, as the console needs it for each request."""

    agent: AgentView
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def has_role(role: str, minimum: str) -> bool:
    """Whether `role` is `minimum` or higher (agent < supervisor < manager)."""
    return ROLE_RANK[role] >= ROLE_RANK[minimum]


def agent_view(agent: Agent) -> AgentView:
    return AgentView(agent.id, agent.username, agent.display_name, agent.role, agent.active)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def online_agent_ids(session: Session, now: datetime, timeout: timedelta) -> set[int]:
    """Active agents whose console was seen within `timeout` before `now`."""
    return set(
        session.execute(
            select(AgentSession.agent_id)
            .join(Agent, Agent.id == AgentSession.agent_id)
            .where(
                Agent.active.is_(True),
                AgentSession.last_seen_at >= now - timeout,
                AgentSession.expires_at > now,
            )
            .distinct()
        ).scalars()
    )


def acting_agent(session: Session, agent_id: int, minimum_role: str = "agent") -> Agent:
    """The active agent `agent_id` with at least `minimum_role`; raises NotAllowed otherwise."""
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active:
        raise NotAllowed(f"no active agent {agent_id}")
    if not has_role(agent.role, minimum_role):
        raise NotAllowed(f"this needs a {minimum_role} or higher, not a {agent.role}")
    return agent


def _check_role(role: str) -> str:
    if role not in AGENT_ROLES:
        raise AccountError(f"unknown role {role!r} (use {', '.join(AGENT_ROLES)})")
    return role


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _normalise_username(username: str) -> str:
    return username.strip().lower()


class AgentAccounts:
    """Create and manage agents, check passwords, and keep console sessions."""

    def __init__(
        self,
        session_factory: sessionmaker,
        policy: EscalationPolicy | None = None,
        clock: Clock = utcnow,
        hasher: PasswordHasher | None = None,
    ) -> None:
        """`hasher` defaults to argon2id with the library's recommended parameters."""
        self._session_factory = session_factory
        self._policy = policy or load_escalation_policy()
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        self._unknown_user_hash: str | None = None

    def _hash_for_unknown_user(self) -> str:
        """Verified against when the username is unknown, so both failures cost the same."""
        if self._unknown_user_hash is None:
            self._unknown_user_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._unknown_user_hash

    # --- accounts

    def create_agent(self, username: str, display_name: str, role: str, password: str) -> AgentView:
        """Add an agent; raises AgentExists or AccountError."""
        name = _normalise_username(username)
        if not name or len(name) > MAX_USERNAME_LENGTH or not name.isprintable() or " " in name:
            raise AccountError(f"invalid username {username!r}")
        if not display_name.strip():
            raise AccountError("a display name is needed")
        agent = Agent(
            username=name,
            display_name=display_name.strip(),
            role=_check_role(role),
            password_hash=self._hasher.hash(_check_password(password)),
            active=True,
            created_at=self._clock(),
        )
        try:
            with session_scope(self._session_factory) as session:
                session.add(agent)
                session.flush()
                view = agent_view(agent)
        except IntegrityError as error:
            raise AgentExists(f"agent {name!r} already exists") from error
        log.info("created %s account %s", role, name)
        return view

    def update_agent(
        self,
        username: str,
        *,
        display_name: str | None = None,
        role: str | None = None,
        active: bool | None = None,
    ) -> AgentView:
        """Change name, role or active flag; deactivating ends the agent's sessions."""
        with session_scope(self._session_factory) as session:
            agent = self._by_username(session, username)
            if display_name is not None:
                if not display_name.strip():
                    raise AccountError("a display name is needed")
                agent.display_name = display_name.strip()
            if role is not None:
                agent.role = _check_role(role)
            if active is not None:
                agent.active = active
                if not active:
                    session.execute(delete(AgentSession).where(AgentSession.agent_id == agent.id))
            session.flush()
            return agent_view(agent)

    def set_password(self, username: str, password: str) -> None:
        """Replace the password and end every session of the agent."""
        with session_scope(self._session_factory) as session:
            agent = self._by_username(session, username)
            agent.password_hash = self._hasher.hash(_check_password(password))
            session.execute(delete(AgentSession).where(AgentSession.agent_id == agent.id))

    def get(self, agent_id: int) -> AgentView:
        """The agent with this id; raises UnknownAgent."""
        with session_scope(self._session_factory) as session:
            agent = session.get(Agent, agent_id)
            if agent is None:
                raise UnknownAgent(agent_id)
            return agent_view(agent)

    def by_username(self, username: str) -> AgentView:
        with session_scope(self._session_factory) as session:
            return agent_view(self._by_username(session, username))

    def list_agents(self, include_inactive: bool = True) -> list[AgentView]:
        """Everyone, agents first, then supervisors and managers, by username."""
        statement = select(Agent)
        if not include_inactive:
            statement = statement.where(Agent.active.is_(True))
        with session_scope(self._session_factory) as session:
            agents = [agent_view(agent) for agent in session.execute(statement).scalars()]
        return sorted(agents, key=lambda agent: (ROLE_RANK[agent.role], agent.username))

    # --- logins

    def authenticate(self, username: str, password: str) -> AgentView | None:
        """The agent when the password matches, else None (same cost for unknown users).

        Raises LoginThrottled after too many recent failures for the username, before even
        checking the password, so guessing stays slow.
        """
        name = _normalise_username(username)[:MAX_USERNAME_LENGTH]
        now = self._clock()
        settings = self._policy.console
        with session_scope(self._session_factory) as session:
            window_start = now - timedelta(minutes=settings.login_failure_window_minutes)
            recent_failures = session.execute(
                select(func.count(LoginFailure.id)).where(
                    LoginFailure.username == name, LoginFailure.created_at > window_start
                )
            ).scalar_one()
            if recent_failures >= settings.login_failure_limit:
                raise LoginThrottled(name)
            agent = session.execute(
                select(Agent).where(Agent.username == name)
            ).scalar_one_or_none()
            stored_hash = self._hash_for_unknown_user() if agent is None else agent.password_hash
            try:
                verified = self._hasher.verify(stored_hash, password)
            except (VerificationError, InvalidHashError):
                verified = False
            if not verified or agent is None or not agent.active:
                session.add(LoginFailure(username=name, created_at=now))
                return None
            if self._hasher.check_needs_rehash(agent.password_hash):
                agent.password_hash = self._hasher.hash(password)
            session.execute(delete(LoginFailure).where(LoginFailure.username == name))
            return agent_view(agent)

    def open_session(self, agent_id: int) -> tuple[str, str]:
        """A new session for the agent: (cookie token, CSRF token)."""
        token = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        now = self._clock()
        with session_scope(self._session_factory) as session:
            session.add(
                AgentSession(
                    token_hash=hash_token(token),
                    agent_id=agent_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(hours=self._policy.console.session_hours),
                )
            )
        return token, csrf_token

    def session_for(self, token: str) -> SessionView | None:
        """The live session of this cookie token, or None (unknown, expired, agent disabled)."""
        if not token:
            return None
        now = self._clock()
        with session_scope(self._session_factory) as session:
            row = session.execute(
                select(AgentSession, Agent)
                .join(Agent, Agent.id == AgentSession.agent_id)
                .where(AgentSession.token_hash == hash_token(token))
            ).one_or_none()
            if row is None:
                return None
            agent_session, agent = row
            if agent_session.expires_at <= now or not agent.active:
                return None
            return SessionView(
                agent=agent_view(agent),
                csrf_token=agent_session.csrf_token,
                created_at=agent_session.created_at,
                last_seen_at=agent_session.last_seen_at,
                expires_at=agent_session.expires_at,
            )

    def touch(self, token: str) -> bool:
        """Mark the session as seen now (presence); False when it is gone or expired."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            result = session.execute(
                update(AgentSession)
                .where(AgentSession.token_hash == hash_token(token), AgentSession.expires_at > now)
                .values(last_seen_at=now)
            )
            return result.rowcount == 1

    def close_session(self, token: str) -> None:
        """Log out: the token stops working at once."""
        with session_scope(self._session_factory) as session:
            session.execute(
                delete(AgentSession).where(AgentSession.token_hash == hash_token(token))
            )

    def online_agents(self, now: datetime | None = None) -> list[AgentView]:
        """Agents whose console was seen within the presence timeout."""
        moment = now or self._clock()
        with session_scope(self._session_factory) as session:
            ids = online_agent_ids(session, moment, self._policy.presence_timeout)
            agents = session.execute(select(Agent).where(Agent.id.in_(ids))).scalars()
            return sorted((agent_view(agent) for agent in agents), key=lambda a: a.username)

    def purge_expired(self) -> int:
        """Delete expired sessions and old login failures; returns the sessions removed."""
        now = self._clock()
        window = timedelta(minutes=self._policy.console.login_failure_window_minutes)
        with session_scope(self._session_factory) as session:
            removed = session.execute(
                delete(AgentSession).where(AgentSession.expires_at <= now)
            ).rowcount
            session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - window))
        return removed

    @staticmethod
    def _by_username(session: Session, username: str) -> Agent:
        name = _normalise_username(username)
        agent = session.execute(select(Agent).where(Agent.username == name)).scalar_one_or_none()
        if agent is None:
            raise UnknownAgent(name)
        return agent
