"""Photo uploads from the web chat: validation by content, storage, and linking to tickets."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from bot.attachments import (
    MAX_UPLOAD_BYTES,
    AttachmentService,
    UploadRejected,
    is_valid_session_id,
    sniff_image_type,
    upload_dir,
    validate_upload,
)
from bot.channels.webchat import (
    TEXTS_FILE,
    load_texts,
    texts_for,
    upload_error,
    upload_success,
    widget_config,
)
from bot.services.tickets import TicketService
from bot.store.db import make_engine, make_session_factory
from bot.store.models import Attachment

SENDER = "0123456789abcdef0123456789abcdef"


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A real, minimal PNG (red pixels), built here so the test needs no image files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png_bytes(), "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"GIF89a" + b"\x00" * 20, None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", None),
        (b"%PDF-1.7", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"\x89PN", None),
    ],
)
def test_images_are_recognised_by_their_bytes(data: bytes, expected: str | None) -> None:
    assert sniff_image_type(data) == expected


def test_validation_gives_the_reason_a_file_is_refused() -> None:
    assert validate_upload(png_bytes()) == "image/png"
    for data, reason in [
        (None, "missing_file"),
        (b"", "empty"),
        (b"MZ\x90\x00 this is an .exe renamed to photo.jpg", "not_image"),
        (b"\xff\xd8\xff" + b"\x00" * MAX_UPLOAD_BYTES, "too_large"),
    ]:
        with pytest.raises(UploadRejected) as refused:
            validate_upload(data)
        assert refused.value.reason == reason


def test_exactly_five_megabytes_is_accepted() -> None:
    data = b"\xff\xd8\xff" + b"\x00" * (MAX_UPLOAD_BYTES - 3)
    assert len(data) == MAX_UPLOAD_BYTES
    assert validate_upload(data) == "image/jpeg"


@pytest.mark.parametrize(
    ("session_id", "valid"),
    [
        (SENDER, True),
        ("e2e-return_1", True),
        ("", False),
        (None, False),
        ("../../etc/passwd", False),
        ("a" * 129, False),
        ("<script>", False),
    ],
)
def test_session_ids_are_checked(session_id: str | None, valid: bool) -> None:
    assert is_valid_session_id(session_id) is valid


def test_upload_dir_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", str(tmp_path / "photos"))
    assert upload_dir() == tmp_path / "photos"
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", "var/elsewhere")
    assert upload_dir().parts[-2:] == ("var", "elsewhere")


@pytest.fixture
def sessions(demo_factory: sessionmaker) -> sessionmaker:
    return demo_factory


@pytest.fixture
def service(sessions: sessionmaker, tmp_path: Path) -> AttachmentService:
    return AttachmentService(sessions, tmp_path / "uploads")


def count_rows(sessions: sessionmaker) -> int:
    with sessions() as session:
        return session.execute(select(func.count()).select_from(Attachment)).scalar_one()


def test_a_photo_without_an_open_ticket_is_stored_unlinked(
    service: AttachmentService, sessions: sessionmaker
) -> None:
    data = png_bytes()
    stored = service.store(SENDER, data)
    assert stored.ticket_no is None
    assert stored.content_type == "image/png" and stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.filename.endswith(".png") and len(stored.filename) == 36
    assert service.path_of(stored).read_bytes() == data
    assert service.get(stored.filename) == stored
    assert service.for_sender(SENDER) == [stored]
    assert count_rows(sessions) == 1


def test_a_photo_goes_to_the_conversations_latest_open_ticket(
    service: AttachmentService, sessions: sessionmaker
) -> None:
    tickets = TicketService(sessions)
    older = tickets.open_ticket(1, "repair", "洗衣机漏水", channel="webchat", sender_id=SENDER)
    newer = tickets.open_ticket(1, "complaint", "安装师傅迟到", channel="webchat", sender_id=SENDER)
    tickets.open_ticket(1, "repair", "别的会话", channel="webchat", sender_id="someone-else")
    stored = service.store(SENDER, JPEG)
    assert stored.ticket_no == newer.ticket_no
    assert service.for_ticket(newer.ticket_no) == [stored]

    tickets.advance(newer.ticket_no, "cancelled", note="客户撤销", actor="customer")
    assert service.store(SENDER, WEBP).ticket_no == older.ticket_no


def test_refused_files_leave_nothing_behind(
    service: AttachmentService, sessions: sessionmaker
) -> None:
    for sender, data in [(SENDER, b"not an image"), ("../x", png_bytes()), (SENDER, b"")]:
        with pytest.raises(UploadRejected):
            service.store(sender, data)
    assert count_rows(sessions) == 0
    assert not service.directory.exists() or not any(service.directory.iterdir())


def test_a_database_failure_removes_the_written_file(tmp_path: Path) -> None:
    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"))
    service = AttachmentService(broken, tmp_path / "uploads")
    with pytest.raises(OperationalError):
        service.store(SENDER, png_bytes())
    assert not any((tmp_path / "uploads").iterdir())


def test_stored_names_are_random_and_only_such_names_are_looked_up(
    service: AttachmentService,
) -> None:
    first, second = service.store(SENDER, png_bytes()), service.store(SENDER, png_bytes())
    assert first.filename != second.filename and first.sha256 == second.sha256
    for name in ["../assistant.db", "x.png", first.filename.upper(), first.filename + "/"]:
        assert service.get(name) is None


def test_every_language_has_every_text_and_messages_fill_in_values() -> None:
    catalogue = load_texts(TEXTS_FILE)
    assert catalogue["default_language"] == "zh-CN"
    assert texts_for("zh")["send"] == "发送"
    assert texts_for("en-GB")["send"] == "Send"
    assert texts_for("fr") == texts_for(None) == texts_for("zh-CN")
    too_large = upload_error("too_large", "zh-CN")
    assert too_large["error"] == "too_large" and "5 MB" in too_large["message"]
    assert (
        upload_error("something_new", None)["message"] == texts_for(None)["errors"]["upload_failed"]
    )
    config = widget_config("zh-CN")
    assert config["upload"]["max_bytes"] == MAX_UPLOAD_BYTES
    assert config["upload"]["types"] == ["image/jpeg", "image/png", "image/webp"]


def test_success_message_names_the_ticket(service: AttachmentService, sessions) -> None:
    ticket = TicketService(sessions).open_ticket(1, "repair", "漏水", sender_id=SENDER)
    body = upload_success(service.store(SENDER, png_bytes()), "zh-CN")
    assert ticket.ticket_no in body["message"] and body["ticket_no"] == ticket.ticket_no
    assert body["url"].startswith("/widget/uploads/") and body["url"].endswith(".png")
