"""Handoff latency with 20 simultaneous escalated chats, through real servers.

Starts its own Rasa + action servers (web chat over socket.io, the agent console) on a fresh
SQLite database with the demo data and business hours around the clock, logs an agent in,
then 20 customers write "转人工" at once and the script measures, per chat:
  1. triggering message → its queue entry visible in the console (queue API polled);
  2. triggering message → the customer told a person is coming;
  3. agent send → the customer's widget receives the message (socket.io);
  4. customer message → the console's live stream (SSE) shows it.
It prints p50 / p95 / max of each.
Run: .venv/bin/python benchmarks/handoff_latency.py [--chats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.launcher import ensure_model, stop_servers  # noqa: E402
from tests.browser.webchat_server import start_webchat_server  # noqa: E402
from tests.channels.test_webchat_socketio import SocketChat  # noqa: E402
from tests.e2e.console_client import Console  # noqa: E402

RASA_PORT, ACTION_PORT = 5605, 5655


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{name:<44} n={len(values):>3}  p50 {statistics.median(ordered) * 1000:7.0f} ms"
        f"  p95 {p95 * 1000:7.0f} ms  max {ordered[-1] * 1000:7.0f} ms"
    )


def escalate(chat: SocketChat, started: float, results: dict, index: int) -> None:
    chat.client.emit("user_uttered", {"message": "转人工", "session_id": chat.session_id})
    chat.events.get(timeout=120)
    results["told"][index] = time.monotonic() - started


def measure(url: str, chats: int) -> None:
    agent = Console(url, "agent1")
    customers = [SocketChat(url) for _ in range(chats)]
    for customer in customers:
        customer.request_session()
    warm = SocketChat(url)
    warm.request_session()
    warm.say("你好")
    warm.close()

    results: dict[str, list[float]] = {"told": [0.0] * chats}
    started = time.monotonic()
    threads = [
        threading.Thread(target=escalate, args=(customer, started, results, index))
        for index, customer in enumerate(customers)
    ]
    for thread in threads:
        thread.start()
    seen: dict[str, float] = {}
    wanted = {customer.session_id for customer in customers}
    while wanted - seen.keys() and time.monotonic() - started < 120:
        for chat in agent.get("/console/api/queue")["chats"]:
            if chat["sender_id"] in wanted and chat["sender_id"] not in seen:
                seen[chat["sender_id"]] = time.monotonic() - started
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    print(summary("triggering message -> queue entry (polled)", list(seen.values())))
    print(summary("triggering message -> customer told", results["told"]))

    ids = {chat["sender_id"]: chat["id"] for chat in agent.get("/console/api/queue")["chats"]}
    for customer in customers:
        agent.post(f"/console/api/chats/{ids[customer.session_id]}/claim").raise_for_status()
        while not customer.events.empty():
            customer.events.get()

    to_customer: list[float] = []
    lock = threading.Lock()

    def send(customer: SocketChat) -> None:
        sent = time.monotonic()
        agent.post(
            f"/console/api/chats/{ids[customer.session_id]}/messages", {"text": "您好，我来帮您"}
        ).raise_for_status()
        customer.events.get(timeout=30)
        with lock:
            to_customer.append(time.monotonic() - sent)

    senders = [threading.Thread(target=send, args=(customer,)) for customer in customers]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    print(summary("agent send -> customer receipt (socket.io)", to_customer))

    while not agent.events.empty():
        agent.events.get()
    to_console: list[float] = []
    for customer in customers:
        sent = time.monotonic()
        customer.client.emit(
            "user_uttered", {"message": "好的 谢谢", "session_id": customer.session_id}
        )
        try:
            arrived, _ = agent.next_message(customer.session_id, "好的 谢谢", timeout=10)
        except AssertionError:
            continue
        to_console.append(arrived - sent)
    print(summary("customer message -> console live stream", to_console))

    for customer in customers:
        agent.post(f"/console/api/chats/{ids[customer.session_id]}/handback")
        customer.close()
    agent.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or ensure_model()
    workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    server, processes = start_webchat_server(model, workdir, RASA_PORT, ACTION_PORT)
    try:
        measure(server.url, args.chats)
    finally:
        stop_servers(processes)


if __name__ == "__main__":
    main()
