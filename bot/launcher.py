"""`python -m bot up` and `python -m bot chat`: run the whole assistant from one command.

``up`` prepares the database and demo data, rebuilds the spaCy pipeline and retrains the Rasa
model only when their inputs changed, then runs the action server, the NLU server and the Rasa
server together until Ctrl-C stops them all.  ``chat`` is a terminal client for the running
REST channel.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

MODELS_DIR = PROJECT_ROOT / "models"
MODEL_FILE = MODELS_DIR / "assistant.tar.gz"
FINGERPRINT_FILE = MODELS_DIR / "assistant.fingerprint"
DEFAULT_ACTION_PORT = 5055
NLU_PORT_OFFSET = 1
"""The NLU server listens next to the Rasa server unless told otherwise."""
TRAINING_INPUTS = (
    "config.yml",
    "domain.yml",
    "data",
    "bot/nlu",
    "bot/sentiment",
    "config/sentiment",
)
"""Files whose content decides the trained model; anything else changing needs no retrain."""


def training_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """Hash of every training input, so that ``up`` retrains only when one changed."""
    digest = hashlib.sha256()
    for entry in TRAINING_INPUTS:
        path = root / entry
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and file.suffix in (".yml", ".yaml", ".py"):
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def train_command(out: Path, *options: str) -> list[str]:
    """The `rasa train` invocation for this project's config, domain and data."""
    return [
        sys.executable,
        "-m",
        "rasa",
        "train",
        "--quiet",
        "--out",
        str(out),
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "data",
        *options,
    ]


def ensure_model(force: bool = False) -> Path:
    """Build the spaCy pipeline and train the Rasa model if their inputs changed."""
    from bot.nlu.spacy_pipeline import SPACY_MODEL_DIR, save_pipeline

    fingerprint = training_fingerprint()
    current = FINGERPRINT_FILE.read_text().strip() if FINGERPRINT_FILE.exists() else ""
    if not force and MODEL_FILE.exists() and SPACY_MODEL_DIR.exists() and current == fingerprint:
        print("==> Model is up to date")
        return MODEL_FILE
    print("==> Building the spaCy pipeline and training the Rasa model (a few minutes)")
    save_pipeline()
    started = time.monotonic()
    subprocess.run(
        train_command(MODELS_DIR, "--fixed-model-name", "assistant"),
        cwd=PROJECT_ROOT,
        env=rasa_env(),
        check=True,
    )
    FINGERPRINT_FILE.write_text(fingerprint)
    print(f"==> Trained in {time.monotonic() - started:.0f} s")
    return MODEL_FILE


def wait_for(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def nlu_port_for(rasa_port: int, nlu_port: int | None) -> int:
    """The NLU server's port: the one asked for (0: none), else next to the Rasa server."""
    return rasa_port + NLU_PORT_OFFSET if nlu_port is None else nlu_port


def start_servers(
    rasa_port: int = 5005,
    action_port: int = DEFAULT_ACTION_PORT,
    model: Path = MODEL_FILE,
    extra_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    tracker_db: Path | None = None,
    nlu_port: int | None = None,
) -> list[subprocess.Popen]:
    """Start the action server, the NLU server and the Rasa server (HTTP API on); return them
    in that order once all answer.

    The NLU server (``nlu_port``, by default ``rasa_port + 1``; 0 for none) runs the same model
    and does the message parsing, the heaviest part of a turn, in its own process: a turn's
    work then spreads over two cores instead of queueing on one.  The Rasa server parses
    in-process whenever the NLU server does not answer (``bot.rasa_runtime``).  With
    ``log_dir`` each server writes to ``<log_dir>/{actions,nlu,rasa}.log``; ``tracker_db``
    keeps conversations in another SQLite file (tests, benchmarks).
    """
    env = rasa_env()
    env.update(extra_env or {})
    nlu_port = nlu_port_for(rasa_port, nlu_port)
    endpoints = endpoints_file(action_port, tracker_db, nlu_port)

    def launch(name: str, command: list[str]) -> subprocess.Popen:
        output = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            output = (log_dir / f"{name}.log").open("ab")
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT if log_dir else None,
        )

    rasa_run = [
        sys.executable,
        "-m",
        "bot.rasa_server",
        "run",
        "--enable-api",
        "--model",
        str(model),
    ]
    actions = launch(
        "actions",
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)],
    )
    processes = [actions]
    waits = [(f"http://127.0.0.1:{action_port}/health", actions, 120)]
    if nlu_port:
        nlu = launch(
            "nlu",
            [
                *rasa_run,
                *("--interface", "127.0.0.1", "--port", str(nlu_port), "--connector", "rest"),
                *("--endpoints", str(nlu_endpoints_file())),
            ],
        )
        processes.append(nlu)
        waits.append((f"http://127.0.0.1:{nlu_port}/status", nlu, 300))
    rasa = launch(
        "rasa",
        [
            *rasa_run,
            *("--cors", "*", "--port", str(rasa_port), "--endpoints", str(endpoints)),
            *("--credentials", "credentials.yml"),
        ],
    )
    processes.append(rasa)
    waits.append((f"http://127.0.0.1:{rasa_port}/status", rasa, 300))
    try:
        for url, process, timeout in waits:
            wait_for(url, process, timeout=timeout)
    except BaseException:
        stop_servers(processes)
        raise
    return processes


