"""The agent console and the widget together in headless Chromium: a customer escalates in the
widget, an agent logs in, claims the chat, replies, the customer sees it, the agent hands back;
and what a customer writes is shown as text, never run."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import new_page
from tests.browser.test_widget import Widget
from tests.browser.webchat_server import WebChatServer

pytestmark = [pytest.mark.slow, pytest.mark.server]

PASSWORD = "demo-pass-2026"
ATTACK = '<img src=x onerror="window.__pwned=1">'


def log_in(page: Page, webchat: WebChatServer, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{webchat.url}/console/")
    page.fill("[data-testid=login-username]", username)
    page.fill("[data-testid=login-password]", password)
    page.click("[data-testid=login-submit]")


@pytest.fixture
def agent_page(browser, page_errors):
    page = new_page(browser, page_errors)
    yield page
    page.close()


def test_customer_escalates_agent_claims_replies_and_hands_back(
    page: Page, agent_page: Page, webchat: WebChatServer, screenshot, page_errors
) -> None:
    page_errors.allow("401 (Unauthorized)")  # the console asks who is logged in before login
    log_in(agent_page, webchat, "agent1")
    expect(agent_page.locator("[data-testid=me]")).to_be_visible(timeout=15_000)
    widget = Widget(page, webchat).load().open()
    queued = widget.say("转人工")
    assert any("人工客服" in text for text in queued)

    item = agent_page.locator("[data-testid=queue-item]", has_text=widget.session_id())
    expect(item).to_be_visible(timeout=10_000)
    item.click()
    before_claim = widget.bot_rows()
    agent_page.click("[data-testid=claim-button]")
    expect(agent_page.locator("[data-testid=reply-box]")).to_be_enabled(timeout=10_000)
    joined = widget.wait_for_replies(before_claim)
    assert len(joined) == 1 and "客服小王" in joined[0] and "已接入" in joined[0]
    expect(agent_page.locator("[data-testid=escalation-reason]")).not_to_be_empty()

    # The customer writes something hostile: the console shows it as text, nothing runs.
    before = widget.bot_rows()
    page.fill(".shc-input", ATTACK)
    page.click(".shc-send")
    customer_entry = agent_page.locator(
        "[data-testid=transcript-entry][data-type=user]", has_text="onerror"
    )
    expect(customer_entry).to_be_visible(timeout=5_000)
    assert agent_page.evaluate("window.__pwned") is None
    assert agent_page.locator("[data-testid=transcript] img[src=x]").count() == 0

    # A canned reply fills the box; the agent edits and sends it.
    agent_page.fill("[data-testid=canned-search]", "抱歉")
    canned = agent_page.locator("[data-testid=canned-item]").first
    expect(canned).to_be_visible(timeout=5_000)
    canned.click()
    expect(agent_page.locator("[data-testid=reply-box]")).not_to_have_value("")
    agent_page.fill("[data-testid=reply-box]", "您好，我是客服小王，这就帮您处理")
    agent_page.click("[data-testid=send-button]")
    replies = widget.wait_for_replies(before)
    assert replies == ["您好，我是客服小王，这就帮您处理"]
    screenshot(agent_page, "console-chat")
    screenshot(page, "widget-agent-reply")

    agent_page.once("dialog", lambda dialog: dialog.accept())  # "hand back to the bot?"
    agent_page.click("[data-testid=handback-button]")
    back = widget.wait_for_replies(before + 1)
    assert any("小助手" in text for text in back)
    assert any("订单号" in text for text in widget.say("我要退货"))


def test_wrong_password_is_refused_in_the_page(
    agent_page: Page, webchat: WebChatServer, page_errors
) -> None:
    page_errors.allow("401 (Unauthorized)")
    log_in(agent_page, webchat, "agent1", "wrong-password")
    expect(agent_page.locator("[data-testid=login-error]")).to_be_visible(timeout=10_000)
    expect(agent_page.locator("[data-testid=me]")).to_be_hidden()
