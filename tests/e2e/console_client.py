"""The agent console as a test client: an agent's logged-in session over HTTP, with the live
event stream (Server-Sent Events) read in a thread."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import requests

PASSWORD = "demo-pass-2026"


class Console:
    """An agent's console session over HTTP, with its live event stream read in a thread."""

    def __init__(self, url: str, username: str) -> None:
        self.url = url
        self.http = requests.Session()
        reply = self.http.post(
            f"{url}/console/api/login",
            json={"username": username, "password": PASSWORD},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        self.agent = reply.json()["agent"]
        self.http.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        self.events: queue.Queue[tuple[float, str, dict]] = queue.Queue()
        self._stream = self.http.get(f"{url}/console/api/events", stream=True, timeout=60)
        assert self._stream.status_code == 200
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind, data = "", ""
        try:
            for line in self._stream.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and kind:
                    self.events.put((time.monotonic(), kind, json.loads(data or "{}")))
                    kind, data = "", ""
        except (requests.RequestException, AttributeError, ValueError):
            return

    def get(self, path: str) -> Any:
        reply = self.http.get(f"{self.url}{path}", timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(f"{self.url}{path}", json=body or {}, timeout=30)

    def chat_of(self, sender_id: str) -> dict:
        for chat in self.get("/console/api/queue")["chats"]:
            if chat["sender_id"] == sender_id:
                return chat
        raise AssertionError(f"{sender_id} is not in the queue")

    def next_message(
        self, sender_id: str, text: str | None = None, timeout: float = 10
    ) -> tuple[float, dict]:
        """When the console heard of the sender's next message (with ``text``, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, kind, data = self.events.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if kind == "message" and data.get("sender_id") == sender_id:
                if text is None or data["entry"].get("text") == text:
                    return at, data["entry"]
        raise AssertionError("no live message reached the console")

    def close(self) -> None:
        self._stream.close()
        self.http.close()
