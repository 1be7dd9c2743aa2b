"""The console's labels cover every code the handoff uses, and the learned-summary paragraph."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.console.api import console_photo_url, sentiment_points
from bot.console.texts import learned_paragraph, load_console_texts
from bot.handoff.policy import load_escalation_policy
from bot.store.models import AGENT_ROLES, COMPENSATION_STATUSES, HANDOFF_STATUSES


def test_every_code_shown_in_the_console_has_a_chinese_label() -> None:
    texts = load_console_texts()
    policy = load_escalation_policy()
    assert set(policy.severity.triggers) <= set(texts["triggers"])
    assert set(policy.severity.reasons) <= set(texts["reasons"])
    assert set(HANDOFF_STATUSES) <= set(texts["handoff_statuses"])
    assert set(AGENT_ROLES) <= set(texts["roles"])
    assert set(COMPENSATION_STATUSES) <= set(texts["compensation_statuses"])


def test_a_texts_file_without_a_group_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "console_texts.yml"
    broken.write_text("labels: {login: 登录}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing text groups"):
        load_console_texts(broken)


def test_learned_summary_is_one_paragraph_in_the_order_things_were_learned() -> None:
    paragraph = learned_paragraph(
        {
            "intents": ["report_fault", "request_human"],
            "entities": {"order_no": "SO20261101001", "product": "洗衣机"},
            "active_form": "repair_form",
            "slots": {"product": "滚筒洗衣机", "time_slots": ["上午", "下午"]},
        }
    )
    assert "\n" not in paragraph
    # Intents are named as customers would say them (config/intent_labels.yml), in order.
    assert paragraph.index("报修") < paragraph.index("转人工客服")
    assert "report_fault" not in paragraph
    assert "product=滚筒洗衣机" in paragraph and "product=洗衣机" not in paragraph
    assert "time_slots=上午/下午" in paragraph and "repair_form" in paragraph
    empty = {"intents": [], "entities": {}, "active_form": None, "slots": {}}
    assert learned_paragraph(empty) == load_console_texts()["summary"]["nothing"]


def test_sentiment_points_come_from_customer_turns_only() -> None:
    transcript = [
        {"type": "user", "at": "t1", "sentiment": {"label": "negative", "score": -0.8}},
        {"type": "bot", "at": "t2", "sentiment": {"label": "positive", "score": 1}},
        {"type": "user", "at": "t3", "sentiment": None},
        {"type": "user", "at": "t4", "sentiment": {"label": "neutral"}},
    ]
    assert sentiment_points(transcript) == [
        {"at": "t1", "label": "negative", "score": -0.8},
        {"at": "t4", "label": "neutral", "score": None},
    ]


def test_widget_photo_urls_are_rewritten_to_the_console_route() -> None:
    assert (
        console_photo_url("/widget/uploads/abc.png?session_id=x") == "/console/api/photos/abc.png"
    )
    assert console_photo_url("https://mmbiz.qpic.cn/x.jpg") == "https://mmbiz.qpic.cn/x.jpg"
    assert console_photo_url(None) is None
