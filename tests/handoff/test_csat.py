"""CSAT answers: 1..5 stars and a comment, tied to the chat they rate."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from bot.handoff.csat import CsatError, CsatService
from bot.handoff.service import HandoffService, UnknownHandoff
from tests.handoff.conftest import Clock, Team


@pytest.fixture
def csat(sessions: sessionmaker, clock: Clock) -> CsatService:
    return CsatService(sessions, clock)


def test_answers_are_stored_with_the_chat_channel(
    csat: CsatService, handoffs: HandoffService, online: Team, clock: Clock
) -> None:
    chat = handoffs.request("wx-1", "wechat", "request_human", [], 2).handoff_id
    handoffs.claim(chat, online.agent1.id)
    handoffs.close(chat, online.agent1.id)
    answer = csat.record("wx-1", "5", " 很耐心，谢谢 ", handoff_id=chat)
    assert (answer.score, answer.comment, answer.channel, answer.created_at) == (
        5,
        "很耐心，谢谢",
        "wechat",
        clock.now,
    )
    csat.record("web-9", 4, channel="webchat")
    assert csat.summary().responses == 2
    assert csat.summary().average == 4.5
    assert csat.summary(since=clock.advance(minutes=1)).responses == 0


@pytest.mark.parametrize("score", [0, 6, "五", "4.5", "", None, -1])
def test_scores_outside_one_to_five_are_refused(csat: CsatService, score) -> None:
    with pytest.raises(CsatError):
        csat.record("web-1", score)
    assert csat.summary().responses == 0


def test_answer_must_match_the_chat(
    csat: CsatService, handoffs: HandoffService, online: Team
) -> None:
    chat = handoffs.request("web-1", "webchat", "request_human", [], 2).handoff_id
    with pytest.raises(CsatError):
        csat.record("someone-else", 3, handoff_id=chat)
    with pytest.raises(UnknownHandoff):
        csat.record("web-1", 3, handoff_id=999_999)
    with pytest.raises(CsatError):
        csat.record("web-1", 3, comment="长" * 1001)
