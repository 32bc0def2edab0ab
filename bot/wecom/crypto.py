"""WeCom / WeChat callback crypto (WXBizMsgCrypt), lean enough to run inline on the event loop.

Same scheme as wechatpy's `WeChatCrypto` (which the tests cross-check against), but with a
constant-time signature comparison, validated PKCS#7 padding and the AES key schedule built once.
Scheme: signature = sha1(sorted(token, timestamp, nonce, ciphertext)); AES-256-CBC with
IV = key[:16]; plaintext = 16 random bytes | 4-byte big-endian length | xml | receive id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


class CryptoError(Exception):
    """A callback could not be verified or decrypted. `status` is the HTTP answer to give,
    `cause` the refusal's short name in the metrics."""

    status = 400
    cause = "decrypt_failed"


class SignatureError(CryptoError):
    status = 401
    cause = "bad_signature"


class StaleTimestampError(CryptoError):
    status = 401
    cause = "stale_timestamp"


class ReceiverMismatchError(CryptoError):
    status = 401
    cause = "wrong_receiver"


def sign(token: str, timestamp: str, nonce: str, encrypted: str = "") -> str:
    """The hex sha1 signature WeCom puts in `msg_signature` (or OA's `signature`)."""
    parts = sorted([token, timestamp, nonce, encrypted] if encrypted
                   else [token, timestamp, nonce])
    return hashlib.sha1("".join(parts).encode()).hexdigest()


class CallbackCrypto:
    """Verify, decrypt and encrypt callbacks for one (token, EncodingAESKey, receive id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str,
                 max_clock_skew_s: int = 0) -> None:
        if len(encoding_aes_key) != 43:
            msg = "EncodingAESKey must be 43 characters"
            raise ValueError(msg)
        self.token = token
        self.receive_id = receive_id
        self.max_clock_skew_s = max_clock_skew_s
        self._key = base64.b64decode(encoding_aes_key + "=")
        self._cipher = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def verify(self, signature: str, timestamp: str, nonce: str, encrypted: str,
               now: float | None = None) -> None:
        """Raise unless the signature matches and the timestamp is fresh enough."""
        expected = sign(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, signature.lower()):
            msg = "signature mismatch"
            raise SignatureError(msg)
        self.check_fresh(timestamp, now)

    def check_fresh(self, timestamp: str, now: float | None = None) -> None:
        """Refuse replays of old callbacks (off when max_clock_skew_s is 0)."""
        if not self.max_clock_skew_s:
            return
        try:
            sent = int(timestamp)
        except ValueError:
            msg = f"timestamp is not a number: {timestamp[:20]!r}"
            raise StaleTimestampError(msg) from None
        skew = abs((time.time() if now is None else now) - sent)
        if skew > self.max_clock_skew_s:
            msg = f"timestamp {sent} is {skew:.0f}s away from now"
            raise StaleTimestampError(msg)

    def decrypt(self, encrypted: str) -> bytes:
        """Decrypt a base64 ciphertext and return the XML bytes, checking the receive id."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            msg = "ciphertext is not valid base64"
            raise CryptoError(msg) from None
        if not data or len(data) % 16:
            msg = "ciphertext length is not a multiple of the AES block"
            raise CryptoError(msg)
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            msg = "bad padding"
            raise CryptoError(msg)
        body = plain[16:-pad]
        if len(body) < 4:
            msg = "plaintext too short"
            raise CryptoError(msg)
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            msg = "declared length exceeds plaintext"
            raise CryptoError(msg)
        xml, receiver = body[4:4 + length], body[4 + length:]
        if not hmac.compare_digest(receiver, self.receive_id.encode()):
            msg = f"receive id {receiver[:64]!r} is not ours"
            raise ReceiverMismatchError(msg)
        return xml

    def verify_and_decrypt(self, signature: str, timestamp: str, nonce: str, encrypted: str,
                           now: float | None = None) -> bytes:
        self.verify(signature, timestamp, nonce, encrypted, now)
        return self.decrypt(encrypted)

    def encrypt(self, xml: str | bytes, random16: bytes | None = None) -> str:
        """Encrypt a plaintext the way WeCom does (used by the simulator and passive replies)."""
        raw = xml.encode() if isinstance(xml, str) else xml
        body = (random16 or os.urandom(16)) + struct.pack(">I", len(raw)) + raw \
            + self.receive_id.encode()
        pad = _BLOCK - len(body) % _BLOCK
        body += bytes([pad]) * pad
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()

    def envelope(self, xml: str, timestamp: str, nonce: str, to_user: str | None = None,
                 agent_id: str | None = None) -> tuple[str, str]:
        """Build a POST body and its msg_signature, exactly as WeCom sends a callback."""
        encrypted = self.encrypt(xml)
        agent = f"<AgentID><![CDATA[{agent_id}]]></AgentID>" if agent_id else ""
        body = (f"<xml><ToUserName><![CDATA[{to_user or self.receive_id}]]></ToUserName>"
                f"{agent}<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        return body, sign(self.token, timestamp, nonce, encrypted)
