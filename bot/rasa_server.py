"""``python -m bot.rasa_server run …``: Rasa's own command line, with the loaded model kept out
of the garbage collector's way.

A loaded model is over a gigabyte of long-lived Python objects (TensorFlow, spaCy, the
domain).  Every full (generation 2) collection walks all of them: under load one came about
every thousand turns and stalled every conversation the server was handling for 0.25–0.55 s.
Once the model is loaded, ``gc.freeze()`` moves what exists to a permanent generation that
collections skip; everything created later (trackers, requests) is collected as usual.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import rasa.core.run
from rasa.__main__ import main
from rasa.core.agent import Agent

logger = logging.getLogger(__name__)
_load_agent_on_start = rasa.core.run.load_agent_on_start


async def load_agent_then_freeze(*args: Any, **kwargs: Any) -> Agent:
    """Rasa's start-up model loading, then the loaded objects frozen (see module docstring)."""
    agent = await _load_agent_on_start(*args, **kwargs)
    gc.collect()
    gc.freeze()
    logger.info("Model loaded: %d objects frozen out of garbage collection", gc.get_freeze_count())
    return agent


def install() -> None:
    rasa.core.run.load_agent_on_start = load_agent_then_freeze


if __name__ == "__main__":
    install()
    main()
