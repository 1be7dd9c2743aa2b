"""The canned-reply library: the shipped file, search, supervisor-only edits, safe re-sync."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from bot.handoff.accounts import NotAllowed
from bot.handoff.canned import (
    CANNED_REPLIES_FILE,
    CannedReplies,
    CannedReplyError,
    UnknownCannedReply,
    read_canned_library,
)
from tests.handoff.conftest import Clock, Team

SEVEN_SITUATIONS = {
    "等待太久",
    "反复维修",
    "配送延误",
    "态度不满",
    "商品不符",
    "退款未到",
    "安全担忧",
}


@pytest.fixture
def canned(sessions: sessionmaker, clock: Clock) -> CannedReplies:
    library = CannedReplies(sessions, clock)
    library.sync_from_file()
    return library


def test_shipped_library_has_37_plus_replies_and_all_seven_situations() -> None:
    library = read_canned_library()
    assert len(library.replies) >= 37
    assert set(library.situations) == SEVEN_SITUATIONS
    covered = {reply.situation for reply in library.replies if reply.situation}
    assert covered == SEVEN_SITUATIONS
    assert len({reply.category for reply in library.replies}) >= 5


def test_sync_seeds_every_reply_once(canned: CannedReplies) -> None:
    assert len(canned.search()) == len(read_canned_library().replies)
    report = canned.sync_from_file()
    assert (report.added, report.refreshed, report.kept_edited) == (0, 0, 0)
    assert len(canned.search()) == len(read_canned_library().replies)


def test_search_by_chinese_substring_title_category_and_situation(canned: CannedReplies) -> None:
    refund = canned.search("退款")
    assert refund and all(
        "退款" in f"{reply.title}{reply.text}{reply.category}{reply.situation or ''}"
        for reply in refund
    )
    assert {reply.situation for reply in canned.search("安全担忧")} == {"安全担忧"}
    assert all(reply.category == "物流配送" for reply in canned.search(category="物流配送"))
    both = canned.search("退款 银行")  # every word must match
    assert [reply.key for reply in both] == ["empathy_refund_missing_followup"]
    assert canned.search("不存在的话术xyz") == []
    assert canned.search("100%") == []  # LIKE wildcards are taken literally


def test_only_supervisors_and_managers_edit(canned: CannedReplies, team: Team) -> None:
    reply = canned.search("七天无理由")[0]
    with pytest.raises(NotAllowed):
        canned.update(reply.id, team.agent1.id, text="改掉")
    with pytest.raises(NotAllowed):
        canned.create(team.agent1.id, "新话术", "其他", "内容")
    with pytest.raises(NotAllowed):
        canned.delete(reply.id, team.agent1.id)
    edited = canned.update(reply.id, team.lead.id, text="  新的七天无理由说明。 ")
    assert (edited.text, edited.updated_by) == ("新的七天无理由说明。", "lead1")
    created = canned.create(team.boss.id, "节日问候", "开场问候", "节日快乐！", situation=None)
    assert created.key is None and created in canned.search("节日")
    with pytest.raises(CannedReplyError):
        canned.update(reply.id, team.lead.id, text="   ")
    with pytest.raises(UnknownCannedReply):
        canned.update(999_999, team.lead.id, text="x")


def test_deleted_replies_disappear_and_stay_deleted_after_sync(
    canned: CannedReplies, team: Team
) -> None:
    reply = canned.search("积分说明")[0]
    canned.delete(reply.id, team.lead.id)
    assert canned.search("积分说明") == []
    canned.sync_from_file()
    assert canned.search("积分说明") == []


def test_sync_refreshes_unedited_replies_but_keeps_supervisor_edits(
    canned: CannedReplies, team: Team, tmp_path: Path
) -> None:
    edited = canned.search("七天无理由")[0]
    canned.update(edited.id, team.lead.id, text="主管改过的文字")
    raw = yaml.safe_load(CANNED_REPLIES_FILE.read_text(encoding="utf-8"))
    for entry in raw["replies"]:
        if entry["key"] in ("return_7day", "invoice_request"):
            entry["text"] = "文件里的新文字"
    raw["replies"].append(
        {"key": "brand_new", "category": "结束语", "title": "新增", "text": "新增的话术"}
    )
    changed = tmp_path / "canned.yml"
    changed.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    report = canned.sync_from_file(changed)
    assert (report.added, report.refreshed, report.kept_edited) == (1, 1, 1)
    assert canned.get(edited.id).text == "主管改过的文字"
    assert canned.search("开具发票")[0].text == "文件里的新文字"
    assert canned.search("新增的话术")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["replies"].__setitem__(slice(30, None), []), "37"),
        (lambda raw: raw["replies"].append(dict(raw["replies"][0])), "duplicate"),
        (lambda raw: raw["replies"][0].update(situation="心情不好"), "心情不好"),
        (lambda raw: raw["situations"].append("无人覆盖"), "无人覆盖"),
        (lambda raw: raw["replies"][0].update(text=" "), "text"),
    ],
)
def test_broken_library_file_is_refused(tmp_path: Path, change, message: str) -> None:
    raw = yaml.safe_load(CANNED_REPLIES_FILE.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "canned.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CannedReplyError) as error:
        read_canned_library(path)
    assert "canned.yml" in str(error.value) and message in str(error.value)
