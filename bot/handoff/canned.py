"""Canned replies (话术库): a searchable library agents answer from, edited by supervisors.

The starting set is `config/canned_replies.yml`; `sync_from_file` copies it into the database
and later refreshes only rows nobody has edited, so a supervisor's wording is never lost.
Deleting hides a reply (soft delete), so the next sync does not bring it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, Extra, Field, ValidationError, constr, root_validator, validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.accounts import acting_agent
from bot.settings import PROJECT_ROOT
from bot.store.db import session_scope
from bot.store.models import CannedReply, utcnow

log = logging.getLogger(__name__)

CANNED_REPLIES_FILE = PROJECT_ROOT / "config" / "canned_replies.yml"
# `updated_by` of rows as seeded: only these are refreshed from the file.
SEED_ACTOR = "seed"
MIN_LIBRARY_SIZE = 37
MAX_TEXT_CHARS = 2000
_LIKE_ESCAPE = "\\"


class CannedReplyError(ValueError):
    """The canned-reply file or an edit breaks a rule (empty text, unknown situation, …)."""


class UnknownCannedReply(LookupError):
    """No canned reply with this id."""


class CannedEntry(BaseModel):
    class Config:
        extra = Extra.forbid

    key: constr(regex=r"^[a-z0-9_]{1,64}$")  # type: ignore[valid-type]
    category: constr(strip_whitespace=True, min_length=1, max_length=50)  # type: ignore[valid-type]
    title: constr(strip_whitespace=True, min_length=1, max_length=100)  # type: ignore[valid-type]
    situation: str | None = None
    text: constr(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)  # type: ignore[valid-type]


class CannedLibrary(BaseModel):
    class Config:
        extra = Extra.forbid

    situations: list[str] = Field(min_items=1)
    replies: list[CannedEntry] = Field(min_items=MIN_LIBRARY_SIZE)

    @validator("replies")
    def _unique_keys(cls, replies: list[CannedEntry]) -> list[CannedEntry]:
        keys = [reply.key for reply in replies]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate keys: {', '.join(duplicates)}")
        return replies

    @root_validator(skip_on_failure=True)
    def _situations_covered(cls, values: dict) -> dict:
        situations = values["situations"]
        used = {reply.situation for reply in values["replies"] if reply.situation is not None}
        unknown = sorted(used - set(situations))
        if unknown:
            raise ValueError(f"replies name unknown situations: {', '.join(unknown)}")
        uncovered = [situation for situation in situations if situation not in used]
        if uncovered:
            raise ValueError(f"no empathetic reply for situations: {', '.join(uncovered)}")
        return values


@dataclass(frozen=True)
class CannedReplyView:
    id: int
    key: str | None
    title: str
    category: str
    situation: str | None
    text: str
    updated_by: str
    updated_at: datetime
    active: bool


@dataclass(frozen=True)
class SyncReport:
    added: int
    refreshed: int
    kept_edited: int


def read_canned_library(path: Path = CANNED_REPLIES_FILE) -> CannedLibrary:
    """Parse and validate the canned-reply file, naming it in any error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CannedLibrary.parse_obj(raw)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise CannedReplyError(f"invalid canned replies {path}:\n{error}") from error


def _view(reply: CannedReply) -> CannedReplyView:
    return CannedReplyView(
        id=reply.id,
        key=reply.key,
        title=reply.title,
        category=reply.category,
        situation=reply.situation,
        text=reply.text,
        updated_by=reply.updated_by,
        updated_at=reply.updated_at,
        active=reply.active,
    )


def _required(value: str, field: str, limit: int) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise CannedReplyError(f"{field} must not be empty")
    if len(cleaned) > limit:
        raise CannedReplyError(f"{field} is longer than {limit} characters")
    return cleaned


