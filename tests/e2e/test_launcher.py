"""README command 1 end to end: `python -m bot up` prepares everything, serves, and one
Ctrl-C stops all three servers; `python -m bot chat` talks to it from a terminal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.launcher import rasa_env
from bot.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.server]

RASA_PORT, ACTION_PORT = 5305, 5355


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_serves_chat_works_and_ctrl_c_stops_everything(trained_model: Path, tmp_path: Path):
    env = rasa_env()
    env["ASSISTANT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'up.db'}"
    env["PYTHONUNBUFFERED"] = "1"
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "up",
            "--port",
            str(RASA_PORT),
            "--action-port",
            str(ACTION_PORT),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 400
        while "The assistant is running" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "bot up did not start in time"
            time.sleep(1)
        output = (tmp_path / "up.log").read_text()
        assert f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook" in output
        assert f"http://127.0.0.1:{RASA_PORT + 1}/model/parse" in output
        assert "Model is up to date" in output, "an unchanged model is not retrained"

        chat = subprocess.run(
            [sys.executable, "-m", "bot", "chat", "--url", f"http://127.0.0.1:{RASA_PORT}"],
            input="你好\n/quit\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
            timeout=60,
        )
        assert "助手: 您好" in chat.stdout, chat.stdout + chat.stderr

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        time.sleep(1)
        assert not any(port_open(p) for p in (RASA_PORT, RASA_PORT + 1, ACTION_PORT))
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
        log.close()
