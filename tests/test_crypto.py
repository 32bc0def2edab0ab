"""Our lean callback crypto against wechatpy's reference implementation."""

from __future__ import annotations

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.wecom.crypto import (
    CallbackCrypto,
    CryptoError,
    ReceiverMismatchError,
    SignatureError,
    StaleTimestampError,
)

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
XML = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Content>中文 ✓</Content></xml>"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 31, 32, 33, 500, 4000])
def test_roundtrip_with_wechatpy_both_ways(size: int) -> None:
    ours = CallbackCrypto(TOKEN, KEY, CORP)
    theirs = WeChatCrypto(TOKEN, KEY, CORP)
    xml = XML.replace("中文", "字" * size)
    body, signature = ours.envelope(xml, "1409659813", "nonce1")
    assert theirs.decrypt_message(body, signature, "1409659813", "nonce1") == xml
    reply = theirs.encrypt_message(xml, "nonce2", "1409659999")
    encrypted = reply.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = reply.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    assert ours.verify_and_decrypt(signature, "1409659999", "nonce2", encrypted).decode() == xml


def test_signature_mismatch() -> None:
    crypto = CallbackCrypto(TOKEN, KEY, CORP)
    body, signature = crypto.envelope(XML, "1", "n")
    encrypted = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    with pytest.raises(SignatureError):
        wrong = signature[:-1] + ("1" if signature[-1] == "0" else "0")
        crypto.verify_and_decrypt(wrong, "1", "n", encrypted)


def test_freshness_window() -> None:
    crypto = CallbackCrypto(TOKEN, KEY, CORP, max_clock_skew_s=600)
    crypto.check_fresh("1000", now=1500)
    with pytest.raises(StaleTimestampError):
        crypto.check_fresh("1000", now=1601)
    with pytest.raises(StaleTimestampError):
        crypto.check_fresh("soon", now=1000)
    CallbackCrypto(TOKEN, KEY, CORP, max_clock_skew_s=0).check_fresh("1", now=10**10)


def test_wrong_receiver_and_bad_padding() -> None:
    other = CallbackCrypto(TOKEN, KEY, "wwother")
    ours = CallbackCrypto(TOKEN, KEY, CORP)
    with pytest.raises(ReceiverMismatchError):
        ours.decrypt(other.encrypt(XML))
    with pytest.raises(CryptoError):
        ours.decrypt("AAAA")  # three bytes: not a whole block
    with pytest.raises(CryptoError):
        ours.decrypt("not base64!")
