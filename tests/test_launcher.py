"""`bot up` without Rasa: what it does with the servers it started when it is told to stop."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

import pytest

from bot import launcher


def stand_in_steps(monkeypatch: pytest.MonkeyPatch, server: subprocess.Popen) -> list[str]:
    """Replace every preparation step and the servers; returns the steps in the order run."""
    steps: list[str] = []

    def step(name: str, result: object = None):  # noqa: ANN202 - a stand-in of any signature
        return lambda *args, **kwargs: steps.append(name) or result

    monkeypatch.setattr("bot.store.db.upgrade_database", step("database"))
    monkeypatch.setattr("bot.demo.load_demo_data", step("demo data"))
    monkeypatch.setattr("bot.kb.search.load_knowledge_base", step("knowledge base"))
    monkeypatch.setattr(launcher, "ensure_model", step("model"))
    monkeypatch.setattr(launcher, "start_servers", step("servers", [server]))
    return steps


def test_the_knowledge_base_index_is_ready_before_the_servers_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()  # a server that stops at once ends `bot up`
    steps = stand_in_steps(monkeypatch, server)
    args = argparse.Namespace(retrain=False, port=5005, action_port=5055, nlu_port=0)
    assert launcher.run_up(args) == 1
    assert steps == ["database", "demo data", "knowledge base", "model", "servers"]


def test_sigterm_stops_the_servers_like_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    stand_in_steps(monkeypatch, server)
    # Were SIGTERM left to this handler (or the default one, which ends pytest), `bot up`
    # would die and leave its servers running.
    before = signal.signal(signal.SIGTERM, _sigterm_not_handled)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        args = argparse.Namespace(retrain=False, port=5005, action_port=5055, nlu_port=0)
        assert launcher.run_up(args) == 0
        assert server.wait(timeout=20) is not None  # the server was stopped, not left behind
        assert signal.getsignal(signal.SIGTERM) is _sigterm_not_handled
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, before)
        if server.poll() is None:
            server.kill()


def _sigterm_not_handled(_signum: int, _frame: object) -> None:
    raise RuntimeError("SIGTERM was not handled by bot up")
