"""The agent console's HTTP API: sessions, CSRF, roles, the queue and the chat actions."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta

import pytest
import requests

from bot.console.channel import WEB_DIR, AgentConsoleInput
from tests.console.conftest import PASSWORD, AgentClient, Console, entry_of

# ------------------------------------------------------------------------------ sessions


def test_login_sets_a_strict_http_only_cookie_and_returns_the_csrf_token(
    console: Console,
) -> None:
    client = AgentClient(console.base)
    answer = client.post("login", json={"username": "amy", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["agent"] == {
        "id": console.agents["amy"],
        "username": "amy",
        "display_name": "艾米",
        "role": "agent",
    }
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("console_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http in the test, no CONSOLE_SECURE_COOKIES
    me = client.get("me")
    assert me.status_code == 200
    assert me.json() == {"agent": body["agent"], "csrf_token": body["csrf_token"]}


def test_secure_cookie_when_the_deployment_asks(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_SECURE_COOKIES", "1")
    answer = requests.post(
        f"{console.base}/api/login", json={"username": "amy", "password": PASSWORD}, timeout=10
    )
    assert "; Secure" in answer.headers["Set-Cookie"]


def test_wrong_password_and_unknown_user_get_the_same_401(console: Console) -> None:
    wrong = requests.post(
        f"{console.base}/api/login", json={"username": "amy", "password": "nope-nope"}, timeout=10
    )
    unknown = requests.post(
        f"{console.base}/api/login", json={"username": "nobody", "password": "nope"}, timeout=10
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "Set-Cookie" not in wrong.headers


def test_five_failures_throttle_even_the_right_password(console: Console) -> None:
    url = f"{console.base}/api/login"
    for _ in range(5):
        failed = requests.post(url, json={"username": "bob", "password": "guess"}, timeout=10)
        assert failed.status_code == 401
    throttled = requests.post(url, json={"username": "bob", "password": PASSWORD}, timeout=10)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    # Other agents are not affected.
    assert console.login("amy").get("me").status_code == 200


def test_logout_ends_the_session_for_good(console: Console) -> None:
    client = console.login("amy")
    stolen_cookie = client.cookies.get("console_session", path="/console")
    assert client.post("logout").status_code == 204
    assert client.get("me").status_code == 401
    replay = requests.get(
        f"{console.base}/api/me", cookies={"console_session": stolen_cookie}, timeout=10
    )
    assert replay.status_code == 401


def test_every_api_needs_a_session(console: Console) -> None:
    for method, path in [
        ("GET", "me"),
        ("GET", "queue"),
        ("GET", "events"),
        ("GET", "chats/1"),
        ("POST", "chats/1/claim"),
        ("GET", "canned"),
        ("GET", "photos/0123456789abcdef0123456789abcdef.jpg"),
    ]:
        answer = requests.request(method, f"{console.base}/api/{path}", timeout=10)
        assert answer.status_code == 401, (method, path, answer.status_code)


# ------------------------------------------------------------------------------ CSRF, roles


def test_state_changes_need_the_sessions_csrf_token(console: Console) -> None:
    client = console.login("amy")
    handoff_id = console.escalate("web-csrf")
    claim = f"chats/{handoff_id}/claim"
    assert client.post(claim, headers={"X-CSRF-Token": ""}).status_code == 403
    missing = requests.post(f"{console.base}/api/{claim}", cookies=client.cookies, timeout=10)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf"
    other = console.login("bob")
    assert client.post(claim, headers={"X-CSRF-Token": other.csrf}).status_code == 403
    assert client.post(claim).status_code == 200


def test_agents_cannot_manage_canned_replies_or_approve_compensation(console: Console) -> None:
    agent = console.login("amy")
    for method, path, body in [
        ("POST", "canned", {"title": "t", "category": "c", "text": "x"}),
        ("PUT", "canned/1", {"title": "t", "category": "c", "text": "x"}),
        ("DELETE", "canned/1", None),
        ("GET", "compensations?status=pending", None),
        ("POST", "compensations/1/approve", None),
        ("POST", "compensations/1/reject", None),
    ]:
        answer = agent.request(method, path, json=body)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["code"] == "forbidden"


# ------------------------------------------------------------------------------ queue


def test_queue_is_ordered_by_priority_and_agents_see_waiting_and_their_own(
    console: Console,
) -> None:
    amy, bob, sue = console.login("amy"), console.login("bob"), console.login("sue")
    normal_fallback = console.escalate(
        "web-normal",
        trigger="fallback_streak",
        reasons=("fallback",),
        severity=1,
        customer_phone="13800138000",
    )
    vip = console.escalate("web-vip", severity=2, customer_phone="13700137000")
    anonymous_angry = console.escalate(
        "web-angry", trigger="sentiment_escalate", reasons=("anger",), severity=3
    )
    bobs = console.escalate("web-bob", severity=1)
    assert bob.post(f"chats/{bobs}/claim").status_code == 200

    listed = amy.get("queue").json()
    assert [chat["id"] for chat in listed["chats"]] == [vip, anonymous_angry, normal_fallback]
    priorities = [chat["priority"] for chat in listed["chats"]]
    assert priorities == sorted(priorities, reverse=True)
    first = listed["chats"][0]
    assert first["customer"] == {"id": first["customer"]["id"], "name": "王芳", "tier": "vip"}
    assert first["status"] == "waiting" and first["agent"] is None
    assert {"id", "display_name", "role", "online"} <= set(listed["agents"][0])
    online = {agent["display_name"] for agent in listed["agents"] if agent["online"]}
    assert online == {"艾米", "鲍勃", "苏主管"}

    everything = sue.get("queue").json()["chats"]
    assert [chat["id"] for chat in everything][-1] == bobs
    assert everything[-1]["agent"]["display_name"] == "鲍勃"
    assert bobs in [chat["id"] for chat in bob.get("queue").json()["chats"]]


# ------------------------------------------------------------------------------ chat actions


def test_claim_pauses_the_bot_tells_the_customer_and_a_second_claim_gets_409(
    console: Console,
) -> None:
    amy, bob = console.login("amy"), console.login("bob")
    handoff_id = console.escalate("web-claim")
    claimed = amy.post(f"chats/{handoff_id}/claim")
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "active"
    assert claimed.json()["agent"]["display_name"] == "艾米"
    assert console.bridge.calls == [("pause", "web-claim"), ("tell", "web-claim")]
    # the customer hears that a person, by name, answers from now on
    assert console.bridge.told == [
        ("web-claim", "utter_handoff_agent_joined", {"agent_name": "艾米"})
    ]
    late = bob.post(f"chats/{handoff_id}/claim")
    assert late.status_code == 409 and late.json()["code"] == "already_claimed"
    # Bob cannot even look at Amy's chat any more; a supervisor can.
    assert bob.get(f"chats/{handoff_id}").status_code == 403
    assert console.login("sue").get(f"chats/{handoff_id}").status_code == 200


def test_only_the_owner_replies(console: Console) -> None:
    amy, sue = console.login("amy"), console.login("sue")
    handoff_id = console.escalate("web-reply")
    path = f"chats/{handoff_id}/messages"
    assert amy.post(path, json={"text": "您好"}).status_code == 409  # still waiting
    amy.post(f"chats/{handoff_id}/claim")
    assert sue.post(path, json={"text": "我来"}).status_code == 409
    sent = amy.post(path, json={"text": "您好，我是客服艾米"})
    assert sent.status_code == 201
    assert sent.json()["entry"]["type"] == "agent"
    assert console.bridge.sent == [("web-reply", "您好，我是客服艾米", "艾米")]
    assert amy.post(path, json={"text": "   "}).status_code == 400
    assert amy.post(path, json={"text": "长" * 2001}).status_code == 400
    assert [e.kind for e in console.api.handoffs.events(handoff_id)][-1] == "reply"
    console.bridge.fail_delivery = True
    failed = amy.post(path, json={"text": "还在吗"})
    assert failed.status_code == 502 and failed.json()["code"] == "delivery_failed"


def test_transfer_moves_the_chat_and_its_reply_rights(console: Console) -> None:
    amy, bob = console.login("amy"), console.login("bob")
    handoff_id = console.escalate("web-transfer")
    amy.post(f"chats/{handoff_id}/claim")
    refused = bob.post(f"chats/{handoff_id}/transfer", json={"agent_id": console.agents["bob"]})
    assert refused.status_code == 403
    to_manager = amy.post(f"chats/{handoff_id}/transfer", json={"agent_id": console.agents["max"]})
    assert to_manager.status_code == 400
    moved = amy.post(f"chats/{handoff_id}/transfer", json={"agent_id": console.agents["bob"]})
    assert moved.status_code == 200
    assert console.bridge.told[-1] == (
        "web-transfer",
        "utter_handoff_transferred",
        {"agent_name": "鲍勃"},
    )
    assert moved.json()["agent"] == {"id": console.agents["bob"], "display_name": "鲍勃"}
    path = f"chats/{handoff_id}/messages"
    assert amy.post(path, json={"text": "x"}).status_code == 409
    assert bob.post(path, json={"text": "我是鲍勃"}).status_code == 201
    transfer_to_sue = (f"chats/{handoff_id}/transfer", {"agent_id": console.agents["sue"]})
    offline = bob.post(transfer_to_sue[0], json=transfer_to_sue[1])
    # QA: a chat given to someone whose console is closed waited on nobody
    assert (offline.status_code, offline.json()["code"]) == (409, "agent_offline")
    console.login("sue")
    assert bob.post(transfer_to_sue[0], json=transfer_to_sue[1]).status_code == 200


def test_hand_back_and_close_go_through_the_bridge(console: Console) -> None:
    amy, bob = console.login("amy"), console.login("bob")
    first = console.escalate("web-back")
    second = console.escalate("web-close")
    for handoff_id in (first, second):
        amy.post(f"chats/{handoff_id}/claim")
    assert bob.post(f"chats/{first}/handback").status_code in (403, 409)
    back = amy.post(f"chats/{first}/handback")
    assert back.status_code == 200 and back.json()["status"] == "handed_back"
    closed = amy.post(f"chats/{second}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert ("hand_back", "web-back") in console.bridge.calls
    assert ("close_with_survey", "web-close") in console.bridge.calls
    again = amy.post(f"chats/{second}/close")
    assert again.status_code == 409
    assert console.api.handoffs.open_for_sender("web-back") is None
    assert back.json()["delivered"] is True


def test_a_failed_push_still_ends_the_chat(console: Console) -> None:
    amy = console.login("amy")
    handoff_id = console.escalate("web-push-fails")
    console.bridge.fail_delivery = True
    # the "客服已接入" notice could not be pushed: the chat is the agent's all the same
    claimed = amy.post(f"chats/{handoff_id}/claim")
    assert claimed.status_code == 200 and claimed.json()["status"] == "active"
    closed = amy.post(f"chats/{handoff_id}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed" and closed.json()["delivered"] is False
    assert console.api.handoffs.open_for_sender("web-push-fails") is None


def test_two_agents_claiming_at_once_get_one_chat_between_them(console: Console) -> None:
    clients = [console.login(name) for name in ("amy", "bob", "sue")]
    handoff_id = console.escalate("web-race")
    results: list[int] = []
    barrier = threading.Barrier(len(clients))

    def claim(client: AgentClient) -> None:
        barrier.wait()
        results.append(client.post(f"chats/{handoff_id}/claim").status_code)

    threads = [threading.Thread(target=claim, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409, 409]
    assert [e.kind for e in console.api.handoffs.events(handoff_id)].count("claimed") == 1


# ------------------------------------------------------------------------------ chat view


def test_chat_view_shows_transcript_customer_summary_and_sentiment(console: Console) -> None:
    amy = console.login("amy")
    handoff_id = console.escalate(
        "web-view", trigger="negative_streak", reasons=("negative",), customer_phone="13800138000"
    )
    console.bridge.transcripts["web-view"] = [
        entry_of(
            "user",
            "洗衣机又坏了",
            intent="report_fault",
            sentiment={"label": "negative", "score": -0.6},
        ),
        entry_of("bot", "很抱歉，请提供订单号", buttons=[{"title": "转人工", "payload": "/x"}]),
        entry_of(
            "user", "<script>alert(1)</script>", sentiment={"label": "negative", "score": -0.9}
        ),
    ]
    console.bridge.learned["web-view"] = {
        "intents": ["report_fault", "request_human"],
        "entities": {"order_no": "SO20261101001"},
        "active_form": "repair_form",
        "slots": {"product": "滚筒洗衣机"},
    }
    answer = amy.get(f"chats/{handoff_id}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    view = answer.json()
    assert [entry["type"] for entry in view["transcript"]] == ["user", "bot", "user"]
    # Hostile text comes back as data, unchanged; the page only ever sets it as text.
    assert view["transcript"][2]["text"] == "<script>alert(1)</script>"
    assert [point["label"] for point in view["sentiment"]] == ["negative", "negative"]
    assert view["chat"]["trigger"] == "negative_streak"
    assert view["chat"]["reasons"] == ["negative"]
    customer = view["customer"]
    assert customer["name"] == "张伟" and customer["tier"] == "normal"
    assert customer["phone_masked"] == "138****8000"
    assert {order["order_no"] for order in customer["orders"]} >= {"SO20261101001"}
    assert all(isinstance(item, str) for order in customer["orders"] for item in order["items"])
    summary = view["summary"]
    assert "报修" in summary and "SO20261101001" in summary
    assert "repair_form" in summary and "滚筒洗衣机" in summary
    assert view["can_reply"] is False
    amy.post(f"chats/{handoff_id}/claim")
    assert amy.get(f"chats/{handoff_id}").json()["can_reply"] is True


def test_ticket_from_the_chat_needs_a_known_customer(console: Console) -> None:
    amy = console.login("amy")
    known = console.escalate("web-ticket", customer_phone="13900139000")
    anonymous = console.escalate("web-anon")
    for handoff_id in (known, anonymous):
        amy.post(f"chats/{handoff_id}/claim")
    body = {"category": "repair", "summary": "电视无法开机"}
    assert amy.post(f"chats/{anonymous}/tickets", json=body).status_code == 409
    assert (
        amy.post(f"chats/{known}/tickets", json={"category": "x", "summary": "y"}).status_code
        == 400
    )
    created = amy.post(f"chats/{known}/tickets", json=body)
    assert created.status_code == 201
    ticket_no = created.json()["ticket_no"]
    assert console.api.handoffs.get(known).ticket_no == ticket_no
    advanced = amy.post(
        f"tickets/{ticket_no}/advance", json={"status": "acknowledged", "note": "已联系"}
    )
    assert advanced.status_code == 200 and advanced.json()["status"] == "acknowledged"
    backwards = amy.post(f"tickets/{ticket_no}/advance", json={"status": "opened", "note": ""})
    assert backwards.status_code == 409
    # Bob works on no chat of this customer: he may not touch the ticket.
    bob = console.login("bob")
    assert (
        bob.post(f"tickets/{ticket_no}/advance", json={"status": "plan_given"}).status_code == 403
    )


def test_photos_are_served_to_agents_who_can_see_the_chat(console: Console) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    stored = console.api.attachments.store("web-photo", png)
    amy, bob = console.login("amy"), console.login("bob")
    handoff_id = console.escalate("web-photo")
    photos = amy.get(f"chats/{handoff_id}").json()["photos"]
    assert photos == [{"url": f"/console/api/photos/{stored.filename}", "at": photos[0]["at"]}]
    url = f"http://127.0.0.1:{console.server.port}{photos[0]['url']}"
    fetched = amy.get(url)
    assert fetched.status_code == 200 and fetched.content == png
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    amy.post(f"chats/{handoff_id}/claim")
    assert bob.get(url).status_code == 404  # Amy's chat now
    assert console.login("sue").get(url).status_code == 200
    assert amy.get("photos/..%2Fassistant.db").status_code == 404


# ------------------------------------------------------------------------------ the page


def test_page_is_served_with_strict_security_headers(console: Console) -> None:
    page = requests.get(f"{console.base}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for name in ("console.js", "console.css"):
        asset = requests.get(f"{console.base}/static/{name}", timeout=10)
        assert asset.status_code == 200 and asset.text
    assert requests.get(f"{console.base}/static/../channel.py", timeout=10).status_code == 404
    texts = requests.get(f"{console.base}/texts.json", timeout=10).json()
    assert texts["labels"]["login"] == "登录" and texts["ticket_categories"]["repair"] == "维修"


def test_page_has_no_inline_script_and_never_writes_html() -> None:
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts and all(body.strip() == "" for body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    javascript = (WEB_DIR / "console.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in javascript
    for testid in (
        "login-form",
        "queue-item",
        "claim-button",
        "transcript-entry",
        "reply-box",
        "send-button",
        "canned-search",
        "handback-button",
        "close-button",
        "compensation-form",
        "transfer-select",
    ):
        assert f'"{testid}"' in html or f'"{testid}"' in javascript, testid


def test_waiting_chats_nobody_can_take_become_call_backs(console: Console) -> None:
    """QA: two customers queued while an agent was online waited for good once the agent's
    console closed; now they become call-backs and the customer hears when to expect one."""
    console.login("amy")
    waiting = console.escalate("web-stranded")
    channel = AgentConsoleInput(api=console.api, bridge_factory=lambda _app: console.bridge)
    assert asyncio.run(channel.release_unattended(None)) == 0  # amy is still here
    console.clock.offset += timedelta(minutes=5)  # amy's console stopped answering
    assert asyncio.run(channel.release_unattended(None)) == 1
    assert ("release_to_callback", "web-stranded") in console.bridge.calls
    released = console.api.handoffs.get(waiting)
    assert released.status == "callback" and released.callback_due is not None
    said = [due for sender, due, _ in console.bridge.sent if sender == "web-stranded"]
    assert said and "月" in said[0]
