"""The console page in Debian's Chromium (Playwright) against the console server with a fake
Rasa bridge: login, queue, claim, hostile text shown as text, canned replies, live messages,
close; and the supervisor-only views."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from bot.handoff.live import hub
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import PageErrors
from tests.console.conftest import PASSWORD, Console, entry_of

# The widget's browser fixtures (Debian's Chromium, pages failing on JavaScript errors).
browser = browser_fixtures.browser
page = browser_fixtures.page
page_errors = browser_fixtures.page_errors
screenshot = browser_fixtures.screenshot

ATTACK = '<img src=x onerror="window.__pwned=1">'


def login(page: Page, console: Console, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{console.base}/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def test_agent_takes_a_chat_from_queue_to_close(
    console: Console, page: Page, page_errors: PageErrors, screenshot
) -> None:
    page_errors.allow("401")  # the page asks who is logged in before the login form shows
    console.login("bob")  # someone else is online too
    handoff_id = console.escalate(
        "web-browser", trigger="complaint", reasons=("complaint",), customer_phone="13700137000"
    )
    console.bridge.transcripts["web-browser"] = [
        entry_of("user", "空调装好就漏水", sentiment={"label": "negative", "score": -0.7}),
        entry_of("bot", "很抱歉给您带来不便", buttons=[{"title": ATTACK, "payload": "/x"}]),
        entry_of("user", ATTACK, sentiment={"label": "negative", "score": -0.9}),
    ]
    console.bridge.learned["web-browser"] = {
        "intents": ["complain"],
        "entities": {"order_no": "SO20261105003"},
        "active_form": None,
        "slots": {},
    }

    page_errors.allow("login")
    login(page, console, "amy", "wrong-password")
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误")
    login(page, console, "amy")
    item = page.get_by_test_id("queue-item").filter(has_text="王芳")
    expect(item).to_have_attribute("data-id", str(handoff_id))
    expect(page.get_by_test_id("nav-canned")).to_be_hidden()
    item.click()

    entries = page.get_by_test_id("transcript-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(2).locator(".text")).to_have_text(ATTACK)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("[data-testid=transcript] img").count() == 0
    expect(page.get_by_test_id("customer-tier")).to_have_attribute("data-tier", "vip")
    expect(page.get_by_test_id("summary")).to_contain_text("SO20261105003")
    expect(page.get_by_test_id("sentiment-point")).to_have_count(2)
    expect(page.get_by_test_id("reply-box")).to_be_disabled()
    expect(page.get_by_test_id("compensation-hint")).to_contain_text("500")

    page.get_by_test_id("claim-button").click()
    expect(page.get_by_test_id("reply-box")).to_be_enabled()
    assert ("pause", "web-browser") in console.bridge.calls

    page.get_by_test_id("canned-search").fill("退款")
    first_canned = page.get_by_test_id("canned-item").first
    expect(first_canned).to_be_visible()
    first_canned.click()
    inserted = page.get_by_test_id("reply-box").input_value()
    assert inserted
    page.get_by_test_id("send-button").click()
    expect(entries).to_have_count(4)
    assert console.bridge.sent == [("web-browser", inserted.strip(), "艾米")]
    expect(page.get_by_test_id("reply-box")).to_have_value("")

    sent_at = time.monotonic()
    console.server.loop.call_soon_threadsafe(
        hub().publish,
        "message",
        {"sender_id": "web-browser", "entry": entry_of("user", "好的，谢谢")},
    )
    expect(entries.last).to_contain_text("好的，谢谢", timeout=5_000)
    assert time.monotonic() - sent_at < 2.0  # includes Playwright's polling
    expect(page.get_by_test_id("transfer-select").locator("option")).to_contain_text(
        ["转接给…", "鲍勃（坐席 · 在线）"]
    )
    screenshot(page, "console_chat")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("close-button").click()
    expect(page.get_by_test_id("chat-status")).to_contain_text("已结束")
    assert ("close_with_survey", "web-browser") in console.bridge.calls


def test_supervisor_edits_canned_replies_and_approves_compensation(
    console: Console, page: Page, page_errors: PageErrors, screenshot
) -> None:
    page_errors.allow("401")
    amy = console.login("amy")
    handoff_id = console.escalate("web-sup", customer_phone="13900139000")
    amy.post(f"chats/{handoff_id}/claim")
    ticket = amy.post(
        f"chats/{handoff_id}/tickets", json={"category": "repair", "summary": "电视黑屏"}
    )
    assert ticket.status_code == 201
    pending = amy.post(
        f"chats/{handoff_id}/compensations", json={"amount": "888", "reason": "<b>反复维修</b>"}
    )
    assert pending.json()["status"] == "pending"

    login(page, console, "sue")
    page.get_by_test_id("nav-compensations").click()
    row = page.get_by_test_id("pending-compensation")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("<b>反复维修</b>")
    row.get_by_test_id("approve-button").click()
    expect(page.get_by_test_id("pending-compensation")).to_have_count(0)
    assert console.api.compensation.get(pending.json()["id"]).status == "approved"

    page.get_by_test_id("nav-canned").click()
    page.get_by_test_id("canned-form-title").fill("测试话术")
    page.get_by_test_id("canned-form-category").fill("通用")
    page.get_by_test_id("canned-form-text").fill("<i>这是新话术</i>")
    page.get_by_test_id("canned-save").click()
    page.get_by_test_id("canned-admin-search").fill("新话术")
    expect(page.get_by_test_id("canned-row")).to_have_count(1)
    expect(page.get_by_test_id("canned-row")).to_contain_text("<i>这是新话术</i>")
    screenshot(page, "console_canned_admin")
