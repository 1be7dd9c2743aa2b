"""One real Rasa server + action server for every web chat test that needs them.

Both the socket.io protocol tests (tests/channels) and the browser tests (tests/browser) enter
:func:`shared_webchat_server`; the servers start once, on a fresh SQLite store holding the demo
data, and stop when the last user leaves, so a run pays the start-up (about a minute) once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest
import yaml

from bot.demo import create_demo_database
from bot.handoff.policy import DEFAULT_ESCALATION_POLICY_FILE, ESCALATION_POLICY_FILE_ENV
from bot.launcher import start_servers, stop_servers

RASA_PORT, ACTION_PORT = 5505, 5555


@dataclass(frozen=True)
class WebChatServer:
    url: str
    db_url: str
    upload_dir: Path
    log_dir: Path


class _Shared:
    """Who uses the servers right now, and what to stop when nobody does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.server: WebChatServer | None = None
        self.processes: list[Popen] = []


_shared = _Shared()


def always_open_policy(workdir: Path) -> Path:
    """The project's escalation policy with business hours around the clock."""
    policy = yaml.safe_load(DEFAULT_ESCALATION_POLICY_FILE.read_text(encoding="utf-8"))
    policy["business_hours"]["always_open"] = True
    path = workdir / "escalation_policy.yml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


def _start(model: Path, workdir: Path) -> tuple[WebChatServer, list[Popen]]:
    db_url = f"sqlite:///{workdir / 'assistant.db'}"
    create_demo_database(db_url)
    server = WebChatServer(
        f"http://127.0.0.1:{RASA_PORT}", db_url, workdir / "uploads", workdir / "logs"
    )
    processes = start_servers(
        RASA_PORT,
        ACTION_PORT,
        model,
        extra_env={
            "ASSISTANT_DATABASE_URL": db_url,
            "ASSISTANT_UPLOAD_DIR": str(server.upload_dir),
            # Agents can take chats whenever the tests run, not only in business hours.
            ESCALATION_POLICY_FILE_ENV: str(always_open_policy(workdir)),
        },
        log_dir=server.log_dir,
        tracker_db=workdir / "tracker.db",
    )
    return server, processes


@contextmanager
def shared_webchat_server(
    model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebChatServer]:
    """The running servers (started on first entry, stopped when the last user leaves)."""
    with _shared.lock:
        if _shared.server is None:
            _shared.server, _shared.processes = _start(model, tmp_path_factory.mktemp("webchat"))
        _shared.users += 1
        server = _shared.server
    try:
        yield server
    finally:
        with _shared.lock:
            _shared.users -= 1
            if not _shared.users:
                stop_servers(_shared.processes)
                _shared.server, _shared.processes = None, []
