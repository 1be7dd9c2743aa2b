"""One real Rasa server (with its NLU and action servers) for every web chat test that needs
them, and for the handoff benchmark.

The socket.io protocol tests (tests/channels), the browser tests (tests/browser) and the
handoff tests (tests/e2e) share the session fixture ``webchat`` in tests/conftest.py, which
calls :func:`start_webchat_server` once, on a fresh SQLite store holding the demo data, so a
run pays the start-up (about a minute) once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import yaml

from bot.demo import create_demo_database
from bot.handoff.policy import DEFAULT_ESCALATION_POLICY_FILE, ESCALATION_POLICY_FILE_ENV
from bot.launcher import start_servers

RASA_PORT, ACTION_PORT = 5505, 5555


@dataclass(frozen=True)
class WebChatServer:
    url: str
    db_url: str
    upload_dir: Path
    log_dir: Path


def always_open_policy(workdir: Path) -> Path:
    """The project's escalation policy with business hours around the clock."""
    policy = yaml.safe_load(DEFAULT_ESCALATION_POLICY_FILE.read_text(encoding="utf-8"))
    policy["business_hours"]["always_open"] = True
    path = workdir / "escalation_policy.yml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


def start_webchat_server(
    model: Path, workdir: Path, rasa_port: int = RASA_PORT, action_port: int = ACTION_PORT
) -> tuple[WebChatServer, list[Popen]]:
    """The servers on a fresh demo database in ``workdir``, agents on duty around the clock;
    stop the returned processes with ``bot.launcher.stop_servers``."""
    db_url = f"sqlite:///{workdir / 'assistant.db'}"
    create_demo_database(db_url)
    server = WebChatServer(
        f"http://127.0.0.1:{rasa_port}", db_url, workdir / "uploads", workdir / "logs"
    )
    processes = start_servers(
        rasa_port,
        action_port,
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
