"""Customer satisfaction (CSAT) after a chat: five stars and one open comment.

The survey texts are customer texts (domain.yml); this module only validates and stores the
answers, and computes the average the service managers track (target 4.8 / 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from bot.handoff.service import UnknownHandoff
from bot.store.db import session_scope
from bot.store.models import CSAT_MAX_SCORE, CSAT_MIN_SCORE, CsatResponse, Handoff, utcnow

MAX_COMMENT_CHARS = 1000


class CsatError(ValueError):
    """An answer that cannot be stored (score outside 1..5, comment too long)."""


@dataclass(frozen=True)
class CsatView:
    id: int
    handoff_id: int | None
    sender_id: str
    channel: str
    score: int
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class CsatSummary:
    responses: int
    average: float | None


def parse_score(raw: int | str) -> int:
    """A whole number of stars from 1 to 5 (digits in text are accepted: "5", " 4 ")."""
    try:
        score = int(str(raw).strip())
    except ValueError as error:
        raise CsatError(f"not a score: {raw!r}") from error
    if not CSAT_MIN_SCORE <= score <= CSAT_MAX_SCORE:
        raise CsatError(f"scores are whole numbers {CSAT_MIN_SCORE}..{CSAT_MAX_SCORE}")
    return score


class CsatService:
    """Store and summarise CSAT answers."""

    def __init__(
        self, session_factory: sessionmaker, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def record(
        self,
        sender_id: str,
        score: int | str,
        comment: str = "",
        handoff_id: int | None = None,
        channel: str | None = None,
    ) -> CsatView:
        """Store one answer; the channel defaults to the handoff's. Raises CsatError."""
        stars = parse_score(score)
        text = (comment or "").strip()
        if len(text) > MAX_COMMENT_CHARS:
            raise CsatError(f"comments are at most {MAX_COMMENT_CHARS} characters")
        if not sender_id:
            raise CsatError("a sender id is needed")
        with session_scope(self._session_factory) as session:
            if handoff_id is not None:
                handoff = session.get(Handoff, handoff_id)
                if handoff is None:
                    raise UnknownHandoff(handoff_id)
                if handoff.sender_id != sender_id:
                    raise CsatError(f"handoff {handoff_id} belongs to another conversation")
                channel = channel or handoff.channel
            row = CsatResponse(
                handoff_id=handoff_id,
                sender_id=sender_id,
                channel=channel or "unknown",
                score=stars,
                comment=text,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return CsatView(
                row.id,
                row.handoff_id,
                row.sender_id,
                row.channel,
                row.score,
                row.comment,
                row.created_at,
            )

    def summary(self, since: datetime | None = None) -> CsatSummary:
        """How many answers and their average score (None without answers)."""
        statement = select(func.count(CsatResponse.id), func.avg(CsatResponse.score))
        if since is not None:
            statement = statement.where(CsatResponse.created_at >= since)
        with session_scope(self._session_factory) as session:
            count, average = session.execute(statement).one()
        return CsatSummary(count, None if average is None else round(float(average), 2))
