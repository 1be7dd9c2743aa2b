"""Photos customers send from the web chat: validation, storage on disk, and the store record.

Files are checked by their first bytes (an ``.jpg`` name proves nothing), saved under a random
name so nothing the customer chose reaches the file system, and linked to the conversation's
most recent open ticket so the desk sees the evidence next to the request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from bot.settings import PROJECT_ROOT
from bot.store.db import session_scope
from bot.store.models import TERMINAL_TICKET_STATUSES, Attachment, Ticket, utcnow

log = logging.getLogger(__name__)

UPLOAD_DIR_ENV = "ASSISTANT_UPLOAD_DIR"
DEFAULT_UPLOAD_DIR = PROJECT_ROOT / "var" / "uploads"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# content type -> file extension of the stored copy
ALLOWED_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
# Rasa's socket.io channel hands out uuid4 hex ids; anything else is refused, which also keeps
# sender ids within the 128 characters the store allows.
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
STORED_NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|webp)")


class UploadRejected(ValueError):
    """The upload is not acceptable; ``reason`` names the customer-facing message to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AttachmentView:
    id: int
    sender_id: str
    ticket_no: str | None
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


def upload_dir() -> Path:
    """Where photos are kept: ``ASSISTANT_UPLOAD_DIR`` (tests, deployments) or var/uploads."""
    configured = os.environ.get(UPLOAD_DIR_ENV, "").strip()
    if not configured:
        return DEFAULT_UPLOAD_DIR
    path = Path(configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def sniff_image_type(data: bytes) -> str | None:
    """The image type the bytes really are (JPEG, PNG or WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_valid_session_id(session_id: str | None) -> bool:
    return bool(session_id) and SESSION_ID_PATTERN.fullmatch(session_id or "") is not None


def validate_upload(data: bytes | None, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Content type of an acceptable photo; raises UploadRejected with the reason otherwise."""
    if data is None:
        raise UploadRejected("missing_file")
    if not data:
        raise UploadRejected("empty")
    if len(data) > max_bytes:
        raise UploadRejected("too_large")
    content_type = sniff_image_type(data)
    if content_type is None:
        raise UploadRejected("not_image")
    return content_type


def _view(row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id,
        sender_id=row.sender_id,
        ticket_no=row.ticket_no,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
    )


class AttachmentService:
    """Stores customer photos and their records; one instance per database and folder."""

    def __init__(
        self,
        session_factory: sessionmaker,
        directory: Path | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        self._session_factory = session_factory
        self.directory = directory or upload_dir()
        self.max_bytes = max_bytes

    def store(self, sender_id: str, data: bytes | None) -> AttachmentView:
        """Validate, save and record one photo, linked to the sender's latest open ticket.

        The file is written before the row and removed again if the row cannot be saved, so
        the folder never keeps a photo the store does not know about.
        """
        if not is_valid_session_id(sender_id):
            raise UploadRejected("missing_session")
        content_type = validate_upload(data, self.max_bytes)
        assert data is not None  # validate_upload refused None
        name = secrets.token_hex(16) + ALLOWED_TYPES[content_type]
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        with path.open("xb") as handle:
            handle.write(data)
        try:
            with session_scope(self._session_factory) as session:
                ticket_no = session.execute(
                    select(Ticket.ticket_no)
                    .where(
                        Ticket.sender_id == sender_id,
                        Ticket.status.not_in(TERMINAL_TICKET_STATUSES),
                    )
                    .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
                row = Attachment(
                    sender_id=sender_id,
                    ticket_no=ticket_no,
                    filename=name,
                    content_type=content_type,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
                view = _view(row)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        log.info("stored attachment %s for %s (ticket %s)", name, sender_id, ticket_no)
        return view

    def get(self, filename: str) -> AttachmentView | None:
        """The record of a stored file by its random name (None for any other name)."""
        if STORED_NAME_PATTERN.fullmatch(filename) is None:
            return None
        with session_scope(self._session_factory) as session:
            row = session.execute(
                select(Attachment).where(Attachment.filename == filename)
            ).scalar_one_or_none()
            return None if row is None else _view(row)

    def path_of(self, attachment: AttachmentView) -> Path:
        return self.directory / attachment.filename

    def for_ticket(self, ticket_no: str) -> list[AttachmentView]:
        """Photos attached to a ticket, oldest first (for the desk)."""
        return self._query(Attachment.ticket_no == ticket_no)

    def for_sender(self, sender_id: str) -> list[AttachmentView]:
        """Photos one conversation sent, oldest first."""
        return self._query(Attachment.sender_id == sender_id)

    def _query(self, criterion: ColumnElement[bool]) -> list[AttachmentView]:
        with session_scope(self._session_factory) as session:
            rows = session.execute(
                select(Attachment).where(criterion).order_by(Attachment.id)
            ).scalars()
            return [_view(row) for row in rows]
