"""The embeddable widget in a real browser (Debian's Chromium via Playwright) on the demo shop
page, talking to a real Rasa server: conversation, quick replies, reload, dropped connection,
photos, phone layout, unread badge and escaping of everything shown."""

from __future__ import annotations

import re
import time

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.webchat_server import WebChatServer
from tests.channels.test_webchat_attachments import png_bytes

pytestmark = [pytest.mark.slow, pytest.mark.server]

ATTACK = '<img src=x onerror="window.__pwned=1">'


class Widget:
    """Drives the widget the way a customer does, waiting for the assistant between turns."""

    def __init__(self, page: Page, webchat: WebChatServer) -> None:
        self.page = page
        self.webchat = webchat

    def load(self) -> Widget:
        self.page.goto(f"{self.webchat.url}/widget/demo")
        self.page.wait_for_selector(".shc-root[data-ready=true]", state="attached")
        return self

    def open(self) -> Widget:
        if not self.page.locator(".shc-root.shc-open").count():
            self.page.click(".shc-launcher")
        self.wait_online()
        return self

    def wait_online(self) -> None:
        self.page.wait_for_selector(
            ".shc-root[data-connection=status_online]", state="attached", timeout=30_000
        )

    def bot_rows(self) -> int:
        return self.page.locator(".shc-row.shc-from-bot").count()

    def wait_for_replies(self, before: int, quiet: float = 1.5) -> list[str]:
        """Bot messages after the first ``before`` ones, once no new one came for ``quiet`` s."""
        self.page.wait_for_function(
            f"document.querySelectorAll('.shc-row.shc-from-bot').length > {before}"
        )
        count, settled = self.bot_rows(), time.monotonic()
        while time.monotonic() - settled < quiet:
            time.sleep(0.25)
            if self.bot_rows() != count:
                count, settled = self.bot_rows(), time.monotonic()
        return self.page.locator(".shc-row.shc-from-bot .shc-bubble").all_inner_texts()[before:]

    def say(self, text: str) -> list[str]:
        before = self.bot_rows()
        self.page.fill(".shc-input", text)
        self.page.click(".shc-send")
        return self.wait_for_replies(before)

    def user_texts(self) -> list[str]:
        return self.page.locator(".shc-row.shc-from-user .shc-bubble").all_inner_texts()

    def session_id(self) -> str:
        return self.page.evaluate(
            "JSON.parse(localStorage.getItem('shouhou-chat:' + location.origin)).sessionId"
        )

    def push_agent_message(self, **event: object) -> None:
        """What a human agent's console does: append a bot message and deliver it."""
        reply = requests.post(
            f"{self.webchat.url}/conversations/{self.session_id()}/tracker/events",
            params={"output_channel": "latest", "execute_side_effects": "true"},
            json={"event": "bot", **event},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text


def test_a_customer_asks_and_the_assistant_answers(page: Page, webchat, screenshot) -> None:
    widget = Widget(page, webchat).load()
    expect(page.locator(".shc-panel")).to_be_hidden()
    widget.open()
    expect(page.locator(".shc-panel")).to_be_visible()
    expect(page.locator(".shc-title")).to_have_text("优选家电 · 售后小助手")
    page.evaluate(
        """() => {
          const typing = document.querySelector('.shc-typing');
          window.__typingShown = false;
          new MutationObserver(() => { if (!typing.hidden) window.__typingShown = true; })
            .observe(typing, { attributes: true, attributeFilter: ['hidden'] });
        }"""
    )
    replies = widget.say("你好")
    assert any("售后小助手" in reply for reply in replies), replies
    assert page.evaluate("window.__typingShown") is True, "typing indicator shown while waiting"
    expect(page.locator(".shc-typing")).to_be_hidden()
    times = page.locator(".shc-meta").all_inner_texts()
    assert times and all(re.fullmatch(r"\d{2}:\d{2}", t.split(" · ")[0]) for t in times)
    # the launcher's primary colour comes from the embed config
    colour = page.eval_on_selector(".shc-launcher", "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(200, 16, 46)"
    screenshot(page, "desktop-conversation")


def test_quick_replies_send_the_payload_and_show_the_title(page: Page, webchat, screenshot):
    widget = Widget(page, webchat).load().open()
    widget.say("我家空调漏水了 派人来修一下")
    widget.say("SO20261105003")  # 王芳's air conditioners (the washer's repair is under way)
    widget.say("13700137000")  # the opening message described the fault: next, the address
    widget.say("北京市朝阳区建国路88号3单元502")
    widget.say("明天")
    choices = page.locator(".shc-replies:not(.shc-replies-used) .shc-reply")
    expect(choices.first).to_have_text(re.compile("^上午"))
    screenshot(page, "quick-replies")
    before = widget.bot_rows()
    choices.first.click()
    replies = widget.wait_for_replies(before)
    assert widget.user_texts()[-1] == "上午 9:00-12:00", "the title is shown, not the payload"
    said = "\n".join(replies)
    assert "已为您建立工单" in said and "上午" in said, replies
    expect(page.locator(".shc-replies-used .shc-reply").first).to_be_disabled()


def test_the_conversation_survives_a_reload(page: Page, webchat, screenshot) -> None:
    widget = Widget(page, webchat).load().open()
    widget.say("我要退货")
    session_id = widget.session_id()
    shown = page.locator(".shc-row .shc-bubble").all_inner_texts()

    page.reload()
    widget.wait_online()
    expect(page.locator(".shc-panel")).to_be_visible()  # it stays open, as the customer left it
    assert page.locator(".shc-row .shc-bubble").all_inner_texts() == shown
    assert widget.session_id() == session_id
    replies = widget.say("SO20261101001")
    assert any("手机" in reply for reply in replies), "the return form continues after reload"
    screenshot(page, "after-reload")


def test_a_dropped_connection_queues_and_then_delivers(page: Page, webchat) -> None:
    widget = Widget(page, webchat).load().open()
    widget.say("你好")
    session_id = widget.session_id()

    page.evaluate("ShouhouChat.socket.disconnect()")
    expect(page.locator(".shc-root")).to_have_attribute("data-connection", "status_offline")
    before = widget.bot_rows()
    page.fill(".shc-input", "退货要运费吗")
    page.click(".shc-send")
    expect(page.locator(".shc-pending")).to_have_count(1)
    page.evaluate("ShouhouChat.socket.connect()")
    replies = widget.wait_for_replies(before)
    assert replies and widget.session_id() == session_id
    expect(page.locator(".shc-pending")).to_have_count(0)

    # a transport that dies under the client reconnects by itself, to the same conversation
    page.evaluate("ShouhouChat.socket.io.engine.close()")
    widget.wait_online()
    assert widget.say("你好")
    assert widget.session_id() == session_id


def test_a_photo_is_uploaded_and_shown(page: Page, webchat, screenshot, page_errors) -> None:
    # the refused upload below is answered 400, which Chromium reports on the console
    page_errors.allow("the server responded with a status of 400")
    widget = Widget(page, webchat).load().open()
    widget.say("你好")
    page.set_input_files(
        ".shc-file",
        files=[{"name": "故障.png", "mimeType": "image/png", "buffer": png_bytes(40, 30)}],
    )
    image = page.locator(".shc-from-user img.shc-image")
    expect(image).to_have_count(1)
    page.wait_for_function(
        "document.querySelector('.shc-from-user img.shc-image').naturalWidth === 40"
    )
    expect(page.locator(".shc-from-bot .shc-bubble").last).to_contain_text("照片已收到")
    assert len(list(webchat.upload_dir.iterdir())) >= 1

    # named and typed as a PNG, but its bytes are not an image: refused by the server
    page.set_input_files(
        ".shc-file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"MZ\x90\x00evil"}]
    )
    expect(page.locator(".shc-from-system .shc-bubble").last).to_contain_text("只能发送 JPG")
    # a GIF is refused before uploading, with the same clear message
    page.set_input_files(
        ".shc-file", files=[{"name": "a.gif", "mimeType": "image/gif", "buffer": b"GIF89a...."}]
    )
    expect(page.locator(".shc-from-system")).to_have_count(2)
    expect(image).to_have_count(1)
    screenshot(page, "photo")


def test_on_a_phone_the_panel_fills_the_screen(phone: Page, webchat, screenshot) -> None:
    widget = Widget(phone, webchat).load()
    launcher = phone.locator(".shc-launcher").bounding_box()
    assert launcher and launcher["x"] + launcher["width"] <= 375
    assert launcher["y"] + launcher["height"] <= 667
    screenshot(phone, "phone-closed")
    phone.tap(".shc-launcher")
    widget.wait_online()
    box = phone.locator(".shc-panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
    expect(phone.locator(".shc-launcher")).to_be_hidden()
    assert any("售后小助手" in reply for reply in widget.say("你好"))
    composer = phone.locator(".shc-composer").bounding_box()
    assert composer and composer["y"] + composer["height"] <= 667
    no_overflow = phone.evaluate("document.querySelector('.shc-panel').scrollWidth <= 375")
    assert no_overflow
    screenshot(phone, "phone-open")
    phone.tap(".shc-minimise")
    expect(phone.locator(".shc-panel")).to_be_hidden()
    expect(phone.locator(".shc-launcher")).to_be_visible()


def test_unread_badge_counts_messages_while_minimised(page: Page, webchat, screenshot) -> None:
    widget = Widget(page, webchat).load().open()
    widget.say("你好")
    page.click(".shc-minimise")
    expect(page.locator(".shc-badge")).to_be_hidden()
    widget.push_agent_message(text="客服小王：您的问题已经处理好了")
    widget.push_agent_message(text="还有别的需要吗？")
    expect(page.locator(".shc-badge")).to_have_text("2")
    screenshot(page, "unread-badge")
    page.reload()
    expect(page.locator(".shc-badge")).to_have_text("2")  # still unread after a reload
    page.click(".shc-launcher")
    expect(page.locator(".shc-badge")).to_be_hidden()


def test_nothing_from_customers_agents_or_the_bot_is_run_as_html(page: Page, webchat, screenshot):
    widget = Widget(page, webchat).load().open()
    widget.say(ATTACK)
    assert widget.user_texts()[-1] == ATTACK
    widget.push_agent_message(
        text=f"客服：{ATTACK} 详情见 javascript:alert(1) 或 https://example.com/a?b=<script>x</script>",
        data={"buttons": [{"title": "<b onmouseover=alert(1)>粗体</b>", "payload": "/greet"}]},
    )
    widget.push_agent_message(data={"image": "javascript:alert(2)"})
    expect(page.locator(".shc-from-bot .shc-bubble", has_text="客服：")).to_have_count(1)
    agent = page.locator(".shc-from-bot .shc-bubble", has_text="客服：")
    assert ATTACK in agent.inner_text() and "<script>x</script>" in agent.inner_text()
    expect(page.locator(".shc-reply").last).to_have_text("<b onmouseover=alert(1)>粗体</b>")
    expect(page.locator(".shc-from-bot .shc-bubble").last).to_have_text("（已隐藏不安全的链接）")
    links = page.locator(".shc-messages a").evaluate_all("links => links.map(a => a.href)")
    assert links and all(link.startswith(("http://", "https://")) for link in links), links
    assert page.locator(".shc-messages img, .shc-messages script, .shc-messages b").count() == 0
    page.reload()  # and the stored history is just as inert
    widget.wait_online()
    assert page.locator(".shc-messages img, .shc-messages b").count() == 0
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "escaping")
