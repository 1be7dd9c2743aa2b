"""WeChat official-account protocol pieces that need no Rasa: signatures, safe-mode AES,
hardened XML and the customer-service message API.

Kept apart from the Rasa channel so that other processes (an agent console, scripts) can
send a customer a message with :class:`WeChatCustomerService` without loading Rasa.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from xml.parsers import expat

import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
"""errcodes meaning "this access_token is invalid or expired": refresh once and retry."""

_BLOCK = 32  # WeChat pads to 32-byte blocks (PKCS#7 with k=32), not AES's 16.
_MAX_ELEMENTS = 200
_MAX_DEPTH = 6


class WeChatError(Exception):
    """Base class, so callers can refuse any bad WeChat input with one ``except``."""


class XmlRefused(WeChatError):
    """The body is not a plain WeChat XML document (malformed, DTD, entities, too deep)."""


class WeChatCryptoError(WeChatError):
    """Safe-mode ciphertext that does not decrypt to a message for our AppID."""


class WeChatApiError(WeChatError):
    """The WeChat HTTP API failed; the message never contains the token or secret."""

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 hex of the parts sorted and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_matches(signature: str | None, *parts: str | None) -> bool:
    """Constant-time check, so response timing does not leak how much of a guess was right."""
    if not signature or any(part is None for part in parts):
        return False
    expected = sign(*(part for part in parts if part is not None))
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def mask(openid: str | None) -> str:
    """An OpenID shortened for logs: enough to correlate lines, not to identify a customer."""
    if not openid:
        return "-"
    if len(openid) <= 8:
        return "***"
    return f"{openid[:4]}***{openid[-2:]}"


# --------------------------------------------------------------------------------------- XML


def parse_message(body: bytes) -> dict[str, str]:
    """Parse a WeChat XML body into ``{tag: text}`` (nested tags as ``Parent/Child``).

    expat is driven directly so that anything beyond flat elements is refused before it can
    do harm: a DOCTYPE (and with it every entity declaration, so no "billion laughs" and no
    external entities), entity references, and documents too deep or too large.
    """
    parser = expat.ParserCreate(encoding=None)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    fields: dict[str, str] = {}
    path: list[str] = []
    text: list[list[str]] = []
    count = 0

    def refuse(*_: Any) -> None:
        raise XmlRefused("DOCTYPE and entity declarations are not allowed")

    def start(tag: str, _attributes: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > _MAX_ELEMENTS or len(path) >= _MAX_DEPTH:
            raise XmlRefused("document too large or too deep")
        if not path and tag != "xml":
            raise XmlRefused(f"root element must be <xml>, not <{tag}>")
        path.append(tag)
        text.append([])

    def end(_tag: str) -> None:
        value = "".join(text.pop()).strip()
        key = "/".join(path[1:])
        path.pop()
        if key and key not in fields:
            fields[key] = value

    def characters(data: str) -> None:
        if text:
            text[-1].append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(body, True)
    except expat.ExpatError as error:
        raise XmlRefused(f"malformed XML: {expat.ErrorString(error.code)}") from None
    except RecursionError:  # pragma: no cover - depth is capped long before this
        raise XmlRefused("document too deep") from None
    if not path and not count:
        raise XmlRefused("empty document")
    return fields


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA: close the section and reopen it around the ">".
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: Mapping[str, str | int]) -> str:
    """``<xml>`` with one child per field: strings in CDATA, integers bare (as WeChat does)."""
    inner = "".join(
        f"<{tag}>{value if isinstance(value, int) else _cdata(value)}</{tag}>"
        for tag, value in fields.items()
    )
    return f"<xml>{inner}</xml>"


def text_reply(to_user: str, from_user: str, content: str, now: float | None = None) -> str:
    """A passive text reply to the message ``to_user`` sent to account ``from_user``."""
    return build_xml(
        {
            "ToUserName": to_user,
            "FromUserName": from_user,
            "CreateTime": int(time.time() if now is None else now),
            "MsgType": "text",
            "Content": content,
        }
    )


# ------------------------------------------------------------------------------ safe mode AES


class WeChatCrypto:
    """Safe-mode ("安全模式") message encryption as WeChat specifies it.

    AES-256-CBC with key = base64(EncodingAESKey + "="), IV = key[:16], PKCS#7 padding to 32
    bytes; plaintext = 16 random bytes + 4-byte big-endian length + message + AppID.
    """

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as error:
            raise ValueError("EncodingAESKey is not valid base64") from error
        if not app_id:
            raise ValueError("safe mode needs the AppID")
        self.token = token
        self.app_id = app_id
        self._key = key
        self._iv = key[:16]

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    def encrypt(self, message: str, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of ``message``; ``random_prefix`` is fixed only in tests."""
        prefix = secrets.token_bytes(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise ValueError("the random prefix is 16 bytes")
        body = message.encode("utf-8")
        plain = prefix + struct.pack(">I", len(body)) + body + self.app_id.encode("utf-8")
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message inside ``encrypted``; raises if it is damaged or for another AppID."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise WeChatCryptoError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise WeChatCryptoError("ciphertext length is not a multiple of the AES block")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatCryptoError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WeChatCryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise WeChatCryptoError("message length beyond the plaintext")
        app_id = plain[20 + length :]
        if not hmac.compare_digest(app_id, self.app_id.encode("utf-8")):
            raise WeChatCryptoError("message is for another AppID")
        try:
            return plain[20 : 20 + length].decode("utf-8")
        except UnicodeDecodeError:
            raise WeChatCryptoError("message is not UTF-8") from None

    def encrypted_reply(self, reply_xml: str, timestamp: str | None = None) -> str:
        """The safe-mode envelope for a passive reply, signed with its own timestamp/nonce."""
        timestamp = timestamp or str(int(time.time()))
        nonce = str(secrets.randbelow(10**10))
        encrypted = self.encrypt(reply_xml)
        return build_xml(
            {
                "Encrypt": encrypted,
                "MsgSignature": sign(self.token, timestamp, nonce, encrypted),
                "TimeStamp": timestamp,
                "Nonce": nonce,
            }
        )


# ------------------------------------------------------------------- customer-service API


class WeChatCustomerService:
    """Sends customers messages through ``/cgi-bin/message/custom/send`` (48 h window).

    Thread-safe and blocking (``requests``): async code calls it in an executor. The
    access_token is cached until shortly before it expires and refreshed once when WeChat
    says it is invalid/expired (another server sharing the AppID may have replaced it).
    """

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not app_id or not app_secret:
            raise ValueError("the customer-service API needs the AppID and AppSecret")
        self.app_id = app_id
        self._secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self._session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WeChatCustomerService | None:
        """The client configured by WECHAT_APP_ID/WECHAT_APP_SECRET/WECHAT_API_BASE, if any."""
        env = os.environ if env is None else env
        app_id = env.get("WECHAT_APP_ID", "").strip()
        secret = env.get("WECHAT_APP_SECRET", "").strip()
        if not app_id or not secret:
            return None
        return cls(app_id, secret, env.get("WECHAT_API_BASE", "").strip() or DEFAULT_API_BASE)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._session.request(
                method, f"{self.api_base}{path}", timeout=self.timeout, **kwargs
            )
            response.raise_for_status()
            payload = response.json()
        except requests.RequestException as error:
            # The exception text may contain the URL, i.e. the secret or the token.
            raise WeChatApiError(f"{path}: {type(error).__name__}") from None
        except ValueError:
            raise WeChatApiError(f"{path}: answer is not JSON") from None
        if not isinstance(payload, dict):
            raise WeChatApiError(f"{path}: unexpected answer")
        return payload

    def access_token(self, stale: str | None = None) -> str:
        """A valid access_token; ``stale`` is one WeChat just rejected, so never return it."""
        with self._lock:
            usable = self._token and self._clock() < self._expires_at
            if usable and self._token != stale:
                return self._token  # type: ignore[return-value]
            payload = self._call(
                "GET",
                "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self._secret,
                },
            )
            token = payload.get("access_token")
            if not token:
                raise WeChatApiError(
                    f"token refused: {payload.get('errmsg', '')}", payload.get("errcode")
                )
            expires_in = float(payload.get("expires_in") or 7200)
            margin = min(self.refresh_margin, expires_in / 2)
            self._token = str(token)
            self._expires_at = self._clock() + expires_in - margin
            return self._token

    def send_text(self, openid: str, text: str) -> None:
        """Send ``text`` to ``openid``; raises :class:`WeChatApiError` if WeChat refuses."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        token = self.access_token()
        for attempt in (1, 2):
            # ensure_ascii=False: WeChat limits characters, and escapes would inflate the count.
            payload = self._call(
                "POST",
                "/cgi-bin/message/custom/send",
                params={"access_token": token},
                data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            errcode = int(payload.get("errcode") or 0)
            if errcode == 0:
                logger.info("WeChat custom message sent to %s", mask(openid))
                return
            if errcode in TOKEN_ERRORS and attempt == 1:
                logger.info("WeChat access_token rejected (%s); refreshing once", errcode)
                token = self.access_token(stale=token)
                continue
            raise WeChatApiError(f"custom/send refused: {payload.get('errmsg', '')}", errcode)
