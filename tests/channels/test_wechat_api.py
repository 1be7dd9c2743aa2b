"""WeChat protocol pieces: signatures, safe-mode AES, hardened XML, customer-service API."""

from __future__ import annotations

import base64

import pytest

from bot.channels.wechat_api import (
    WeChatApiError,
    WeChatCrypto,
    WeChatCryptoError,
    WeChatCustomerService,
    XmlRefused,
    build_xml,
    mask,
    parse_message,
    sign,
    signature_matches,
    text_reply,
)
from tests.channels.fake_wechat import APP_ID, APP_SECRET, FakeWeChatApi, fake_wechat_api

# Tencent's published sample for safe mode (WXBizMsgCrypt demo): token, key, AppID and an
# encrypted text message with its msg_signature.
SAMPLE_TOKEN, SAMPLE_APP_ID = "spamtest", "wx2c2769f8efd9abc2"
SAMPLE_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_TIMESTAMP, SAMPLE_NONCE = "1409735669", "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8"
    "PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332j"
    "isa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgav"
    "jIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6Oewpusj"
    "Z4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)

# Constructed known answer, computed independently with the openssl CLI:
#   16-byte prefix "0123456789abcdef" + 00000011 + "<xml>你好</xml>" + AppID + 9 x 0x09,
#   openssl enc -aes-256-cbc -nopad -K <base64-decoded key> -iv <first 16 key bytes>
KAT_PREFIX = b"0123456789abcdef"
KAT_MESSAGE = "<xml>你好</xml>"
KAT_CIPHERTEXT = (
    "Q3stYC6hdFzMh9T8HCvyDORchGzARlxqyFUOtgi0n8Ho4zK2qicEZn/104ifHk/O00Y6cSVq+EFwg3r49zH8jQ=="
)


@pytest.fixture
def crypto() -> WeChatCrypto:
    return WeChatCrypto(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_APP_ID)


# ------------------------------------------------------------------------------- signatures


def test_signature_is_sha1_of_sorted_concatenation() -> None:
    # sorted(["789", "456", "123"]) -> "123456789"
    assert sign("789", "456", "123") == "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
    assert sign(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT) == (
        SAMPLE_MSG_SIGNATURE
    )


def test_signature_check_refuses_wrong_missing_and_accepts_uppercase() -> None:
    good = sign("t", "1", "2")
    assert signature_matches(good, "t", "1", "2")
    assert signature_matches(good.upper(), "t", "1", "2")
    assert not signature_matches(good, "t", "1", "3")
    assert not signature_matches(None, "t", "1", "2")
    assert not signature_matches(good, "t", None, "2")
    assert not signature_matches("", "t", "1", "2")


def test_mask_hides_most_of_an_openid() -> None:
    assert mask("oyORnuP8q7ou2gfYjqLzSIWZf0rs") == "oyOR***rs"
    assert mask("short") == "***"
    assert mask(None) == "-"


# ----------------------------------------------------------------------------------- crypto


def test_decrypts_tencent_sample(crypto: WeChatCrypto) -> None:
    message = parse_message(crypto.decrypt(SAMPLE_ENCRYPT).encode())
    assert message["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert message["Content"] == "abcdteT"
    assert message["MsgId"] == "6054768590064713728"


def test_encrypt_matches_independently_computed_known_answer(crypto: WeChatCrypto) -> None:
    assert crypto.encrypt(KAT_MESSAGE, random_prefix=KAT_PREFIX) == KAT_CIPHERTEXT
    assert crypto.decrypt(KAT_CIPHERTEXT) == KAT_MESSAGE


@pytest.mark.parametrize("message", ["", "a", "x" * 31, "x" * 32, "中文" * 500])
def test_round_trip_and_32_byte_padding(crypto: WeChatCrypto, message: str) -> None:
    encrypted = crypto.encrypt(message)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert crypto.decrypt(encrypted) == message
    assert crypto.encrypt(message) != encrypted  # fresh random prefix each time


def test_refuses_message_for_another_app(crypto: WeChatCrypto) -> None:
    other = WeChatCrypto(SAMPLE_TOKEN, SAMPLE_KEY, "wx0000000000000000")
    with pytest.raises(WeChatCryptoError, match="AppID"):
        other.decrypt(crypto.encrypt("<xml/>"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: "not base64!",
        lambda c: c[:-8],  # not a whole number of blocks
        lambda c: base64.b64encode(base64.b64decode(c)[:16]).decode(),
        lambda c: base64.b64encode(bytes(32)).decode(),  # garbage padding
        lambda c: "",
    ],
)
def test_refuses_damaged_ciphertext(crypto: WeChatCrypto, damage) -> None:
    with pytest.raises(WeChatCryptoError):
        crypto.decrypt(damage(crypto.encrypt("<xml><a>1</a></xml>")))


def test_bad_configuration_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="43"):
        WeChatCrypto("t", "short", "wx1")
    with pytest.raises(ValueError, match="base64"):
        WeChatCrypto("t", "!" * 43, "wx1")
    with pytest.raises(ValueError, match="AppID"):
        WeChatCrypto("t", SAMPLE_KEY, "")