def _like_pattern(term: str) -> str:
    escaped = term.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def sync_canned_replies(session: Session, library: CannedLibrary, now: datetime) -> SyncReport:
    """Bring the file's replies into `session` (not committed), sparing edited and deleted rows.

    Rows still as seeded (`updated_by` is SEED_ACTOR) follow the file; any row a supervisor
    touched, including a deletion, is left alone.
    """
    added = refreshed = kept = 0
    existing = {
        reply.key: reply
        for reply in session.execute(
            select(CannedReply).where(CannedReply.key.is_not(None))
        ).scalars()
    }
    for entry in library.replies:
        fields = {
            "title": entry.title,
            "category": entry.category,
            "situation": entry.situation,
            "text": entry.text,
        }
        row = existing.get(entry.key)
        if row is None:
            session.add(
                CannedReply(
                    key=entry.key, updated_by=SEED_ACTOR, updated_at=now, active=True, **fields
                )
            )
            added += 1
        elif row.updated_by != SEED_ACTOR:
            kept += 1
        elif any(getattr(row, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = now
            refreshed += 1
    session.flush()
    return SyncReport(added, refreshed, kept)


class CannedReplies:
    """Search for everyone; create, edit and delete for supervisors and managers."""

    def __init__(
        self, session_factory: sessionmaker, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def search(self, query: str = "", category: str | None = None) -> list[CannedReplyView]:
        """Active replies whose title, text, category or situation contain every word of `query`.

        Plain substring matching, so Chinese needs no word splitting: "退款" finds "退款未到账".
        """
        statement = select(CannedReply).where(CannedReply.active.is_(True))
        if category:
            statement = statement.where(CannedReply.category == category)
        for term in query.split():
            pattern = _like_pattern(term)
            statement = statement.where(
                or_(
                    *(
                        column.ilike(pattern, escape=_LIKE_ESCAPE)
                        for column in (
                            CannedReply.title,
                            CannedReply.text,
                            CannedReply.category,
                            CannedReply.situation,
                        )
                    )
                )
            )
        statement = statement.order_by(CannedReply.category, CannedReply.id)
        with session_scope(self._session_factory) as session:
            return [_view(reply) for reply in session.execute(statement).scalars()]

    def get(self, reply_id: int) -> CannedReplyView:
        with session_scope(self._session_factory) as session:
            return _view(self._load(session, reply_id))

    def create(
        self,
        agent_id: int,
        title: str,
        category: str,
        text: str,
        situation: str | None = None,
    ) -> CannedReplyView:
        """Add a reply (supervisor or manager); raises NotAllowed or CannedReplyError."""
        with session_scope(self._session_factory) as session:
            editor = acting_agent(session, agent_id, "supervisor")
            reply = CannedReply(
                key=None,
                title=_required(title, "title", 100),
                category=_required(category, "category", 50),
                situation=(situation or "").strip() or None,
                text=_required(text, "text", MAX_TEXT_CHARS),
                updated_by=editor.username,
                updated_at=self._clock(),
                active=True,
            )
            session.add(reply)
            session.flush()
            return _view(reply)

    def update(
        self,
        reply_id: int,
        agent_id: int,
        *,
        title: str | None = None,
        category: str | None = None,
        text: str | None = None,
        situation: str | None = None,
    ) -> CannedReplyView:
        """Edit a reply (supervisor or manager); from now on the file no longer refreshes it."""
        with session_scope(self._session_factory) as session:
            editor = acting_agent(session, agent_id, "supervisor")
            reply = self._load(session, reply_id)
            if title is not None:
                reply.title = _required(title, "title", 100)
            if category is not None:
                reply.category = _required(category, "category", 50)
            if text is not None:
                reply.text = _required(text, "text", MAX_TEXT_CHARS)
            if situation is not None:
                reply.situation = situation.strip() or None
            reply.updated_by = editor.username
            reply.updated_at = self._clock()
            session.flush()
            return _view(reply)

    def delete(self, reply_id: int, agent_id: int) -> None:
        """Hide a reply (supervisor or manager); kept in the table so a sync will not revive it."""
        with session_scope(self._session_factory) as session:
            editor = acting_agent(session, agent_id, "supervisor")
            reply = self._load(session, reply_id)
            reply.active = False
            reply.updated_by = editor.username
            reply.updated_at = self._clock()

    def sync_from_file(self, path: Path = CANNED_REPLIES_FILE) -> SyncReport:
        """Add missing replies from the file; refresh unedited ones; keep supervisors' edits."""
        library = read_canned_library(path)
        with session_scope(self._session_factory) as session:
            report = sync_canned_replies(session, library, self._clock())
        log.info("canned replies synced from %s: %s", path, report)
        return report

    @staticmethod
    def _load(session: Session, reply_id: int) -> CannedReply:
        reply = session.get(CannedReply, reply_id)
        if reply is None:
            raise UnknownCannedReply(reply_id)
        return reply
