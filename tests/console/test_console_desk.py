"""Console desk tools: canned replies (search for all, editing for supervisors) and compensation."""

from __future__ import annotations

from tests.console.conftest import Console


def test_canned_search_finds_chinese_substrings_for_every_agent(console: Console) -> None:
    amy = console.login("amy")
    everything = amy.get("canned").json()
    assert len(everything) >= 37
    assert {"id", "title", "category", "situation", "text"} == set(everything[0])
    assert len({reply["situation"] for reply in everything if reply["situation"]}) >= 7
    refund = amy.get("canned", params={"q": "退款"}).json()
    assert refund and all(
        "退款" in (reply["title"] + reply["text"] + reply["category"] + (reply["situation"] or ""))
        for reply in refund
    )
    assert amy.get("canned", params={"q": "完全不存在的词语zzz"}).json() == []


def test_supervisors_edit_the_library_and_agents_see_the_change(console: Console) -> None:
    sue, amy = console.login("sue"), console.login("amy")
    created = sue.post(
        "canned",
        json={"title": "节日问候", "category": "通用", "situation": "", "text": "祝您节日快乐！"},
    )
    assert created.status_code == 201
    reply = created.json()
    assert reply["situation"] is None
    assert [r["id"] for r in amy.get("canned", params={"q": "节日快乐"}).json()] == [reply["id"]]
    edited = sue.put(
        f"canned/{reply['id']}",
        json={"title": "节日问候", "category": "通用", "text": "新年快乐！"},
    )
    assert edited.status_code == 200 and edited.json()["text"] == "新年快乐！"
    assert sue.post("canned", json={"title": "", "category": "x", "text": "y"}).status_code == 400
    assert (
        sue.put("canned/999999", json={"title": "a", "category": "b", "text": "c"}).status_code
        == 404
    )
    assert sue.delete(f"canned/{reply['id']}").status_code == 204
    assert amy.get("canned", params={"q": "新年快乐"}).json() == []
    manager = console.login("max")
    assert (
        manager.post("canned", json={"title": "a", "category": "b", "text": "c"}).status_code == 201
    )


def _chat_with_ticket(console: Console, sender_id: str, owner: str) -> tuple[int, str]:
    client = console.login(owner)
    handoff_id = console.escalate(sender_id, trigger="complaint", customer_phone="13700137000")
    assert client.post(f"chats/{handoff_id}/claim").status_code == 200
    ticket = client.post(
        f"chats/{handoff_id}/tickets", json={"category": "complaint", "summary": "安装师傅迟到"}
    )
    assert ticket.status_code == 201
    return handoff_id, ticket.json()["ticket_no"]


def test_compensation_up_to_the_limit_is_granted_above_it_waits_for_a_supervisor(
    console: Console,
) -> None:
    handoff_id, ticket_no = _chat_with_ticket(console, "web-comp", "amy")
    amy, sue = console.login("amy"), console.login("sue")
    path = f"chats/{handoff_id}/compensations"
    small = amy.post(path, json={"amount": "500", "reason": "上门迟到"})
    assert small.status_code == 201 and small.json()["status"] == "granted"
    large = amy.post(path, json={"amount": "500.01", "reason": "多次上门未修好"})
    assert large.status_code == 201 and large.json()["status"] == "pending"
    for bad in ("0", "-5", "12.345", "abc", ""):
        answer = amy.post(path, json={"amount": bad, "reason": "x"})
        assert answer.status_code == 400, bad
    assert amy.post(path, json={"amount": "10", "reason": "  "}).status_code == 400

    pending = sue.get("compensations", params={"status": "pending"}).json()
    assert [item["id"] for item in pending] == [large.json()["id"]]
    assert pending[0]["amount"] == "500.01" and pending[0]["requested_by"] == "amy"
    approved = sue.post(f"compensations/{pending[0]['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert sue.post(f"compensations/{pending[0]['id']}/reject").status_code == 409
    assert sue.get("compensations", params={"status": "pending"}).json() == []
    # Both steps are on the ticket's timeline.
    notes = [event.note for event in console.api.tickets.timeline(ticket_no).events]
    assert sum("500.01" in note for note in notes) >= 2


def test_compensation_needs_a_ticket_and_the_chat_owner(console: Console) -> None:
    amy, bob = console.login("amy"), console.login("bob")
    handoff_id = console.escalate("web-comp-noticket", customer_phone="13600136000")
    amy.post(f"chats/{handoff_id}/claim")
    body = {"amount": "20", "reason": "补偿运费"}
    missing = amy.post(f"chats/{handoff_id}/compensations", json=body)
    assert missing.status_code == 409 and missing.json()["code"] == "needs_ticket"
    assert bob.post(f"chats/{handoff_id}/compensations", json=body).status_code == 403


def test_supervisor_grants_above_the_limit_directly(console: Console) -> None:
    handoff_id, _ = _chat_with_ticket(console, "web-comp-sup", "sue")
    sue = console.login("sue")
    granted = sue.post(
        f"chats/{handoff_id}/compensations", json={"amount": "800", "reason": "重大投诉"}
    )
    assert granted.status_code == 201 and granted.json()["status"] == "granted"