def test_encrypted_reply_envelope_is_signed(crypto: WeChatCrypto) -> None:
    sealed = crypto.encrypted_reply("<xml><A>回复</A></xml>", "1700000000")
    envelope = parse_message(sealed.encode())
    assert envelope["TimeStamp"] == "1700000000"
    assert envelope["MsgSignature"] == sign(
        SAMPLE_TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]
    )
    assert parse_message(crypto.decrypt(envelope["Encrypt"]).encode()) == {"A": "回复"}


# -------------------------------------------------------------------------------------- XML


def test_parses_a_wechat_text_message() -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[我的订单 <到哪了> & 多久]]></Content><MsgId>42</MsgId></xml>"
    ).encode()
    assert parse_message(body) == {
        "ToUserName": "gh_1",
        "FromUserName": "o_user",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "我的订单 <到哪了> & 多久",
        "MsgId": "42",
    }


def test_nested_fields_are_flattened() -> None:
    body = b"<xml><ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo></xml>"
    assert parse_message(body)["ScanCodeInfo/ScanType"] == "qrcode"


HOSTILE = {
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        "<xml><Content>&lol3;</Content></xml>"
    ),
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<xml><Content>&xxe;</Content></xml>"
    ),
    "external DTD": '<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd"><xml><A>1</A></xml>',
    "parameter entity": (
        '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p">%p;]><xml></xml>'
    ),
    "undeclared entity": "<xml><Content>&nope;</Content></xml>",
    "malformed": "<xml><Content>hi</xml>",
    "not xml": "hello",
    "empty": "",
    "other root": "<html><body/></html>",
    "too deep": "<xml>" + "<a>" * 10 + "</a>" * 10 + "</xml>",
    "too many elements": "<xml>" + "<a>1</a>" * 500 + "</xml>",
    "two roots": "<xml></xml><xml></xml>",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_refuses_hostile_or_malformed_xml(body: str) -> None:
    with pytest.raises(XmlRefused):
        parse_message(body.encode())


def test_build_xml_round_trips_even_with_cdata_terminator() -> None:
    tricky = "a]]>b<![CDATA[c"
    xml = build_xml({"Content": tricky, "CreateTime": 5})
    assert "<CreateTime>5</CreateTime>" in xml
    assert parse_message(xml.encode()) == {"Content": tricky, "CreateTime": "5"}


def test_text_reply_swaps_sender_and_account() -> None:
    reply = parse_message(text_reply("o_user", "gh_1", "您好", now=1700000000).encode())
    assert reply == {
        "ToUserName": "o_user",
        "FromUserName": "gh_1",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "您好",
    }


# ----------------------------------------------------------------------- customer service


@pytest.fixture
def api() -> FakeWeChatApi:
    with fake_wechat_api() as fake:
        yield fake


def test_token_is_cached_until_shortly_before_it_expires(api: FakeWeChatApi) -> None:
    now = [1000.0]
    client = WeChatCustomerService(
        APP_ID, APP_SECRET, api.url, refresh_margin=300, clock=lambda: now[0]
    )
    first = client.access_token()
    client.send_text("o_a", "一")
    client.send_text("o_b", "二")
    assert api.token_requests == 1
    now[0] += 7200 - 301
    assert client.access_token() == first
    now[0] += 2  # inside the refresh margin
    assert client.access_token() != first
    assert api.token_requests == 2
    assert [m["touser"] for m in api.messages] == ["o_a", "o_b"]
    assert api.messages[0] == {"touser": "o_a", "msgtype": "text", "text": {"content": "一"}}


def test_expired_token_is_refreshed_once_and_the_send_retried(api: FakeWeChatApi) -> None:
    client = WeChatCustomerService(APP_ID, APP_SECRET, api.url)
    client.send_text("o_a", "first")
    api.expire_tokens()
    client.send_text("o_a", "second")
    assert api.rejections == [42001]
    assert api.token_requests == 2
    assert [m["text"]["content"] for m in api.messages] == ["first", "second"]


def test_refresh_happens_only_once(api: FakeWeChatApi, monkeypatch) -> None:
    client = WeChatCustomerService(APP_ID, APP_SECRET, api.url)
    monkeypatch.setattr(api, "_send", lambda q, b: {"errcode": 40001, "errmsg": "invalid"})
    with pytest.raises(WeChatApiError) as error:
        client.send_text("o_a", "never")
    assert error.value.errcode == 40001
    assert api.token_requests == 2


def test_wrong_secret_and_unreachable_api_raise_without_leaking_secrets(
    api: FakeWeChatApi,
) -> None:
    with pytest.raises(WeChatApiError, match="token refused"):
        WeChatCustomerService(APP_ID, "wrong", api.url).send_text("o_a", "x")
    unreachable = WeChatCustomerService(APP_ID, "top-secret", "http://127.0.0.1:9", timeout=2)
    with pytest.raises(WeChatApiError) as error:
        unreachable.send_text("o_a", "x")
    assert "top-secret" not in str(error.value)


def test_from_env() -> None:
    assert WeChatCustomerService.from_env({}) is None
    client = WeChatCustomerService.from_env(
        {"WECHAT_APP_ID": "wx1", "WECHAT_APP_SECRET": "s", "WECHAT_API_BASE": "http://x/"}
    )
    assert client is not None and client.api_base == "http://x"