def endpoints_file(action_port: int, tracker_db: Path | None = None, nlu_port: int = 0) -> Path:
    """endpoints.yml, or a copy under var/ with another action-server port or tracker file, or
    with the NLU server's address."""
    default = PROJECT_ROOT / "endpoints.yml"
    if action_port == DEFAULT_ACTION_PORT and tracker_db is None and not nlu_port:
        return default
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    config["action_endpoint"]["url"] = f"http://127.0.0.1:{action_port}/webhook"
    if tracker_db is not None:
        config["tracker_store"]["db"] = str(tracker_db)
    if nlu_port:
        config["nlu"] = {"url": f"http://127.0.0.1:{nlu_port}"}
    copy = PROJECT_ROOT / "var" / f"endpoints-{action_port}-{nlu_port}.yml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")
    return copy


def nlu_endpoints_file() -> Path:
    """The NLU server's endpoints: none (it keeps no conversations and runs no actions)."""
    path = PROJECT_ROOT / "var" / "endpoints-nlu.yml"
    text = "# The NLU server only parses messages: no tracker store, no actions.\n{}\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def stop_servers(processes: list[subprocess.Popen], grace: float = 15) -> None:
    """Stop each server and its children (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_up(args: argparse.Namespace) -> int:
    from bot.demo import load_demo_data
    from bot.kb.search import load_knowledge_base
    from bot.store.db import upgrade_database

    print("==> Preparing the database")
    upgrade_database()
    load_demo_data()
    # Built here (seconds, then stored) rather than inside the first customer's question.
    print("==> Preparing the knowledge-base index")
    load_knowledge_base()
    ensure_model(force=args.retrain)
    nlu_port = nlu_port_for(args.port, args.nlu_port)
    processes = start_servers(args.port, args.action_port, nlu_port=nlu_port)
    nlu = f"http://127.0.0.1:{nlu_port}/model/parse" if nlu_port else "inside the Rasa server"
    print(
        f"\nThe assistant is running.\n"
        f"  REST API : http://127.0.0.1:{args.port}/webhooks/rest/webhook\n"
        f"  NLU      : {nlu}\n"
        f"  Terminal : .venv/bin/python -m bot chat --url http://127.0.0.1:{args.port}\n"
        f"  Web chat : http://127.0.0.1:{args.port}/widget/demo\n"
        f"  Agents   : http://127.0.0.1:{args.port}/console/  (demo accounts in README.md)\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )
    # A service manager stops us with SIGTERM: stop the servers then too, as for Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        print("A server stopped unexpectedly; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop_servers(processes)
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_chat(args: argparse.Namespace) -> int:
    """A terminal conversation over the REST channel; numbers pick a quick-reply button."""
    endpoint = f"{args.url.rstrip('/')}/webhooks/rest/webhook"
    buttons: list[dict] = []
    print("输入消息开始对话（/quit 退出）")
    while True:
        try:
            text = input("您: ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text == "/quit":
            return 0
        if text.isdigit() and 0 < int(text) <= len(buttons):
            text = buttons[int(text) - 1]["payload"]
        try:
            reply = requests.post(
                endpoint, json={"sender": args.sender, "message": text}, timeout=60
            )
            reply.raise_for_status()
        except requests.RequestException as exc:
            print(f"[无法连接助手: {exc}]")
            continue
        buttons = []
        for message in reply.json():
            if message.get("text"):
                print(f"助手: {message['text']}")
            for button in message.get("buttons", []):
                buttons.append(button)
                print(f"   [{len(buttons)}] {button['title']}")


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="prepare everything and run the assistant")
    up.add_argument("--port", type=int, default=5005)
    up.add_argument("--action-port", type=int, default=DEFAULT_ACTION_PORT)
    up.add_argument(
        "--nlu-port",
        type=int,
        help="port of the NLU server (default: --port + 1; 0 parses inside the Rasa server)",
    )
    up.add_argument("--retrain", action="store_true", help="train even if nothing changed")
    up.set_defaults(handler=run_up)

    chat = subparsers.add_parser("chat", help="talk to the running assistant in the terminal")
    chat.add_argument("--url", default="http://127.0.0.1:5005")
    chat.add_argument("--sender", default=f"terminal-{os.getpid()}")
    chat.set_defaults(handler=run_chat)

    train = subparsers.add_parser("train", help="build the spaCy pipeline and train if needed")
    train.add_argument("--force", action="store_true")
    train.set_defaults(handler=lambda a: (ensure_model(force=a.force), 0)[1])
