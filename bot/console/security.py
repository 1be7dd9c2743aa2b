"""Web security of the agent console: session cookie, CSRF check, roles and response headers."""

from __future__ import annotations

import hmac
import os
from typing import Any

from sanic.request import Request
from sanic.response import HTTPResponse

SESSION_COOKIE = "console_session"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/console"
SECURE_COOKIES_ENV = "CONSOLE_SECURE_COOKIES"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ROLE_RANK = {"agent": 1, "supervisor": 2, "manager": 3}
# Who may take over a chat from a colleague: the roles below managers do the chat work.
TRANSFER_TARGET_ROLES = ("agent", "supervisor")

# The page runs only its own script and styles; nothing may frame it or sniff types.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# API answers carry customer data: never cache them anywhere.
API_HEADERS = {**PAGE_HEADERS, "Cache-Control": "no-store"}


def role_allows(role: str, minimum: str) -> bool:
    """True when ``role`` is at least ``minimum`` (agent < supervisor < manager)."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token with the request header."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def wants_secure_cookie(request: Request) -> bool:
    """``Secure`` on https, or always when the deployment says so (TLS ends at a proxy)."""
    if os.environ.get(SECURE_COOKIES_ENV, "").strip() in {"1", "true", "yes"}:
        return True
    return request.scheme == "https"


def set_session_cookie(
    response: HTTPResponse, token: str, *, secure: bool, max_age_seconds: int
) -> None:
    """The session cookie: HttpOnly (no script reads it), SameSite=Strict, only under /console."""
    response.cookies[SESSION_COOKIE] = token
    cookie: Any = response.cookies[SESSION_COOKIE]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = COOKIE_PATH
    cookie["max-age"] = max_age_seconds
    if secure:
        cookie["secure"] = True


def clear_session_cookie(response: HTTPResponse, *, secure: bool) -> None:
    set_session_cookie(response, "", secure=secure, max_age_seconds=0)
