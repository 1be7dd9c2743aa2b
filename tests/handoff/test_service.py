"""The handoff queue on both backends: queueing or call-back, priority, ownership, audit."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.handoff.accounts import AgentAccounts
from bot.handoff.service import (
    AgentOffline,
    AlreadyClaimed,
    HandoffError,
    HandoffService,
    NotAllowed,
    UnknownHandoff,
)
from bot.services.tickets import TicketService, UnknownTicket
from bot.store.models import Handoff
from tests.handoff.conftest import SHANGHAI, WEDNESDAY_NOON, Clock, Team, add_customer


def escalate(handoffs: HandoffService, sender: str, severity: int = 2, **kwargs):
    return handoffs.request(
        sender, "webchat", "request_human", ["request_person"], severity, **kwargs
    )


def test_with_an_agent_online_the_chat_is_queued(handoffs: HandoffService, online: Team) -> None:
    outcome = escalate(handoffs, "web-1")
    assert outcome.queued and outcome.created
    assert (outcome.status, outcome.position, outcome.agents_online) == ("waiting", 1, 1)
    assert outcome.estimated_wait_minutes >= 1
    assert outcome.callback_due is None
    view = handoffs.open_for_sender("web-1")
    assert view is not None and view.id == outcome.handoff_id and view.is_open
    assert [event.kind for event in handoffs.events(outcome.handoff_id)] == ["queued"]


def test_repeated_request_returns_the_same_handoff(handoffs: HandoffService, online: Team) -> None:
    first = escalate(handoffs, "web-1")
    again = handoffs.request("web-1", "webchat", "complaint", ["complaint"], 3)
    assert again.handoff_id == first.handoff_id
    assert not again.created
    assert len(handoffs.queue()) == 1


def test_nobody_online_promises_a_call_back_within_the_first_response_sla(
    handoffs: HandoffService, team: Team, sessions: sessionmaker
) -> None:
    normal = escalate(handoffs, "web-1")
    assert not normal.queued
    assert normal.status == "callback"
    assert normal.callback_due == WEDNESDAY_NOON + timedelta(minutes=5)
    vip_id = add_customer(sessions, "王女士", "13900000001", "vip")
    vip = escalate(handoffs, "web-2", customer_id=vip_id)
    assert vip.callback_due == WEDNESDAY_NOON + timedelta(minutes=2.5)  # VIP: half the time
    assert handoffs.open_for_sender("web-1") is None  # the bot keeps talking
    assert [view.sender_id for view in handoffs.callbacks()] == ["web-2", "web-1"]
    assert escalate(handoffs, "web-1").handoff_id == normal.handoff_id  # promise still stands


def test_outside_business_hours_the_call_back_counts_from_the_next_opening(
    handoffs: HandoffService, online: Team, clock: Clock, accounts: AgentAccounts
) -> None:
    clock.now = datetime(2026, 11, 25, 22, 0, tzinfo=SHANGHAI)
    accounts.open_session(online.agent2.id)  # online, but the service is closed
    outcome = escalate(handoffs, "web-1")
    assert outcome.status == "callback"
    assert outcome.callback_due == datetime(2026, 11, 26, 9, 5, tzinfo=SHANGHAI)


def test_an_owed_call_back_joins_the_queue_once_someone_is_online(
    handoffs: HandoffService, accounts: AgentAccounts, team: Team
) -> None:
    callback = escalate(handoffs, "web-1")
    accounts.open_session(team.agent1.id)
    queued = escalate(handoffs, "web-1")
    assert queued.handoff_id == callback.handoff_id
    assert queued.status == "waiting" and queued.position == 1
    assert handoffs.callbacks() == []


def test_a_lapsed_call_back_is_replaced_by_a_new_promise(
    handoffs: HandoffService, team: Team, clock: Clock
) -> None:
    first = escalate(handoffs, "web-1")
    clock.advance(minutes=10)
    second = escalate(handoffs, "web-1")
    assert second.created and second.handoff_id != first.handoff_id
    assert second.callback_due == clock.now + timedelta(minutes=5)
    assert [view.id for view in handoffs.callbacks()] == [second.handoff_id]


def test_queue_order_vip_first_then_severity_then_waiting_time(
    handoffs: HandoffService,
    online: Team,
    sessions: sessionmaker,
    clock: Clock,
    accounts: AgentAccounts,
) -> None:
    vip_id = add_customer(sessions, "王女士", "13900000001", "vip")
    escalate(handoffs, "early-normal", severity=1)
    clock.advance(minutes=1)
    escalate(handoffs, "severe-normal", severity=5)
    clock.advance(minutes=1)
    accounts.touch(online.console_token)  # the agent is still there
    vip = escalate(handoffs, "vip", severity=1, customer_id=vip_id)
    assert vip.position == 1
    assert [view.sender_id for view in handoffs.queue()] == ["vip", "severe-normal", "early-normal"]
    # Waiting counts (2 points a minute): after half an hour the early customer goes before a
    # newcomer of higher severity.
    clock.advance(minutes=30)
    accounts.touch(online.console_token)
    escalate(handoffs, "severe-newcomer", severity=5)
    order = [view.sender_id for view in handoffs.queue()]
    assert order == ["vip", "severe-normal", "early-normal", "severe-newcomer"]
    assert handoffs.queue()[2].waiting_seconds == 32 * 60


def test_claim_moves_a_chat_to_the_agent(
    handoffs: HandoffService, online: Team, clock: Clock
) -> None:
    outcome = escalate(handoffs, "web-1")
    clock.advance(seconds=40)
    view = handoffs.claim(outcome.handoff_id, online.agent1.id)
    assert (view.status, view.agent_id, view.agent_display_name) == (
        "active",
        online.agent1.id,
        "小王",
    )
    assert view.claimed_at == clock.now and view.waiting_seconds == 40
    assert handoffs.can_reply(outcome.handoff_id, online.agent1.id)
    assert not handoffs.can_reply(outcome.handoff_id, online.agent2.id)
    with pytest.raises(AlreadyClaimed):
        handoffs.claim(outcome.handoff_id, online.agent2.id)
    with pytest.raises(UnknownHandoff):
        handoffs.claim(999_999, online.agent2.id)


def test_agents_see_waiting_chats_and_their_own(handoffs: HandoffService, online: Team) -> None:
    mine = escalate(handoffs, "mine").handoff_id
    theirs = escalate(handoffs, "theirs").handoff_id
    waiting = escalate(handoffs, "waiting").handoff_id
    handoffs.claim(mine, online.agent1.id)
    handoffs.claim(theirs, online.agent2.id)
    assert {view.id for view in handoffs.queue(online.agent1.id)} == {waiting, mine}
    assert {view.id for view in handoffs.queue(online.lead.id)} == {waiting, mine, theirs}
    assert [view.status for view in handoffs.queue()] == ["waiting", "active", "active"]


def test_a_channel_an_agent_cannot_reach_gets_a_call_back(
    handoffs: HandoffService, online: Team
) -> None:
    outcome = handoffs.request("rest-1", "rest", "request_human", ["request_person"], 2)
    assert (outcome.queued, outcome.status) == (False, "callback")
    assert outcome.callback_due is not None


def test_transfer_rules(handoffs: HandoffService, online: Team, accounts: AgentAccounts) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    with pytest.raises(NotAllowed):
        handoffs.transfer(chat, online.agent1.id, online.agent2.id)  # claim first
    handoffs.claim(chat, online.agent1.id)
    with pytest.raises(AgentOffline):
        # QA: a chat given to an agent whose console was closed waited on nobody
        handoffs.transfer(chat, online.agent1.id, online.agent2.id)
    assert handoffs.get(chat).agent_id == online.agent1.id
    for colleague in (online.agent2, online.lead):
        accounts.open_session(colleague.id)
    with pytest.raises(NotAllowed):
        handoffs.transfer(chat, online.agent2.id, online.agent2.id)  # not the owner
    with pytest.raises(NotAllowed):
        handoffs.transfer(chat, online.agent1.id, online.boss.id)  # managers take no chats
    with pytest.raises(HandoffError):
        handoffs.transfer(chat, online.agent1.id, online.agent1.id)
    moved = handoffs.transfer(chat, online.agent1.id, online.lead.id)
    assert moved.agent_id == online.lead.id
    back = handoffs.transfer(chat, online.boss.id, online.agent2.id)  # a manager may move it
    assert back.agent_id == online.agent2.id
    transfers = [e.detail for e in handoffs.events(chat) if e.kind == "transferred"]
    assert transfers == [{"from": "agent1", "to": "lead1"}, {"from": "lead1", "to": "agent2"}]


def test_supervisor_can_assign_a_waiting_chat(
    handoffs: HandoffService, online: Team, accounts: AgentAccounts
) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    accounts.open_session(online.agent2.id)
    view = handoffs.transfer(chat, online.lead.id, online.agent2.id)
    assert (view.status, view.agent_id) == ("active", online.agent2.id)


def test_hand_back_and_close_end_the_handoff(handoffs: HandoffService, online: Team) -> None:
    first = escalate(handoffs, "web-1").handoff_id
    handoffs.claim(first, online.agent1.id)
    with pytest.raises(NotAllowed):
        handoffs.hand_back(first, online.agent2.id)
    ended = handoffs.hand_back(first, online.agent1.id)
    assert ended.status == "handed_back" and ended.ended_at is not None
    assert handoffs.open_for_sender("web-1") is None
    with pytest.raises(HandoffError):
        handoffs.close(first, online.agent1.id)
    # The same conversation may escalate again later: a new handoff.
    second = escalate(handoffs, "web-1").handoff_id
    assert second != first
    handoffs.claim(second, online.agent2.id)
    closed = handoffs.close(second, online.lead.id)  # a supervisor may close anyone's chat
    assert closed.status == "closed"
    assert handoffs.latest_for_sender("web-1").id == second
    kinds = [event.kind for event in handoffs.events(second)]
    assert kinds == ["queued", "claimed", "closed"]


def test_the_bot_itself_can_hand_back(handoffs: HandoffService, online: Team) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    assert handoffs.hand_back(chat, "assistant").status == "handed_back"
    assert handoffs.events(chat)[-1].actor == "assistant"


def test_a_waiting_customer_can_leave_the_queue_but_not_an_agents_chat(
    handoffs: HandoffService, online: Team
) -> None:
    waiting = escalate(handoffs, "web-1").handoff_id
    left = handoffs.leave_queue("web-1")
    assert left is not None and (left.id, left.status) == (waiting, "handed_back")
    assert handoffs.open_for_sender("web-1") is None and handoffs.queue() == []
    last = handoffs.events(waiting)[-1]
    assert (last.kind, last.actor, last.detail) == ("handed_back", "customer", {"left_queue": True})
    with pytest.raises(HandoffError):
        handoffs.claim(waiting, online.agent1.id)  # a stale queue view cannot take it
    assert handoffs.leave_queue("web-1") is None  # nothing waiting any more

    taken = escalate(handoffs, "web-2").handoff_id
    handoffs.claim(taken, online.agent1.id)
    assert handoffs.leave_queue("web-2") is None  # the agent has it: theirs to answer
    assert handoffs.get(taken).status == "active"
    assert handoffs.leave_queue("never-escalated") is None


def test_replies_are_audited_for_the_owner_only(handoffs: HandoffService, online: Team) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    with pytest.raises(NotAllowed):
        handoffs.record_reply(chat, online.agent1.id, 12)
    handoffs.claim(chat, online.agent1.id)
    handoffs.record_reply(chat, online.agent1.id, 12)
    with pytest.raises(NotAllowed):
        handoffs.record_reply(chat, online.agent2.id, 3)
    assert handoffs.events(chat)[-1].detail == {"length": 12}


def test_every_change_bumps_updated_at(
    handoffs: HandoffService, online: Team, clock: Clock
) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    clock.advance(seconds=5)
    assert handoffs.claim(chat, online.agent1.id).updated_at == clock.now
    clock.advance(seconds=5)
    handoffs.record_reply(chat, online.agent1.id, 4)
    assert handoffs.get(chat).updated_at == clock.now


def test_attach_ticket(
    handoffs: HandoffService, online: Team, sessions: sessionmaker, clock: Clock
) -> None:
    customer_id = add_customer(sessions, "王女士", "13900000001", "gold")
    chat = escalate(handoffs, "web-1", customer_id=customer_id).handoff_id
    ticket = TicketService(sessions).open_ticket(
        customer_id, "complaint", "态度问题", now=clock.now
    )
    view = handoffs.attach_ticket(chat, ticket.ticket_no.lower())
    assert view.ticket_no == ticket.ticket_no
    assert (view.customer_name, view.customer_tier) == ("王女士", "gold")
    with pytest.raises(UnknownTicket):
        handoffs.attach_ticket(chat, "T20261125-9999")


def test_inactive_agents_cannot_claim(
    handoffs: HandoffService, online: Team, accounts: AgentAccounts
) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    accounts.update_agent("agent2", active=False)
    with pytest.raises(NotAllowed):
        handoffs.claim(chat, online.agent2.id)


def test_handoffs_survive_a_restart(
    handoffs: HandoffService, online: Team, sessions: sessionmaker, escalation_policy, clock: Clock
) -> None:
    chat = escalate(handoffs, "web-1").handoff_id
    handoffs.claim(chat, online.agent1.id)
    restarted = HandoffService(sessions, escalation_policy, clock)
    view = restarted.open_for_sender("web-1")
    assert view is not None and (view.id, view.agent_id) == (chat, online.agent1.id)


def _race(workers: int, work) -> list:
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - the test inspects what each worker got
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_agents_claiming_at_once_exactly_one_wins(
    handoffs: HandoffService, online: Team
) -> None:
    for round_no in range(3):
        chat = escalate(handoffs, f"web-{round_no}").handoff_id
        results = _race(
            2,
            lambda index, chat=chat: handoffs.claim(
                chat, [online.agent1.id, online.agent2.id][index]
            ),
        )
        winners = [result for result in results if not isinstance(result, Exception)]
        losers = [result for result in results if isinstance(result, Exception)]
        assert len(winners) == 1, results
        assert len(losers) == 1 and isinstance(losers[0], AlreadyClaimed), results
        assert handoffs.get(chat).agent_id == winners[0].agent_id


def test_simultaneous_requests_for_one_sender_make_one_handoff(
    handoffs: HandoffService, online: Team, sessions: sessionmaker
) -> None:
    results = _race(4, lambda _index: escalate(handoffs, "web-race"))
    assert not [result for result in results if isinstance(result, Exception)], results
    assert len({result.handoff_id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    with sessions() as session:
        assert len(session.execute(select(Handoff.id)).all()) == 1


def test_simultaneous_call_back_requests_make_one_promise(
    handoffs: HandoffService, team: Team, sessions: sessionmaker
) -> None:
    results = _race(3, lambda _index: escalate(handoffs, "web-race"))
    assert not [result for result in results if isinstance(result, Exception)], results
    assert len({result.handoff_id for result in results}) == 1
    with sessions() as session:
        assert len(session.execute(select(Handoff.id)).all()) == 1


def test_the_database_itself_refuses_a_second_pending_handoff(
    sessions: sessionmaker, clock: Clock
) -> None:
    def row(status: str, **extra) -> Handoff:
        return Handoff(
            sender_id="web-1",
            channel="webchat",
            status=status,
            trigger="request_human",
            reasons=[],
            severity=2,
            queued_at=clock.now,
            updated_at=clock.now,
            **extra,
        )

    with sessions.begin() as session:
        session.add_all(
            [row("waiting"), row("closed"), row("handed_back"), row("callback", ended_at=clock.now)]
        )
    for second in ("active", "waiting", "callback"):
        with pytest.raises(IntegrityError), sessions.begin() as session:
            session.add(row(second))


def test_waiting_chats_become_call_backs_once_nobody_can_take_them(
    handoffs: HandoffService, online: Team, clock: Clock
) -> None:
    waiting = escalate(handoffs, "web-1").handoff_id
    assert handoffs.release_unattended() == []  # agent1's console is open
    clock.advance(minutes=5)  # and then it is not
    (released,) = handoffs.release_unattended()
    assert (released.id, released.status) == (waiting, "callback")
    assert released.callback_due is not None
    assert handoffs.release_unattended() == []  # released once
    assert [view.id for view in handoffs.callbacks()] == [waiting]
