"""The Rasa server entry point freezes the loaded model out of garbage collection."""

from __future__ import annotations

import asyncio
import gc

import pytest
import rasa.core.run

import bot.rasa_server


def test_install_makes_rasa_load_its_model_through_the_freezing_loader(monkeypatch) -> None:
    monkeypatch.setattr(rasa.core.run, "load_agent_on_start", rasa.core.run.load_agent_on_start)
    bot.rasa_server.install()
    assert rasa.core.run.load_agent_on_start is bot.rasa_server.load_agent_then_freeze


def test_the_loaded_model_is_frozen_and_later_objects_are_not(monkeypatch) -> None:
    loaded = {"model": [object() for _ in range(1000)]}

    async def fake_load(*args, **kwargs):
        assert args == ("models/x.tar.gz",) and kwargs == {"remote_storage": None}
        return loaded

    monkeypatch.setattr(bot.rasa_server, "_load_agent_on_start", fake_load)
    gc.unfreeze()
    try:
        agent = asyncio.run(
            bot.rasa_server.load_agent_then_freeze("models/x.tar.gz", remote_storage=None)
        )
        assert agent is loaded
        frozen = gc.get_freeze_count()
        assert frozen >= 1000
        later = [object() for _ in range(100)]
        assert gc.get_freeze_count() == frozen, later
    finally:
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _no_leftover_freeze():
    yield
    gc.unfreeze()
