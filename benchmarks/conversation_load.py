"""Turn latency and throughput of the whole assistant over REST, custom actions and the
database in the loop (identity checks, ticket writes, knowledge searches).

Starts its own action, NLU and Rasa servers (as `python -m bot up` does) on a fresh SQLite
database with the demo data (or uses running ones with --url), then measures:
  1. one client: p50 / p95 per turn;
  2. 20 concurrent closed-loop conversations (each message sent when the previous reply came):
     turns/s and p50 / p95 at saturation; then the same 20 conversations paced to offer 60
     turns/s together (--rate): p50 / p95 at that load;
  3. per-turn latency at turn 5 vs turn 50 of long conversations (history growth);
  4. resident memory of each server;
  5. CPU milliseconds per turn of each server during the concurrent phase — on a shared
     machine this is the steadier figure, since wall-clock numbers move with other load.
Run: .venv/bin/python benchmarks/conversation_load.py [--model models/other.tar.gz]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo import create_demo_database  # noqa: E402
from bot.launcher import ensure_model, start_servers, stop_servers  # noqa: E402

ORDERS = [
    ("SO20261101001", "13800138000"),
    ("SO20261103002", "13900139000"),
    ("SO20261105003", "13700137000"),
]
SERVER_NAMES = {
    True: ("action server", "NLU server", "rasa server"),
    False: ("action server", "rasa server"),
}
"""The servers ``start_servers`` returns, in order, with and without the NLU server."""
QUESTIONS = ["退货要运费吗", "保修期多久", "积分怎么用", "发票怎么开", "多久能退款"]


def script(client: int) -> list[str]:
    """A 10-turn cycle of realistic messages; repeated, it makes conversations of any length."""
    order, phone = ORDERS[client % len(ORDERS)]
    question = QUESTIONS[client % len(QUESTIONS)]
    return [
        "你好",
        "快递到哪了",
        order,
        phone,
        question,
        "有帮助",
        "我要退货",
        "算了 不退了",
        "谢谢",
        "你是机器人吗",
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def converse(
    url: str,
    sender: str,
    client: int,
    turns: int,
    record: list,
    schedule: tuple[float, float] | None = None,
) -> None:
    """One conversation, each message sent when the previous reply arrived.

    With ``schedule`` (first send time, seconds between sends) a message goes out at its
    planned moment instead, or at once when the previous reply came late; its latency then
    counts from the planned moment, so a server falling behind is not hidden.
    """
    session = requests.Session()
    messages = script(client)
    for turn in range(turns):
        planned = time.perf_counter()
        if schedule is not None:
            planned = schedule[0] + turn * schedule[1]
            time.sleep(max(0.0, planned - time.perf_counter()))
        reply = session.post(
            f"{url}/webhooks/rest/webhook",
            json={"sender": sender, "message": messages[turn % len(messages)]},
            timeout=120,
        )
        reply.raise_for_status()
        record.append((turn + 1, time.perf_counter() - planned))


def paced_load(url: str, clients: int, turns: int, rate: float) -> tuple[float, list[float]]:
    """``clients`` conversations whose messages together arrive at ``rate`` per second, evenly
    staggered; returns the achieved turns/s and the latencies."""
    record: list = []
    first = time.perf_counter() + 0.5
    threads = [
        threading.Thread(
            target=converse,
            args=(url, f"paced-{i}", i, turns, record, (first + i / rate, clients / rate)),
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(record) / (time.perf_counter() - first), [t for _, t in record]


def process_and_children(pid: int) -> list[int]:
    """The process and its direct children, from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid] + ([int(p) for p in children.read_text().split()] if children.exists() else [])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    for p in process_and_children(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) and its children have used so far."""
    total = 0
    for p in process_and_children(pid):
        # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="use running servers instead of starting them")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--model", type=Path, help="a trained model other than the project's")
    parser.add_argument(
        "--rate",
        type=float,
        default=60.0,
        help="turns/s offered in the paced phase (default 60, the throughput target)",
    )
    parser.add_argument(
        "--no-nlu-server",
        dest="nlu_server",
        action="store_false",
        help="parse inside the Rasa server (no separate NLU server), for comparison",
    )
    args = parser.parse_args()

    processes = []
    url = args.url
    if not url:
        model = args.model or ensure_model()
        workdir = Path(tempfile.mkdtemp(prefix="bench-"))
        db_url = f"sqlite:///{workdir / 'bench.db'}"
        create_demo_database(db_url)
        processes = start_servers(
            5205,
            5255,
            model,
            extra_env={"ASSISTANT_DATABASE_URL": db_url},
            log_dir=workdir / "logs",
            tracker_db=workdir / "tracker.db",
            nlu_port=None if args.nlu_server else 0,
        )
        url = "http://127.0.0.1:5205"
    try:
        warm: list = []
        converse(url, "warmup", 0, 10, warm)

        single: list = []
        converse(url, "single", 1, 100, single)
        latencies = [t for _, t in single]
        print(
            f"one client, 100 turns: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 95) * 1000:.0f} ms"
        )

        record: list = []
        threads = [
            threading.Thread(target=converse, args=(url, f"load-{i}", i, args.turns, record))
            for i in range(args.clients)
        ]
        cpu_before = [cpu_seconds(process.pid) for process in processes]
        client_cpu = time.process_time()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        cpu_used = [
            cpu_seconds(process.pid) - before
            for process, before in zip(processes, cpu_before, strict=True)
        ]
        latencies = [t for _, t in record]
        print(
            f"{args.clients} concurrent conversations x {args.turns} turns: "
            f"{len(record) / elapsed:.1f} turns/s, "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 95) * 1000:.0f} ms"
        )

        if processes:
            print(
                "CPU per turn under load: "
                + ", ".join(
                    f"{name} {used * 1000 / len(record):.1f} ms"
                    for name, used in zip(SERVER_NAMES[args.nlu_server], cpu_used, strict=True)
                )
                + f"; this load generator {client_cpu * 1000 / len(record):.1f} ms"
            )

        achieved, paced = paced_load(url, args.clients, args.turns, args.rate)
        print(
            f"{args.clients} concurrent conversations paced at {args.rate:.0f} turns/s: "
            f"{achieved:.1f} turns/s served, p50 {statistics.median(paced) * 1000:.0f} ms, "
            f"p95 {percentile(paced, 95) * 1000:.0f} ms"
        )

        def at(turns: range) -> float:
            return statistics.mean(t for n, t in record if n in turns)

        # Same messages (the script repeats every 10 turns), early vs late in the conversation.
        early, late = at(range(3, 8)), at(range(43, 48))
        print(
            f"history growth under load: turns 3-7 mean {early * 1000:.0f} ms, turns 43-47 mean "
            f"{late * 1000:.0f} ms, ratio {late / early:.2f}"
        )
        long_single: list = []
        converse(url, "long-single", 2, 50, long_single)
        t5 = statistics.mean(t for n, t in long_single if 3 <= n <= 7)
        t50 = statistics.mean(t for n, t in long_single if 43 <= n <= 47)
        print(
            f"one client: turn ~5 {t5 * 1000:.0f} ms, turn ~50 {t50 * 1000:.0f} ms, "
            f"ratio {t50 / t5:.2f}"
        )
        if processes:
            print(
                "memory: "
                + ", ".join(
                    f"{name} {rss_mb(process.pid):.0f} MB"
                    for name, process in zip(SERVER_NAMES[args.nlu_server], processes, strict=True)
                )
            )
    finally:
        if processes:
            stop_servers(processes)


if __name__ == "__main__":
    main()
