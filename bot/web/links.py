"""Signed links: pages opened from a text card (a ticket, later an installer's earnings).

A link carries its expiry and a full-length HMAC-SHA256 of the subject and that expiry, made
with scrmbot's own secret (`SCRM_SECRET_KEY`), never a WeCom credential. Whoever was sent
the card may open it until it expires; a forged or altered link is refused, and an expired
one says so honestly.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import quote


class LinkState(Enum):
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class LinkCheck:
    state: LinkState
    expired_at: datetime | None = None


def signature(secret: str, subject: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{subject}\n{expires}".encode(),
                    hashlib.sha256).hexdigest()


def signed_url(base: str, path: str, secret: str, subject: str, now: float,
               ttl_s: int) -> str:
    """`base` + `path` with `exp` and `sig` for `subject`, valid for `ttl_s` seconds."""
    expires = int(now) + ttl_s
    return (f"{base.rstrip('/')}{quote(path)}?exp={expires}"
            f"&sig={signature(secret, subject, expires)}")


def check(secret: str, subject: str, exp: str, sig: str, now: float) -> LinkCheck:
    """Whether a link's `exp` and `sig` hold for `subject` at `now`."""
    if not exp.isdigit() or len(exp) > 12:
        return LinkCheck(LinkState.INVALID)
    expires = int(exp)
    if not hmac.compare_digest(signature(secret, subject, expires), sig):
        return LinkCheck(LinkState.INVALID)
    if now >= expires:
        return LinkCheck(LinkState.EXPIRED, datetime.fromtimestamp(expires, UTC))
    return LinkCheck(LinkState.VALID)
