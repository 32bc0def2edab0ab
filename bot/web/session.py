"""Console sessions: an encrypted, signed cookie naming a server-side session row.

The cookie is sealed with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived from
`SCRM_SECRET_KEY`, so it can be neither read nor altered; it holds the session id, the
member and when the member was last seen. Each request older than a minute re-seals it
with the new time, so a session ends after `idle` without a request (8 hours by default).
The row (`models.web.WebSession`) is what logging out ends: a copied cookie dies with it.
The member's role and region are never in the cookie: they are read on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from enum import Enum

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "scrm_session"
RESEAL_AFTER_S = 60  # how stale `seen` may get before the cookie is re-sealed


class SessionState(Enum):
    NONE = "none"  # no cookie
    INVALID = "invalid"  # not ours, altered, or sealed with another key
    EXPIRED = "expired"  # idle too long
    VALID = "valid"


@dataclass(frozen=True)
class Session:
    sid: str
    userid: str
    seen: int  # unix seconds of the last request

    def csrf_token(self, secret_key: str) -> str:
        """The token every state-changing request of this session must carry: bound to the
        session, so a token read from one login is worthless in another."""
        return hmac.new(secret_key.encode(), f"csrf\n{self.sid}".encode(),
                        hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Opened:
    state: SessionState
    session: Session | None = None


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


class SessionCodec:
    def __init__(self, secret_key: str, idle_s: int) -> None:
        derived = hmac.new(secret_key.encode(), b"scrmbot console session v1",
                           hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._secret_key = secret_key
        self.idle_s = idle_s

    def seal(self, session: Session) -> str:
        payload = json.dumps({"s": session.sid, "u": session.userid, "t": session.seen},
                             separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(payload, session.seen).decode()

    def open(self, cookie: str | None, now: float) -> Opened:
        if not cookie:
            return Opened(SessionState.NONE)
        try:
            raw = self._fernet.decrypt(cookie.encode())
            data = json.loads(raw)
            session = Session(str(data["s"]), str(data["u"]), int(data["t"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return Opened(SessionState.INVALID)
        if now - session.seen >= self.idle_s:
            return Opened(SessionState.EXPIRED, session)
        return Opened(SessionState.VALID, session)

    def touched(self, session: Session, now: float) -> Session | None:
        """The session seen at `now`, when the cookie is worth re-sealing; else None."""
        return replace(session, seen=int(now)) if now - session.seen >= RESEAL_AFTER_S \
            else None

    def csrf_token(self, session: Session) -> str:
        return session.csrf_token(self._secret_key)
