"""`python -m bot kb ...`: as a real process against a temporary SQLite database, plus the
other outcomes in-process through `bot.cli.main` (same code, no start-up cost).

The two `kb check` processes are started in the background when the module begins, so they
run while the `kb search` processes (which share the stored index, hence run one at a time)
do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.cli import main
from bot.kb.articles import ARTICLES_DIR, load_articles
from bot.settings import DATABASE_URL_ENV
from bot.store.db import session_factory, session_scope, upgrade_database
from bot.store.models import KbSearch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 300


class Process:
    """A started `python -m bot kb ...`; ``result()`` waits for it once."""

    def __init__(self, database_url: str, *args: str) -> None:
        environment = {
            **os.environ,
            DATABASE_URL_ENV: database_url,
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONIOENCODING": "utf-8",
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "bot", "kb", *args],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._result: subprocess.CompletedProcess | None = None

    def result(self) -> subprocess.CompletedProcess:
        if self._result is None:
            stdout, stderr = self._popen.communicate(timeout=TIMEOUT_SECONDS)
            self._result = subprocess.CompletedProcess(
                self._popen.args, self._popen.returncode, stdout, stderr
            )
        return self._result

    def stop(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.communicate()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('kb-cli') / 'assistant.db'}"


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two good articles, bad YAML and an id that does not match its file name."""
    articles = tmp_path_factory.mktemp("broken-articles")
    for name in ("invoice.md", "return-shipping-fee.md"):
        (articles / name).write_bytes((ARTICLES_DIR / name).read_bytes())
    (articles / "broken.md").write_text(
        "---\nid: broken\ntitle: [未闭合\n---\n正文\n", encoding="utf-8"
    )
    (articles / "renamed.md").write_bytes((ARTICLES_DIR / "invoice.md").read_bytes())
    return articles


@pytest.fixture(scope="module", autouse=True)
def checks(database_url: str, broken_dir: Path) -> Iterator[dict[str, Process]]:
    started = {
        "real": Process(database_url, "check"),
        "broken": Process(database_url, "check", "--dir", str(broken_dir)),
    }
    yield started
    for process in started.values():
        process.stop()


def search(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return Process(database_url, "search", *args).result()


# -- kb search ----------------------------------------------------------------------------


def test_search_json_lists_id_title_and_score(database_url: str) -> None:
    result = search(database_url, "退货要运费吗", "--json", "--k", "2")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert isinstance(hits, list)
    assert 1 <= len(hits) <= 2
    assert all(set(hit) == {"id", "title", "score"} for hit in hits)
    assert hits[0]["id"] == "return-shipping-fee"
    assert hits[0]["title"] == "退货运费谁承担"
    assert "退货运费谁承担" in result.stdout  # Chinese as is, not \u escapes
    assert 0 < hits[0]["score"] <= 1
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert "prefix dict" not in result.stderr  # jieba's start-up chatter is kept quiet


# -- kb check -----------------------------------------------------------------------------


def test_check_passes_on_the_real_articles(checks: dict[str, Process]) -> None:
    result = checks["real"].result()
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(load_articles(ARTICLES_DIR).articles)
    assert result.stdout.strip().splitlines()[-1] == f"{count} articles valid, 0 with errors"
    assert "ERROR" not in result.stdout


def test_check_reports_broken_articles_with_their_path(
    checks: dict[str, Process], broken_dir: Path
) -> None:
    result = checks["broken"].result()
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert any(
        line.startswith(f"ERROR {broken_dir / 'broken.md'}: ") and "YAML" in line for line in lines
    ), lines
    assert any(
        line.startswith(f"ERROR {broken_dir / 'renamed.md'}: ")
        and "does not match the file name" in line
        for line in lines
    ), lines
    assert lines[-1] == "2 articles valid, 2 with errors"


# -- in-process: error paths and the gaps report ------------------------------------------


def test_search_json_prints_an_empty_list_when_nothing_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["kb", "search", "你们卖二手车吗", "--json"]) == 0
    assert capsys.readouterr().out == "[]\n"


def test_search_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "search", "你们卖二手车吗"]) == 0
    assert capsys.readouterr().out == "not found\n"
    assert main(["kb", "search", "退货要运费吗", "--k", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    score, article_id, title = line.split(maxsplit=2)
    assert (article_id, title) == ("return-shipping-fee", "退货运费谁承担")
    assert 0 < float(score) <= 1


def test_check_fails_for_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    assert main(["kb", "check", "--dir", str(missing)]) == 1
    assert f"ERROR {missing}: not a directory" in capsys.readouterr().out


def test_check_fails_for_a_directory_without_articles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kb", "check", "--dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == "0 articles valid, 0 with errors"


def test_gaps_reads_the_configured_database(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upgrade_database(sqlite_url)
    monkeypatch.setenv(DATABASE_URL_ENV, sqlite_url)
    assert main(["kb", "gaps"]) == 0
    assert capsys.readouterr().out.strip() == "no unanswered or unhelpful questions logged"

    now = datetime.now(timezone.utc)
    with session_scope(session_factory(sqlite_url)) as session:
        for query, found, helpful in [
            ("你们卖二手车吗", False, None),
            ("你们卖二手车吗", False, None),
            ("空调不制冷", True, False),
            ("退货要运费吗", True, True),
        ]:
            session.add(
                KbSearch(
                    created_at=now,
                    query=query,
                    normalised_query=query,
                    hits=[],
                    found=found,
                    helpful=helpful,
                )
            )

    assert main(["kb", "gaps", "--limit", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "   2  (not found 2, unhelpful 0)  你们卖二手车吗",
        "   1  (not found 0, unhelpful 1)  空调不制冷",
    ]
